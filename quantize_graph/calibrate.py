"""The calibrate stage's range choice: each tensor's range from its measured statistics
(statistics/measure.py), and the ranges file.

Methods (as in ONNX Runtime and TensorRT):
  minmax      the smallest and largest value seen;
  percentile  clip |x| at the given percentile of all values seen;
  entropy     the clipping threshold whose 8-bit histogram is closest (KL divergence) to the
              float histogram of |x| (TensorRT's entropy calibration).
A tensor whose values are all >= 0 gets [0, t]; otherwise [max(min, -t), min(max, t)].
"""
import hashlib
import json
import math

import numpy as np

from quantize_graph.errors import QuantizeGraphError
from quantize_graph.statistics.measure import BINS, TensorStats, measure  # noqa: F401 (TensorStats: API)

METHODS = ("minmax", "percentile", "entropy")
# Entropy calibration clips tails; a last bin holding more than this share of all values is
# a saturation bound (e.g. Relu6's 6), and clipping it would move all those values.
SATURATION_MASS = 1e-3


def choose_range(stats, method="minmax", percentile=99.99):
    """(lo, hi) for one tensor's stats; never an empty range."""
    if method not in METHODS:
        raise QuantizeGraphError("unknown calibration method '%s'; expected one of %s"
                                 % (method, ", ".join(METHODS)))
    lo, hi = stats.min, stats.max
    if method != "minmax" and stats.hist is not None and stats.absmax > 0:
        width = stats.absmax / BINS
        if method == "percentile":
            bins = _percentile_bins(stats.hist, percentile)
        elif stats.hist[-1] > SATURATION_MASS * stats.hist.sum():
            bins = len(stats.hist)  # a pile-up at the edge is a bound (Relu6), not a tail
        else:
            bins = _entropy_bins(stats.hist, levels=255 if lo >= 0 else 128)
        threshold = bins * width
        lo, hi = max(lo, -threshold), min(hi, threshold)
    lo, hi = min(lo, 0.0), max(hi, 0.0)  # 8-bit ranges always hold zero exactly
    if hi - lo < 1e-6:
        hi = lo + 1e-6
    return lo, hi


def _percentile_bins(hist, percentile):
    if not 0 < percentile <= 100:
        raise QuantizeGraphError("--calibration_percentile must be in (0, 100], got %g" % percentile)
    cumulative = np.cumsum(hist)
    return int(np.searchsorted(cumulative, cumulative[-1] * percentile / 100.0)) + 1


def _entropy_bins(hist, levels, stride=8):
    """Number of histogram bins to keep: the one minimising KL(float || quantized)."""
    hist = hist.astype(np.float64)
    best, best_bins = math.inf, len(hist)
    for bins in range(levels, len(hist) + 1, stride):
        reference = hist[:bins].copy()
        reference[-1] += hist[bins:].sum()  # clipped values land in the last kept bin
        quantized = _expand(hist[:bins], levels)
        divergence = _kl(reference, quantized)
        if divergence < best:
            best, best_bins = divergence, bins
    return best_bins


def _expand(hist, levels):
    """Merges `hist` into `levels` buckets, then spreads each back over its non-empty bins."""
    edges = np.linspace(0, len(hist), levels + 1).astype(np.int64)
    sums = np.add.reduceat(hist, edges[:-1])
    nonzero = np.add.reduceat((hist > 0).astype(np.float64), edges[:-1])
    per_bin = np.divide(sums, nonzero, out=np.zeros_like(sums), where=nonzero > 0)
    return np.where(hist > 0, np.repeat(per_bin, np.diff(edges)), 0.0)


def _kl(p, q):
    p, q = _smooth(p / p.sum()), _smooth(q / max(q.sum(), 1e-12))
    return float(np.sum(p * np.log(p / q)))


def _smooth(dist, eps=1e-4):
    """Gives empty bins a little mass, taken from the others, so the divergence stays finite;
    otherwise an outlier that happens to fall in the last kept bin decides the threshold."""
    zeros = dist == 0
    if zeros.all() or not zeros.any():
        return np.where(zeros, eps, dist)
    taken = eps * zeros.sum() / (~zeros).sum()
    return np.where(zeros, eps, dist - taken).clip(min=eps * 1e-3)


def calibrate(graph_def, tensors, batches, method="minmax", percentile=99.99, progress=None):
    """{tensor name: (min, max)} for `tensors` of the float graph, measured on `batches`."""
    stats = measure(graph_def, batches, ranges=tensors, histograms=method != "minmax",
                    progress=progress).tensors
    return {t: choose_range(s, method, percentile) for t, s in stats.items()}


def fingerprint(arrays):
    """A short hash of the calibration inputs, to tell which data a ranges file came from."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def save_ranges(path, ranges, method, data_fingerprint, size, percentile=None, sources=None):
    """`sources`: {tensor: where its range came from} (calibration, batch-norm statistics,
    input range, FakeQuant, ranges file), written beside the ranges."""
    doc = {"method": method, "percentile": percentile if method == "percentile" else None,
           "calibration_size": size, "fingerprint": data_fingerprint,
           "ranges": {t: [float(lo), float(hi)] for t, (lo, hi) in sorted(ranges.items())}}
    if sources:
        doc["sources"] = {t: sources[t] for t in sorted(ranges) if t in sources}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)


def load_ranges(path):
    """{tensor: (min, max)} from a --ranges_out file."""
    try:
        with open(path) as f:
            doc = json.load(f)
        ranges = {t: (float(lo), float(hi)) for t, (lo, hi) in doc["ranges"].items()}
    except OSError as e:
        raise QuantizeGraphError("cannot read ranges file '%s': %s" % (path, e.strerror))
    except (ValueError, KeyError, TypeError):
        raise QuantizeGraphError("ranges file '%s' is not a quantize_graph ranges JSON" % path)
    for t, (lo, hi) in ranges.items():
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise QuantizeGraphError("ranges file '%s': tensor '%s' has a bad range [%g, %g]"
                                     % (path, t, lo, hi))
    return ranges
