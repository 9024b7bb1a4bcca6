"""Bias correction: undo the mean shift that rounding a layer's weights causes.

A conv/matmul with int8 weights W_q computes W_q x instead of W x; the error (W_q - W) x has
a non-zero mean per output channel, (W_q - W) E[x], because activations after Relu are
positive and far from zero-mean. On MobileNet v1 that shift, not the noise, is most of the
quantization error (Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization
and Bias Correction"). E[x] per input channel is measured on the calibration inputs and the
shift is subtracted from the layer's bias, which the int8 kernels add in float.

The target supplies the weights it really multiplies by (`dequantized(op, weights,
transpose_b)`, weight_schemes.DEQUANTIZERS), so the correction matches its rounding, scales
and pair limits.
"""
import numpy as np

from quantize_graph.graph import patterns
from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import canonical_input
from quantize_graph.graph.nodes import const_value


def bias_corrections_from_means(graph_def, layer_names, means_of, dequantized):
    """{layer name: per-output-channel value to subtract from its bias} for the conv /
    depthwise / matmul nodes among `layer_names` that have Const weights, with E[x] from
    `means_of(input tensors)` -> {tensor: per-channel mean, or None where unknown}: measured
    on the calibration data (statistics/measure.py), or propagated from batch-norm statistics
    (Nagel et al.'s data-free bias correction). A layer whose input mean is unknown is not
    corrected."""
    index = GraphIndex(graph_def)
    heads = _heads(index, layer_names)
    if not heads:
        return {}
    means = means_of(sorted({canonical_input(h.input[0]) for h in heads}))
    corrections = {}
    for head in heads:
        mean = means.get(canonical_input(head.input[0]))
        if mean is None:
            continue
        weights = const_value(index.node(head.input[1])).astype(np.float64)
        transpose_b = head.op == "MatMul" and head.attr["transpose_b"].b
        channels = input_channels(head.op, weights, transpose_b)
        if np.size(mean) not in (1, channels):
            continue
        mean = np.broadcast_to(np.asarray(mean, np.float64).reshape(-1), [channels])
        error = dequantized(head.op, weights, transpose_b) - weights
        corrections[head.name] = output_shift(head.op, error, mean, transpose_b).astype(np.float32)
    return corrections


def input_channels(op, weights, transpose_b=False):
    """How many channels the input of a conv / depthwise / matmul with these weights has."""
    if op in ("Conv2D", "DepthwiseConv2dNative"):
        return weights.shape[2]
    return weights.shape[1] if transpose_b else weights.shape[0]


def output_shift(op, weight_error, input_mean, transpose_b=False):
    """(W_q - W) E[x] per output channel, for one layer's weight error and input channel means.

    Conv2D [h, w, in, out]: every tap sees the same mean (padding ignored). Depthwise
    [h, w, channels, multiplier]: output channel c*multiplier + m reads input channel c.
    MatMul [K, N] (or [N, K] with transpose_b).
    """
    if op == "Conv2D":
        return np.einsum("hwkc,k->c", weight_error, input_mean)
    if op == "DepthwiseConv2dNative":
        return np.einsum("hwcm,c->cm", weight_error, input_mean).reshape(-1)
    return (weight_error @ input_mean) if transpose_b else (input_mean @ weight_error)


def mean_tensors(graph_def, layer_names):
    """The tensors whose per-channel means the correction of `layer_names` reads."""
    return sorted({canonical_input(h.input[0]) for h in _heads(GraphIndex(graph_def), layer_names)})


def _heads(index, layer_names):
    """The conv / depthwise / matmul heads (with Const weights) among `layer_names`."""
    return [index.nodes[g.head] for g in patterns.conv_groups(index, set(layer_names))]
