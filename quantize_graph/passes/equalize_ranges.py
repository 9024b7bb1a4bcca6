"""Channel range equalization (float -> float): give every channel of an activation the whole
8-bit range before a depthwise conv.

An activation is quantized with one scale for all its channels, so a channel whose values stay
small (MobileNet v1 0.25: one channel of Conv2d_0 peaks at 0.34 of a [0, 6] range, 14 levels)
loses most of its precision. When a Relu/Relu6 layer feeds only depthwise convs, channel c can
be scaled by s_c = top / max_c (max_c measured on the calibration data, top the tensor's
largest channel max, so the tensor's range does not change): the producer's weights and bias are multiplied by s_c and
the depthwise filter of channel c divided by s_c. The depthwise weights are quantized per
channel, so their precision does not change; the activation's does, by s_c. This is the
activation half of cross-layer equalization (Nagel et al. 2019); consumers that mix channels
(Conv2D, MatMul) are left alone, since there a smaller weight row loses precision instead.

Relu is positively homogeneous, so the graph computes the same function. Relu6 of the scaled
channel clips at 6 / s_c = 6 max_c / top >= max_c: only values above what calibration saw in
that channel can be clipped, as a calibrated range clips them anyway.
"""
import numpy as np

from quantize_graph.graph import patterns
from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import canonical_input
from quantize_graph.graph.nodes import const_value, make_const
from quantize_graph.passes.context import result

PRODUCERS = ("Conv2D", "DepthwiseConv2dNative")


def equalize_with_maxima(graph_def, layer_names, maxima_of):
    """The graph with channel scales folded in, for each Relu/Relu6 layer among `layer_names`
    (conv/depthwise -> BiasAdd -> activation, Const weights) read only by depthwise convs with
    Const filters among `layer_names` (channel multiplier 1). Returns (graph, {activation: s}).

    Each activation's per-channel maxima come from `maxima_of(tensor names)` -> [array or
    None], called only if there is such a layer: measured on calibration data
    (statistics/measure.py), or propagated from batch-norm statistics (then a channel's max
    is its mean + k std, clipped at the activation's cap)."""
    index = GraphIndex(graph_def)
    candidates = _candidates(index, layer_names)
    if not candidates:
        return graph_def, {}
    maxima = maxima_of([c[2].name for c in candidates])
    consts = {}  # Const name -> new value
    scales = {}
    for (head, bias_add, act, readers), top_c in zip(candidates, maxima):
        if top_c is None:
            continue
        top = float(top_c.max())  # the tensor's range stays as it was (ranges files hold)
        if top <= 0:
            continue
        scale = np.where(top_c > 0, top / np.maximum(top_c, 1e-30), 1.0)
        scale = np.minimum(scale, top / np.maximum(top_c, top * 1e-3))  # no scale beyond 1000x
        if np.all(scale <= 1.0 + 1e-6):
            continue
        w_name, b_name = canonical_input(head.input[1]), canonical_input(bias_add.input[1])
        weights = consts.get(w_name, const_value(index.nodes[w_name]))
        consts[w_name] = _scale_output_channels(head.op, weights, scale)
        consts[b_name] = consts.get(b_name, const_value(index.nodes[b_name])) * scale
        for reader in readers:
            f_name = canonical_input(reader.input[1])
            filt = consts.get(f_name, const_value(index.nodes[f_name]))
            consts[f_name] = filt / scale.reshape(1, 1, -1, 1)
        scales[act.name] = scale
    if not consts:
        return graph_def, {}
    return _with_consts(graph_def, consts, index), scales


def candidate_layers(graph_def, layer_names):
    """[(activation, [the tensors inside its layer: conv and BiasAdd results])] of the layers
    equalize_with_maxima may scale: the activations are what it asks maxima of; the inside
    tensors are the only ones whose values change other than by a per-channel factor."""
    return [(act.name, [head.name, bias_add.name])
            for head, bias_add, act, _ in _candidates(GraphIndex(graph_def), layer_names)]


def _candidates(index, layer_names):
    groups = patterns.conv_groups(index, set(layer_names))
    return [c for c in (_candidate(index, g, layer_names) for g in groups) if c]


def _candidate(index, group, layer_names):
    """(head, BiasAdd, activation, depthwise readers) if the patterns.ConvGroup `group` is
    such a layer, else None."""
    head = index.nodes[group.head]
    if (head.op not in PRODUCERS or group.bias is None or group.activation is None
            or group.residual_add is not None):
        return None
    if head.op == "DepthwiseConv2dNative" and const_value(index.node(head.input[1])).shape[3] != 1:
        return None
    bias_add, act = index.nodes[group.bias], index.nodes[group.activation]
    readers = index.consumers.get(act.name, [])
    if not readers or any(
            r.op != "DepthwiseConv2dNative" or pos != 0 or r.name not in layer_names
            or not patterns.is_const(index, r.input[1]) or canonical_input(r.input[0]) != act.name
            or const_value(index.node(r.input[1])).shape[3] != 1
            for r, pos in readers):
        return None
    # Shared Consts would be scaled twice.
    shared = [canonical_input(head.input[1]), canonical_input(bias_add.input[1])] + \
             [canonical_input(r.input[1]) for r, _ in readers]
    if any(len(index.consumers.get(c, [])) != 1 for c in shared):
        return None
    return head, bias_add, act, [r for r, _ in readers]


def _scale_output_channels(op, weights, scale):
    if op == "Conv2D":
        return weights * scale
    return weights * scale.reshape(1, 1, -1, 1)  # depthwise [h, w, channels, 1]


def _with_consts(graph_def, consts, index):
    out = type(graph_def)()
    out.CopyFrom(graph_def)
    for node in out.node:
        if node.name in consts:
            dtype = const_value(index.nodes[node.name]).dtype
            node.CopyFrom(make_const(node.name, np.asarray(consts[node.name]).astype(dtype)))
    return out


def run(graph_def, ctx):
    """The pass, on the quantized layers, with the maxima of ctx.statistics.maxima_of:
    facts `scales` ({activation: per-channel scale})."""
    g, scales = equalize_with_maxima(graph_def, ctx.quantized, ctx.statistics.maxima_of)
    return result(g, scales=scales)
