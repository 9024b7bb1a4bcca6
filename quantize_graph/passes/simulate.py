"""The `round` and `quantize` modes: preview quantization error while computing in float.

round:    activations entering quantizable ops pass through FakeQuantWithMinMaxVars with
          their run-time min/max at --bitdepth bits; weights are rounded to 2^bitdepth levels.
quantize: inputs of Conv2D, BiasAdd and MatMul pass through a real QuantizeV2 -> Dequantize
          pair (quint8 for 8 bits, quint16 for 16).
"""
import numpy as np
import tensorflow as tf

from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph.edit import NameAllocator, copy_graph
from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import canonical_input, unique_node_name_from_input
from quantize_graph.graph.nodes import create_node, make_const, set_attr_bool, set_attr_dtype, set_attr_int, set_attr_string
from quantize_graph.passes.weights import round_weights
from quantize_graph.passes.context import result

QUANTIZE_MODE_OPS = {"Conv2D", "BiasAdd", "MatMul"}
_QUANTIZE_TYPES = {8: tf.quint8, 16: tf.quint16}


def round_graph(graph_def, quantizable_names, bitdepth):
    if not 2 <= bitdepth <= 16:
        raise QuantizeGraphError("--bitdepth must be between 2 and 16 for mode round, got %d" % bitdepth)

    def fake_quant(names, new_nodes, tensor):
        lo, hi = _runtime_range(names, new_nodes, tensor)
        fq = create_node("FakeQuantWithMinMaxVars", names(_base(tensor) + "_round"), [tensor, lo, hi])
        set_attr_int(fq, "num_bits", bitdepth)
        return fq

    g = _insert_on_inputs(graph_def, quantizable_names, fake_quant)
    return round_weights(g, bitdepth)


def quantize_dequantize_graph(graph_def, bitdepth):
    if bitdepth not in _QUANTIZE_TYPES:
        raise QuantizeGraphError("--bitdepth must be 8 or 16 for mode quantize, got %d" % bitdepth)
    dtype = _QUANTIZE_TYPES[bitdepth]
    targets = {n.name for n in graph_def.node
               if n.op in QUANTIZE_MODE_OPS and n.attr["T"].type == tf.float32.as_datatype_enum}

    def pair(names, new_nodes, tensor):
        lo, hi = _runtime_range(names, new_nodes, tensor)
        q = create_node("QuantizeV2", names(_base(tensor) + "_quantize"), [tensor, lo, hi])
        dq = create_node("Dequantize", names(_base(tensor) + "_dequantize"),
                         [q.name, q.name + ":1", q.name + ":2"])
        for n in (q, dq):
            set_attr_dtype(n, "T", dtype)
            set_attr_string(n, "mode", b"MIN_FIRST")
        new_nodes.append(q)
        return dq

    return _insert_on_inputs(graph_def, targets, pair, include_consts=True)


def _base(tensor):
    return unique_node_name_from_input(tensor)


def _runtime_range(names, new_nodes, tensor):
    base = _base(tensor)
    axis = make_const(names(base + "_reduction_dims"), np.array([0], np.int32))
    shape = make_const(names(base + "_flat_shape"), np.array([-1], np.int32))
    flat = create_node("Reshape", names(base + "_flat"), [tensor, shape.name])
    set_attr_dtype(flat, "T", tf.float32)
    new_nodes.extend([axis, shape, flat])
    ends = []
    for op in ("Min", "Max"):
        r = create_node(op, names("%s_%s" % (base, op.lower())), [flat.name, axis.name])
        set_attr_dtype(r, "T", tf.float32)
        set_attr_bool(r, "keep_dims", False)
        new_nodes.append(r)
        ends.append(r.name)
    return ends


def _insert_on_inputs(graph_def, target_names, make, include_consts=False):
    """Puts make(tensor) between each float data input of the target nodes and the target.

    One inserted node per tensor, shared by all target readers of it.
    """
    g = copy_graph(graph_def)
    index = GraphIndex(g)
    names = NameAllocator(g)
    new_nodes, inserted = [], {}
    for node in g.node:
        if node.name not in target_names:
            continue
        for i, inp in enumerate(node.input):
            if inp.startswith("^"):
                continue
            src = index.node(inp)
            if not _is_float_output(src) or (src.op == "Const" and not include_consts):
                continue
            key = canonical_input(inp)
            if key not in inserted:
                end = make(names, new_nodes, key)
                new_nodes.append(end)
                inserted[key] = end.name
            node.input[i] = inserted[key]
    g.node.extend(new_nodes)
    return g


def _is_float_output(node):
    if node.op in ("Shape", "Size", "Rank"):  # their T is the input's type, not the output's
        return False
    for attr in ("T", "dtype"):
        if attr in node.attr:
            return node.attr[attr].type == tf.float32.as_datatype_enum
    return False


def run(graph_def, ctx):
    """The pass, for mode `round` (FakeQuant before the quantized nodes) or `quantize`."""
    if ctx.options.mode == "round":
        return result(round_graph(graph_def, ctx.quantized, ctx.options.bitdepth))
    return result(quantize_dequantize_graph(graph_def, ctx.options.bitdepth))
