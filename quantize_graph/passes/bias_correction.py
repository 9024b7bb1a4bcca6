"""Bias correction: undo the mean shift that rounding a layer's weights causes.

A conv/matmul with int8 weights W_q computes W_q x instead of W x; the error (W_q - W) x has
a non-zero mean per output channel, (W_q - W) E[x], because activations after Relu are
positive and far from zero-mean. On MobileNet v1 that shift, not the noise, is most of the
quantization error (Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization
and Bias Correction"). E[x] per input channel is measured on the calibration inputs and the
shift is subtracted from the layer's bias, which the int8 kernels add in float.

The target supplies the weights it really multiplies by (`dequantized(op, weights,
transpose_b)`), so the correction matches its rounding, scales and pair limits.
"""
import numpy as np

from quantize_graph.graph import patterns
from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import canonical_input, ensure_tensor_name_has_port
from quantize_graph.graph.nodes import const_value
from quantize_graph.runner import GraphRunner


def bias_corrections(graph_def, layer_names, batches, dequantized):
    """{layer name: per-output-channel value to subtract from its bias} for the conv /
    depthwise / matmul nodes among `layer_names` that have Const weights.

    `batches` are the calibration feeds ([{input tensor: array}]) the float graph runs on.
    """
    def measured(inputs):
        return dict(zip(inputs, channel_means(graph_def, inputs, batches)))
    return bias_corrections_from_means(graph_def, layer_names, measured, dequantized)


def bias_corrections_from_means(graph_def, layer_names, means_of, dequantized):
    """The same, with E[x] from `means_of(input tensors)` -> {tensor: per-channel mean, or
    None where unknown}: measured on data, or propagated from batch-norm statistics (Nagel et
    al.'s data-free bias correction). A layer whose input mean is unknown is not corrected."""
    index = GraphIndex(graph_def)
    heads = [index.nodes[g.head] for g in patterns.conv_groups(index, set(layer_names))]
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


def channel_means(graph_def, tensors, batches):
    """[mean over every axis but the last] of each float tensor, over all the batches."""
    sums = [0.0] * len(tensors)
    counts = [0] * len(tensors)
    fetches = [ensure_tensor_name_has_port(t) for t in tensors]
    with GraphRunner(graph_def) as runner:
        for feeds in batches:
            for i, value in enumerate(runner.run(fetches, feeds)):
                flat = value.reshape(-1, value.shape[-1]).astype(np.float64)
                sums[i] = sums[i] + flat.sum(axis=0)
                counts[i] += len(flat)
    return [s / max(c, 1) for s, c in zip(sums, counts)]
