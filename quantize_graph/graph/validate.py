"""Checks a GraphDef against TensorFlow's op definitions before anything rewrites it.

A node with an unknown op, a missing or mistyped attribute, an attribute value its op does
not allow, or inputs its op's shape function rejects (strides of the wrong length, a filter
whose input channels do not match) would be rewritten into a graph that does not import.
TensorFlow's importer runs exactly those checks; this module runs it and turns its answer into
one line naming the node. Consts are checked here too: their bytes must match their dtype and
shape, and weights must be finite and non-empty in the modes that quantize them.
"""
import difflib
import re

import numpy as np

from quantize_graph.errors import QuantizeGraphError

# Where a float Const is read as weights: {op: input positions}.
WEIGHT_INPUTS = {
    "Conv2D": (1,), "DepthwiseConv2dNative": (1,), "MatMul": (1,), "BiasAdd": (1,),
    "BiasAddV1": (1,), "FusedBatchNorm": (1, 2, 3, 4), "FusedBatchNormV2": (1, 2, 3, 4),
    "FusedBatchNormV3": (1, 2, 3, 4), "BatchNormWithGlobalNormalization": (1, 2, 3, 4),
}
# Modes that turn weights into 8-bit codes (all but test's --compare, which quantizes nothing).
QUANTIZING_MODES = ("round", "quantize", "eightbit", "weights", "weights_rounded", "test")
_NODE_IN_MESSAGE = re.compile(r"\{\{node ([^}]+)\}\}|\bof node ([^\s']+)")


def validate_graph_def(graph_def, mode=None):
    """Raises QuantizeGraphError (one line, naming the node) for the first invalid node."""
    _check_op_types(graph_def)
    values = _check_consts(graph_def)
    _check_window_attrs(graph_def)  # first: a bad window also breaks the shapes after it
    _check_imports(graph_def)
    if mode in QUANTIZING_MODES:
        _check_weights(graph_def, values)


def _registered_ops():
    from tensorflow.python.framework import op_def_registry
    return op_def_registry


def _check_op_types(graph_def):
    if any(node.op.startswith("Qg") for node in graph_def.node):
        _load_qg_ops()
    registry = _registered_ops()
    for node in graph_def.node:
        if registry.get(node.op) is None:
            raise QuantizeGraphError("node '%s': unknown op type '%s'%s" % (node.name, node.op, _suggest(node.op)))


def check_op_type_names(names, what):
    """Op type names given by the user (--excluded_ops) must be TensorFlow ops: a typo would
    silently quantize what it meant to exclude."""
    registry = _registered_ops()
    for name in names:
        if registry.get(name) is None:
            raise QuantizeGraphError("%s '%s' is not a TensorFlow op type%s" % (what, name, _suggest(name)))


def _suggest(op):
    close = difflib.get_close_matches(op, _all_op_names(), n=3, cutoff=0.8)
    return "; did you mean %s?" % ", ".join(close) if close else ""


def _all_op_names():
    """Op names to suggest: tf.raw_ops has one wrapper per registered op."""
    import tensorflow as tf
    return [name for name in dir(tf.raw_ops) if name[:1].isupper()]


def _load_qg_ops():
    """Our op library, if built, so that graphs holding Qg ops validate too."""
    from quantize_graph import kernels
    if kernels.is_built():
        kernels.load()


def _check_consts(graph_def):
    """{Const name: its value as a numpy array}; a value that does not parse is an error."""
    from tensorflow.python.framework import tensor_util
    values = {}
    for node in graph_def.node:
        if node.op != "Const":
            continue
        tensor = node.attr["value"].tensor
        # TF's Const kernel CHECK-fails (aborts the process) when they differ.
        if "dtype" in node.attr and tensor.dtype != node.attr["dtype"].type:
            raise QuantizeGraphError("node '%s': Const value has dtype %s but the node declares %s"
                                     % (node.name, _dtype_name(tensor.dtype), _dtype_name(node.attr["dtype"].type)))
        try:
            shape = [d.size for d in tensor.tensor_shape.dim]
            if any(d < 0 for d in shape):
                raise ValueError("a negative dimension in shape %s" % shape)
            value = tensor_util.MakeNdarray(tensor)
            if list(value.shape) != shape:
                raise ValueError("it holds %d values for shape %s" % (value.size, shape))
        except Exception as e:  # TF raises TypeError, ValueError or its own errors here
            detail = " ".join(str(e).split()) or type(e).__name__
            raise QuantizeGraphError("node '%s': Const value does not match its dtype and shape "
                                     "(%s)" % (node.name, detail[:200]))
        if tensor.tensor_content and value.dtype != object:
            expected = value.size * value.dtype.itemsize
            if len(tensor.tensor_content) != expected:
                raise QuantizeGraphError(
                    "node '%s': Const tensor_content holds %d bytes, its dtype and shape need %d"
                    % (node.name, len(tensor.tensor_content), expected))
        values[node.name] = value
    return values


def _dtype_name(enum):
    import tensorflow as tf
    try:
        return tf.as_dtype(enum).name
    except TypeError:
        return "enum %d" % enum


def _check_imports(graph_def):
    """TensorFlow's importer: op definitions, attribute types and values, shape functions."""
    import tensorflow as tf
    try:
        with tf.Graph().as_default():
            tf.graph_util.import_graph_def(graph_def, name="")
    except (ValueError, TypeError, tf.errors.OpError) as e:
        raise QuantizeGraphError(_import_error_line(graph_def, str(e)))


# NHWC ops whose strides / ksize / dilations TF's shape functions accept with a batch or
# channel entry other than 1, although their CPU kernels refuse it at run time.
_WINDOW_OPS = {"Conv2D", "DepthwiseConv2dNative", "MaxPool", "AvgPool"}
_WINDOW_ATTRS = ("strides", "ksize", "dilations")


def _check_window_attrs(graph_def):
    for node in graph_def.node:
        if node.op not in _WINDOW_OPS or node.attr["data_format"].s not in (b"", b"NHWC"):
            continue
        for attr in _WINDOW_ATTRS:
            values = list(node.attr[attr].list.i) if attr in node.attr else []
            if len(values) == 4 and (values[0] != 1 or values[3] != 1):
                raise QuantizeGraphError(
                    "node '%s' (%s) is invalid: %s %s must be 1 in the batch and channel "
                    "positions" % (node.name, node.op, attr, values))


def _import_error_line(graph_def, message):
    """The importer's first sentence, with the node it names (or the node its op names)."""
    text = " ".join(message.split())
    found = _NODE_IN_MESSAGE.search(text)
    name = (found.group(1) or found.group(2)) if found else None
    # The message repeats the NodeDef and the op's whole signature after its first sentence.
    for cut in (" for '{{node", "; NodeDef:", " from Op<", " | ", "\t"):
        if cut in text:
            text = text[:text.index(cut)]
    if name is None:
        names = [n.name for n in graph_def.node if n.name and "'%s'" % n.name in message]
        name = names[0] if names else None
    op = next((n.op for n in graph_def.node if n.name == name), None)
    where = "node '%s' (%s)" % (name, op) if name else "the graph"
    return "%s is invalid: %s" % (where, text[:300].rstrip(" .:"))


def _check_weights(graph_def, values):
    """Weights that would be quantized must be finite and hold at least one value."""
    identities = {n.name: n.input[0] for n in graph_def.node
                  if n.op == "Identity" and n.input}
    for node in graph_def.node:
        for position in WEIGHT_INPUTS.get(node.op, ()):
            if position >= len(node.input):
                continue
            source = _through_identities(node.input[position], identities)
            value = values.get(source)
            if value is None or value.dtype.kind != "f":
                continue
            if value.size == 0:
                raise QuantizeGraphError("node '%s': weights '%s' of %s are empty (shape %s)"
                                         % (node.name, source, node.op, list(value.shape)))
            bad = ~np.isfinite(value)
            if bad.any():
                raise QuantizeGraphError(
                    "node '%s': weights '%s' hold %d NaN or Inf values, which have no 8-bit code"
                    % (node.name, source, int(bad.sum())))


def _through_identities(inp, identities):
    name = inp.lstrip("^").split(":")[0]
    seen = set()
    while name in identities and name not in seen:
        seen.add(name)
        name = identities[name].lstrip("^").split(":")[0]
    return name
