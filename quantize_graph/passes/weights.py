"""The `weights` and `weights_rounded` modes: only the stored weights change; compute stays float.

The weights of Conv2D, DepthwiseConv2dNative and MatMul are quantized per output channel:
after batch-norm folding their channels' scales differ by up to 100x (MobileNet v1), and one
range per tensor loses the small channels (measured: top-1 58% -> 0.5%). Biases and other
small vectors stay float: they are a few KB, and one 8-bit range cannot hold them either.
The codes come from weight_schemes.py (`quantize_per_channel`, `round_per_channel`).
"""
import numpy as np
import tensorflow as tf

from quantize_graph.graph.edit import graph_with_nodes
from quantize_graph.graph.nodes import (const_value, create_constant_node, create_node, set_attr_dtype,
                                        set_attr_int, set_attr_string)
from quantize_graph.weight_schemes import output_axis, quantize_per_channel, round_per_channel
from quantize_graph.passes.context import result

MIN_WEIGHT_ELEMENTS = 16  # smaller constants (shapes, scalars) gain nothing from 8 bits


def weight_axes(graph_def):
    """{float Const name: its output-channel axis} for the weights of Conv2D, depthwise, MatMul."""
    consts = {n.name: n for n in graph_def.node if n.op == "Const"
              and n.attr["dtype"].type == tf.float32.as_datatype_enum}
    axes = {}
    for node in graph_def.node:
        if node.op not in ("Conv2D", "DepthwiseConv2dNative", "MatMul") or len(node.input) < 2:
            continue
        name = node.input[1]
        if name not in consts or const_value(consts[name]).size < MIN_WEIGHT_ELEMENTS:
            continue
        transpose_b = node.op == "MatMul" and node.attr["transpose_b"].b  # (reading adds the attr)
        axes.setdefault(name, output_axis(node.op, transpose_b))
    return axes


def quantize_weight_per_channel(node, axis):
    """[quint8 Const, min Const, max Const, Dequantize(MIN_COMBINED, axis) named like `node`]."""
    q, lo, hi = quantize_per_channel(const_value(node).astype(np.float32), axis)
    base = node.name + "_"
    const = create_constant_node(base + "quint8_const", q, tf.quint8, shape=list(q.shape))
    min_node = create_constant_node(base + "min", lo, tf.float32, shape=[lo.size])
    max_node = create_constant_node(base + "max", hi, tf.float32, shape=[hi.size])
    dequantize = create_node("Dequantize", node.name, [const.name, min_node.name, max_node.name])
    set_attr_dtype(dequantize, "T", tf.quint8)
    set_attr_string(dequantize, "mode", b"MIN_COMBINED")  # the mode TF dequantizes per channel
    set_attr_int(dequantize, "axis", axis)
    return [const, min_node, max_node, dequantize]


def round_weight_per_channel(node, axis, bitdepth):
    """The Const with each output channel rounded to 2^bitdepth evenly spaced levels from its
    minimum to its maximum (the levels the `weights` mode stores), kept as float."""
    values = const_value(node)
    rounded = round_per_channel(values, axis, bitdepth)
    return [create_constant_node(node.name, rounded, tf.float32, shape=list(values.shape))]


def quantize_weights(graph_def):
    """Weights stored as quint8 per channel, expanded by a Dequantize at run time."""
    axes = weight_axes(graph_def)
    nodes = []
    for node in graph_def.node:
        nodes.extend(quantize_weight_per_channel(node, axes[node.name]) if node.name in axes else [node])
    return graph_with_nodes(graph_def, nodes)


def round_weights(graph_def, bitdepth):
    """Weights rounded to 2^bitdepth levels per channel and stored as float (they compress well)."""
    axes = weight_axes(graph_def)
    nodes = []
    for node in graph_def.node:
        nodes.extend(round_weight_per_channel(node, axes[node.name], bitdepth) if node.name in axes else [node])
    return graph_with_nodes(graph_def, nodes)


def run(graph_def, ctx):
    """The pass, for mode `weights` (quint8 + Dequantize) or `weights_rounded` (float)."""
    if ctx.options.mode == "weights":
        return result(quantize_weights(graph_def))
    return result(round_weights(graph_def, ctx.options.bitdepth))
