"""Ranges without calibration data: batch-norm statistics propagated to every tensor the
lowering freezes a range for.

A tensor's range is the union over its channels of [mean - k std, mean + k std], clipped to
what its activation keeps (Relu: >= 0, Relu6: [0, 6]). k depends on depth (`k_at_depth`):
the first layers of a CNN see heavy-tailed features (edges in natural images), the deep ones
near-normal sums. Measured on the generated Inception-v3 and MobileNet-v2 (100 photos, minmax
calibration, docs/statistics_ranges.md), the k at which mean + k std meets the calibrated
maximum is 10-14 at depth 1-5 and 4.5-5 from depth ~15 on, in both nets; k_at_depth follows
that curve, so the ranges are what minmax calibration would give. Two-sided tensors (no
activation after them: linear bottlenecks, residual sums) follow the same curve: their
calibrated ranges are as heavy-tailed near the input (MobileNet-v2: 2.5x mean + 4 std).
"""
import math

import numpy as np

from quantize_graph.graph.names import split_input
from quantize_graph.statistics.batch_norm import ChannelMoments
from quantize_graph.statistics.propagate import propagate, uniform_stats

DEFAULT_K = 4.5       # k deep in the net
EARLY_EXTRA_K = 8.0   # added at depth 1, decaying ...
EARLY_DEPTH = 6.0     # ... by a factor e every this many layers
EQUALIZE_K = 6.0      # range equalization's per-channel maxima: mean + this * std
SOURCE = "batch-norm statistics"
FROM_STATISTICS = "ranges from batch-norm statistics, no calibration data"
INPUT_SOURCE = "input range"


def image_input_range(mean, std):
    """The range of a 0..255 pixel after (pixel - mean) / std."""
    lo, hi = (0.0 - mean) / std, (255.0 - mean) / std
    return (min(lo, hi), max(lo, hi))


def statistics_ranges(graph_def, bn_moments, tensors, input_names=(), input_range=None,
                      k=DEFAULT_K):
    """(ranges {tensor: (min, max)}, sources {tensor: source}, stats {tensor: TensorStats})
    for the tensors among `tensors` that the statistics reach.

    graph_def: the prepared (folded) graph; bn_moments: batch_norm.batch_norm_moments of the
    graph before folding; input_range: (min, max) of every graph input, or None.

    k: the range half-width deep in the net, in standard deviations (k_at_depth adds to it
    near the input), for one-sided and two-sided tensors alike.
    """
    stats = propagated(graph_def, bn_moments, input_names, input_range, k_at_depth(k))
    ranges, sources = {}, {}
    for tensor in tensors:
        name, port, _ = split_input(tensor)
        if port != 0 or name not in stats:
            continue
        lo, hi = stats[name].range()
        if not (np.isfinite(lo) and np.isfinite(hi)):
            continue
        ranges[tensor] = (lo, max(hi, lo + 1e-6))
        sources[tensor] = INPUT_SOURCE if name in input_names and input_range else SOURCE
    return ranges, sources, stats


def k_at_depth(k_deep=DEFAULT_K):
    """k as a function of depth (conv/depthwise/matmul layers from the input)."""
    return lambda depth: k_deep + EARLY_EXTRA_K * math.exp(-max(depth - 1, 0) / EARLY_DEPTH)


def propagated(graph_def, bn_moments, input_names=(), input_range=None, k=DEFAULT_K, shapes=None):
    """{tensor: TensorStats} of the prepared graph, from the batch norms and the input range."""
    inputs = {}
    if input_range is not None:
        inputs = {name: uniform_stats(*input_range) for name in input_names}
    return propagate(graph_def, bn_moments, inputs, k, shapes)


def channel_maxima(stats, tensors):
    """[per-channel upper end of the range, or None] of each tensor (range equalization)."""
    return [stats[t].hi if t in stats else None for t in tensors]


def rescaled(bn_moments, graph_def, scales):
    """The batch-norm moments after range equalization scaled the channels of the layers in
    `scales` ({activation: per-channel scale}): the batch norm before each such activation
    (its input, the folded BiasAdd) now has mean * s and variance * s^2."""
    inputs = {n.name: split_input(n.input[0])[0] for n in graph_def.node if n.name in scales}
    out = dict(bn_moments)
    for act, scale in scales.items():
        name = inputs.get(act)
        if name in out and len(out[name].mean) == len(scale):
            m = out[name]
            out[name] = ChannelMoments(m.mean * scale, m.var * scale * scale)
    return out


def channel_means(stats, tensors):
    """{tensor: E[x] per channel (one value for all channels where the statistics do not tell
    them apart), or None} from the propagated statistics."""
    means = {}
    for tensor in tensors:
        name, port, _ = split_input(tensor)
        st = stats.get(name) if port == 0 else None
        means[tensor] = None if st is None else st.mean
    return means


def channel_moments(stats, tensor):
    """(E[x], Var[x]) per channel of `tensor` (one value for all channels where the statistics
    do not tell them apart), or None."""
    name, port, _ = split_input(tensor)
    st = stats.get(name) if port == 0 else None
    return None if st is None else (st.mean, st.var)
