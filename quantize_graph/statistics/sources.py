"""The calibrate stage's one statistics object, filled from the first range source that
applies:

  1. a ranges file (--ranges_in);
  2. calibration data: one run of the float graph (measure.py) gives the ranges and, in the
     same pass, the per-channel means bias correction reads;
  3. batch-norm statistics (onednn and kernels targets): ranges and means propagated from
     the batch norms (ranges.py);
  4. none: the reference ops measure ranges at run time.
FakeQuant ranges (quantization-aware training) win over 2 and 3; the fallback flags
(--quantized_fallback_*) stand in at lowering wherever a tensor has no range.
"""
import dataclasses

from quantize_graph.calibrate import choose_range
from quantize_graph.calibration_data import calibration_batches
from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import canonical_input
from quantize_graph.statistics import ranges as statistics_ranges
from quantize_graph.statistics.measure import measure
from quantize_graph.targets import range_tensors
from quantize_graph.targets.reference import fake_quant_range

# Targets that freeze ranges derived from batch-norm statistics.
STATISTICS_TARGETS = ("onednn", "kernels")


@dataclasses.dataclass(frozen=True)
class Statistics:
    """What the lowering and the accuracy levers know about the float graph's tensors."""
    ranges: dict = None          # {tensor: (min, max)} frozen in; None: measured at run time
    sources: dict = None         # {tensor: where its range came from}
    summary: str = ""            # one line for the report: where the ranges came from
    fallback_range: tuple = None  # (min, max) for tensors without a range (--quantized_fallback_*)
    means_of: object = None      # tensors -> {tensor: per-channel E[x] or None}; None: unknown
    maxima_of: object = None     # tensors -> [per-channel max or None] (range equalization)
    from_moments: bool = False   # ranges from batch-norm statistics (some tensors may lack one)


def collect(graph_def, quantize_names, options, moments=None, inputs=(), mean_tensors=(),
            measured=None):
    """The Statistics of `graph_def` for the nodes `quantize_names` will lower.

    options: pipeline.Options (ranges, calibration_inputs and method, target, input_range,
    statistics_k, fallback_range, progress); moments: {batch norm: ChannelMoments} where
    they may serve as a range source; mean_tensors: the tensors whose per-channel means to
    measure alongside the ranges when there is calibration data; measured: their
    Measurements when the caller already ran the data (`measure_calibration`)."""
    tensors = range_tensors(graph_def, quantize_names)
    fallback = options.fallback_range
    calibration = options.calibration_inputs
    if options.ranges is not None:
        missing = [t for t in tensors if t not in options.ranges]
        if missing:
            raise QuantizeGraphError("the ranges file has no range for tensor '%s' (made for "
                                     "another graph or other options?)" % missing[0])
    if measured is None and calibration and (options.ranges is None or mean_tensors):
        measured = measure_calibration(graph_def, tensors if options.ranges is None else (),
                                       mean_tensors, options)
    means_of = None
    if measured is not None and mean_tensors:
        means_of = lambda wanted: {t: measured.means.get(t) for t in wanted}  # noqa: E731
    if options.ranges is not None:
        return Statistics({t: options.ranges[t] for t in tensors},
                          {t: "ranges file" for t in tensors},
                          "ranges from a ranges file (--ranges_in)", fallback, means_of)
    if calibration:
        method = options.calibration_method
        ranges = {t: choose_range(s, method, options.calibration_percentile)
                  for t, s in measured.tensors.items()}
        sources = {t: "calibration " + method for t in ranges}
        count = min(len(a) for a in calibration.values())
        return Statistics(with_fake_quant_ranges(graph_def, ranges, sources), sources,
                          "ranges from calibration data (%d examples, %s)" % (count, method),
                          fallback, means_of)
    if moments and options.target in STATISTICS_TARGETS:
        ranges, sources, propagated = statistics_ranges.statistics_ranges(
            graph_def, moments, tensors, inputs, options.input_range, options.statistics_k)
        return Statistics(with_fake_quant_ranges(graph_def, ranges, sources, add=True), sources,
                          statistics_ranges.FROM_STATISTICS, fallback,
                          lambda wanted: statistics_ranges.channel_means(propagated, wanted),
                          from_moments=True)
    return Statistics(fallback_range=fallback)


def measure_calibration(graph_def, range_names, mean_names, options, maxima_names=(), minima_names=()):
    """One run over the calibration data (two for percentile/entropy histograms)."""
    calibration = options.calibration_inputs
    bar = None
    if options.progress and range_names:
        bar = options.progress(min(len(a) for a in calibration.values()), "calibrating")
    try:
        return measure(graph_def, calibration_batches(graph_def, calibration), ranges=range_names,
                       means=mean_names, maxima=maxima_names, minima=minima_names,
                       histograms=options.calibration_method != "minmax",
                       progress=bar)
    finally:
        if bar is not None:
            bar.close()


def with_fake_quant_ranges(graph_def, ranges, sources=None, add=False):
    """Ranges that quantization-aware training left in FakeQuant nodes win over calibration
    and statistics: for the FakeQuant's input and for its output (`add`: also where there was
    no range)."""
    index = GraphIndex(graph_def)
    for node in graph_def.node:
        fixed = fake_quant_range(node, index) if node.op.startswith("FakeQuant") else None
        if fixed is not None:
            for tensor in (canonical_input(node.input[0]), node.name):
                if tensor in ranges or add:
                    ranges[tensor] = fixed
                    if sources is not None:
                        sources[tensor] = "FakeQuant"
    return ranges
