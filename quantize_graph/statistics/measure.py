"""Statistics measured on calibration data: one run of the float graph over the batches, each
fetched tensor reduced to what its consumers asked for.

  ranges  min/max per tensor (then, for percentile and entropy, a second pass for the |x|
          histogram over the range the first found: calibrate.py chooses the range);
  means   per-channel E[x] (bias correction);
  maxima  per-channel max (range equalization).

A tensor asked for twice is fetched once.
"""
import dataclasses
import math

import numpy as np

from quantize_graph.graph.names import ensure_tensor_name_has_port
from quantize_graph.runner import GraphRunner

BINS = 2048


class TensorStats:
    """Min/max (pass 1) and a histogram of |x| over [0, absmax] (pass 2) of one tensor."""

    def __init__(self):
        self.min, self.max = math.inf, -math.inf
        self.hist = None

    @property
    def absmax(self):
        return max(abs(self.min), abs(self.max))

    def add_range(self, values):
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))

    def add_histogram(self, values):
        top = self.absmax or 1.0
        hist, _ = np.histogram(np.abs(values), bins=BINS, range=(0.0, top))
        self.hist = hist if self.hist is None else self.hist + hist


@dataclasses.dataclass
class Measurements:
    tensors: dict   # {tensor: TensorStats} for the ranges
    means: dict     # {tensor: per-channel mean, float64}
    maxima: dict    # {tensor: per-channel max, float64}
    batches_run: int = 0  # batches fed to the graph, over all passes
    minima: dict = None   # {tensor: per-channel min, float64}


class _ChannelMean:
    def __init__(self):
        self.sum, self.count = 0.0, 0

    def add(self, value):
        flat = value.reshape(-1, value.shape[-1]).astype(np.float64)
        self.sum = self.sum + flat.sum(axis=0)
        self.count += len(flat)

    def result(self):
        return self.sum / max(self.count, 1)


class _ChannelExtreme:
    """Per-channel max (or min) over all examples."""

    def __init__(self, pick):
        self.pick, self.top = pick, None

    def add(self, value):
        m = self.pick.reduce(value.reshape(-1, value.shape[-1]), axis=0).astype(np.float64)
        self.top = m if self.top is None else self.pick(self.top, m)

    def result(self):
        return self.top


def measure(graph_def, batches, ranges=(), means=(), maxima=(), histograms=False, progress=None,
            minima=()):
    """Runs the graph over `batches` ([{input tensor: array}]) once (twice with `histograms`,
    which need the ranges of the first pass) and returns the Measurements of the tensors
    named in `ranges`, `means` and `maxima`."""
    stats = {t: TensorStats() for t in ranges}
    reducers = ([(t, "mean", _ChannelMean()) for t in means] +
                [(t, "max", _ChannelExtreme(np.maximum)) for t in maxima] +
                [(t, "min", _ChannelExtreme(np.minimum)) for t in minima])
    tensors = list(dict.fromkeys(list(ranges) + [t for t, _, _ in reducers]))
    position = {t: i for i, t in enumerate(tensors)}
    fetches = [ensure_tensor_name_has_port(t) for t in tensors]
    passes = 2 if histograms and stats else 1
    run = 0
    if tensors:
        with GraphRunner(graph_def) as runner:
            for pass_index in range(passes):
                for feeds in batches:
                    values = runner.run(fetches, feeds)
                    run += 1
                    for name, s in stats.items():
                        if pass_index == 0:
                            s.add_range(values[position[name]])
                        else:
                            s.add_histogram(values[position[name]])
                    if pass_index == 0:
                        for name, _, reducer in reducers:
                            reducer.add(values[position[name]])
                    if progress is not None:
                        progress.update(len(next(iter(feeds.values()))) / passes)
    results = {kind: {t: r.result() for t, k, r in reducers if k == kind} for kind in ("mean", "max", "min")}
    return Measurements(stats, results["mean"], results["max"], run, results["min"])
