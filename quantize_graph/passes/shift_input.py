"""Shift a signed graph input into quint8's range (float -> float), so the first conv can run
in 8 bits on targets whose activations have no zero point (onednn).

An image in [-1, 1] cannot be quint8 with zero at 0, so the conv reading it stays float. But
conv(x) = conv(x + c) - conv(c): with the conv's padding made explicit (a float Pad with 0,
then a VALID conv), x' = pad(x) + c is >= 0 and -conv(c) = -c * sum(w over taps and input
channels) is a constant per output channel, folded into the bias. For images
((pixel - 127.5) / 127.5, c = 1) the quint8 codes of x' over [0, 2] are the pixels themselves.
"""
import numpy as np
import tensorflow as tf

from quantize_graph.graph.edit import NameAllocator, graph_with_nodes
from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import canonical_input
from quantize_graph.graph.nodes import const_value, create_node, make_const, set_attr_dtype, set_attr_string
from quantize_graph.graph.shapes import window_output_size
from quantize_graph.passes.context import result


def shift_signed_inputs(graph_def, layer_names, calibration_inputs):
    """(graph, [shifted conv names]): each Conv2D among `layer_names` that reads a graph input
    (a Placeholder with a static height and width) that calibration saw negative, with Const
    weights and a Const BiasAdd, gets the shifted form above."""
    index = GraphIndex(graph_def)
    names = NameAllocator(graph_def)
    new_nodes, replaced, shifted = [], {}, []
    for name in sorted(layer_names):
        conv = index.nodes[name]
        plan = _plan(index, conv, layer_names, calibration_inputs)
        if plan is None:
            continue
        bias_add, shift, pads = plan
        weights = const_value(index.node(conv.input[1])).astype(np.float64)
        pad = create_node("Pad", names(name + "/shift_pad"), [conv.input[0], _const(
            new_nodes, names(name + "/shift_paddings"), np.array(pads, np.int32))])
        set_attr_dtype(pad, "T", tf.float32)
        set_attr_dtype(pad, "Tpaddings", tf.int32)
        add = create_node("AddV2", names(name + "/shift"), [pad.name, _const(
            new_nodes, names(name + "/shift_value"), np.float32(shift))])
        set_attr_dtype(add, "T", tf.float32)
        new_conv = type(conv)()
        new_conv.CopyFrom(conv)
        new_conv.input[0] = add.name
        set_attr_string(new_conv, "padding", b"VALID")
        bias_name = canonical_input(bias_add.input[1])
        bias = const_value(index.nodes[bias_name]).astype(np.float64)
        replaced[bias_name] = make_const(bias_name, (bias - shift * weights.sum(axis=(0, 1, 2))).astype(np.float32))
        replaced[name] = new_conv
        new_nodes += [pad, add]
        shifted.append(name)
    if not shifted:
        return graph_def, []
    nodes = [replaced.get(n.name, n) for n in graph_def.node]
    return graph_with_nodes(graph_def, nodes + new_nodes), shifted


def _plan(index, conv, layer_names, calibration_inputs):
    """(BiasAdd, shift, paddings) if `conv` qualifies, else None."""
    if conv.op != "Conv2D" or conv.attr["data_format"].s not in (b"", b"NHWC"):
        return None
    src = index.get(conv.input[0])
    weights = index.get(conv.input[1])
    if src is None or src.op != "Placeholder" or src.name not in calibration_inputs:
        return None
    if weights is None or weights.op != "Const" or canonical_input(conv.input[0]) != src.name:
        return None
    if any(d != 1 for d in conv.attr["dilations"].list.i or [1]):
        return None
    readers = index.consumers.get(conv.name, [])
    if len(readers) != 1 or readers[0][0].op not in ("BiasAdd", "BiasAddV1") or readers[0][1] != 0:
        return None
    bias_add = readers[0][0]
    bias_src = index.get(bias_add.input[1])
    if bias_add.name not in layer_names or bias_src is None or bias_src.op != "Const":
        return None
    low = float(np.min(calibration_inputs[src.name]))
    if low >= 0:
        return None
    dims = [d.size for d in src.attr["shape"].shape.dim]
    if len(dims) != 4 or dims[1] <= 0 or dims[2] <= 0:
        return None
    kernel = const_value(weights).shape
    strides = list(conv.attr["strides"].list.i)
    pads = [[0, 0], [0, 0], [0, 0], [0, 0]]
    if conv.attr["padding"].s == b"SAME":
        for axis in (1, 2):
            size, k, s = dims[axis], kernel[axis - 1], strides[axis]
            pads[axis] = list(window_output_size(size, k, s, 1, "SAME")[1:])
    elif conv.attr["padding"].s != b"VALID":
        return None
    return bias_add, -low, pads


def _const(new_nodes, name, value):
    node = make_const(name, value)
    new_nodes.append(node)
    return node.name


def run(graph_def, ctx):
    """The pass, on the quantized convs and the calibration inputs: facts `shifted`."""
    g, shifted = shift_signed_inputs(graph_def, ctx.quantized, ctx.calibration)
    return result(g, shifted=shifted)
