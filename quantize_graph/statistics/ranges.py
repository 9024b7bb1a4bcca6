"""Ranges without calibration data: batch-norm statistics propagated to every tensor the
lowering freezes a range for.

A tensor's range is the union over its channels of [mean - k std, mean + k std], clipped to
what its activation keeps (Relu: >= 0, Relu6: [0, 6]). DEFAULT_K was chosen by measurement
(docs/statistics_ranges.md): it is the k whose ranges come closest to minmax calibration on
100 photos for the generated Inception-v3, and the real MobileNet v1 0.25 loses least top-1
with it.
"""
import numpy as np

from quantize_graph.graph.names import split_input
from quantize_graph.statistics.propagate import propagate, uniform_stats

DEFAULT_K = 6.0
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
    """
    inputs = {}
    if input_range is not None:
        inputs = {name: uniform_stats(*input_range) for name in input_names}
    stats = propagate(graph_def, bn_moments, inputs, k)
    ranges, sources = {}, {}
    for tensor in tensors:
        name, port, _ = split_input(tensor)
        if port != 0 or name not in stats:
            continue
        lo, hi = stats[name].range()
        if not (np.isfinite(lo) and np.isfinite(hi)):
            continue
        ranges[tensor] = (lo, max(hi, lo + 1e-6))
        sources[tensor] = INPUT_SOURCE if name in inputs else SOURCE
    return ranges, sources, stats


def channel_means(stats, tensors):
    """{tensor: E[x] per channel (one value for all channels where the statistics do not tell
    them apart), or None} from the propagated statistics."""
    means = {}
    for tensor in tensors:
        name, port, _ = split_input(tensor)
        st = stats.get(name) if port == 0 else None
        means[tensor] = None if st is None else st.mean
    return means
