"""The `weights` and `weights_rounded` modes: only the stored weights change; compute stays float.

The weights of Conv2D, DepthwiseConv2dNative and MatMul are quantized per output channel:
after batch-norm folding their channels' scales differ by up to 100x (MobileNet v1), and one
range per tensor loses the small channels (measured: top-1 58% -> 0.5%). Biases and other
small vectors stay float: they are a few KB, and one 8-bit range cannot hold them either.
"""
import numpy as np
import tensorflow as tf

from quantize_graph.graph.edit import graph_with_nodes
from quantize_graph.graph.nodes import (const_value, create_constant_node, create_node, set_attr_dtype,
                                        set_attr_int, set_attr_string)

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
        if node.op == "Conv2D":
            axis = 3
        elif node.op == "DepthwiseConv2dNative":
            axis = 2  # [H, W, in, multiplier]: batch-norm scales vary along `in`
        else:
            axis = 0 if node.attr["transpose_b"].b else 1
        axes.setdefault(name, axis)
    return axes


def round_keeping_sums(levels, axis, top):
    """Rounds `levels` (float positions on an integer grid 0..top) to integers so that every
    channel's sum of rounding errors is as close to zero as the grid allows.

    Plain rounding leaves each channel's output with an error of x * sum(errors) on smooth
    inputs; after batch-norm folding some channels are large weights that nearly cancel, and
    that error is then as big as the signal (MobileNet v1, 8-bit weights: top-1 -2.4 points
    with plain rounding, -0.9 with this). Each value still moves by less than one step.
    """
    moved = np.moveaxis(levels, axis, -1)
    flat = moved.reshape(-1, moved.shape[-1])
    low = np.floor(flat)
    frac = flat - low
    ups = np.round(frac.sum(axis=0)).astype(np.int64)  # how many values to round up, per channel
    rank = np.argsort(np.argsort(-frac, axis=0, kind="stable"), axis=0, kind="stable")
    rounded = np.clip(low + (rank < ups), 0, top)
    return np.moveaxis(rounded.reshape(moved.shape), -1, axis)


def per_channel_ranges(values, axis):
    """Per-channel (min, max) along `axis`, never empty."""
    other = tuple(a for a in range(values.ndim) if a != axis)
    lo, hi = values.min(axis=other), values.max(axis=other)
    return lo, np.where(hi > lo, hi, lo + 1.0)


def quantize_weight_per_channel(node, axis):
    """[quint8 Const, min Const, max Const, Dequantize(MIN_COMBINED, axis) named like `node`]."""
    values = const_value(node).astype(np.float32)
    lo, hi = per_channel_ranges(values, axis)
    shape = [1] * values.ndim
    shape[axis] = -1
    scale = (hi - lo) / 255.0
    levels = (values.astype(np.float64) - lo.reshape(shape)) / scale.reshape(shape)
    q = round_keeping_sums(levels, axis, 255).astype(np.uint8)
    base = node.name + "_"
    const = create_constant_node(base + "quint8_const", q, tf.quint8, shape=list(q.shape))
    min_node = create_constant_node(base + "min", lo.astype(np.float32), tf.float32, shape=[lo.size])
    max_node = create_constant_node(base + "max", hi.astype(np.float32), tf.float32, shape=[hi.size])
    dequantize = create_node("Dequantize", node.name, [const.name, min_node.name, max_node.name])
    set_attr_dtype(dequantize, "T", tf.quint8)
    set_attr_string(dequantize, "mode", b"MIN_COMBINED")  # the mode TF dequantizes per channel
    set_attr_int(dequantize, "axis", axis)
    return [const, min_node, max_node, dequantize]


def round_per_channel(node, axis, bitdepth):
    """The Const with each output channel rounded to 2^bitdepth evenly spaced levels from its
    minimum to its maximum (the levels the `weights` mode stores), kept as float."""
    values = const_value(node).astype(np.float64)
    lo, hi = per_channel_ranges(values, axis)
    shape = [1] * values.ndim
    shape[axis] = -1
    step = ((hi - lo) / ((1 << bitdepth) - 1)).reshape(shape)
    index = round_keeping_sums((values - lo.reshape(shape)) / step, axis, (1 << bitdepth) - 1)
    rounded = (lo.reshape(shape) + step * index).astype(np.float32)
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
        nodes.extend(round_per_channel(node, axes[node.name], bitdepth) if node.name in axes else [node])
    return graph_with_nodes(graph_def, nodes)
