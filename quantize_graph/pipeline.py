"""The pipeline: load -> prepare -> annotate -> (calibrate) -> lower -> clean up.

Each stage is a pure GraphDef -> GraphDef function; this module only chains them per mode
and collects a report of what was done.
"""
import collections
import dataclasses
import math

from quantize_graph.annotate import Decision, annotate
from tensorflow.core.framework import graph_pb2

from quantize_graph.checks import (check_calibration_inputs, check_excluded_nodes, check_name_list,
                                   check_option_values)
from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph.validate import check_op_type_names, validate_graph_def
from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import split_input
from quantize_graph.graph.names import strip_output_names
from quantize_graph.passes import (bfloat16, equalize_ranges, prepare, prune, quantized_input,
                                   shift_input, simulate, strip_redundant, weights)
from quantize_graph.passes.context import PassContext
from quantize_graph.calibrate import METHODS as CALIBRATION_METHODS
from quantize_graph.calibration_data import calibration_batch_size, calibration_batches, split
from quantize_graph.compare import compare_to_outputs, graph_outputs
from quantize_graph.sensitivity import fewest_float_layers, layer_errors
from quantize_graph.runner import placeholder_shapes
from quantize_graph.passes.bias_correction import bias_corrections_from_means, mean_tensors
from quantize_graph.targets import BIAS_CORRECTED, lower, node_range_tensors, range_tensors, refine, resolve_target
from quantize_graph.statistics import ranges as statistics_ranges
from quantize_graph.statistics.propagate import static_shapes
from quantize_graph.statistics.measure import measure
from quantize_graph.statistics.sources import Statistics, collect as collect_statistics, measure_calibration
from quantize_graph.weight_schemes import DEQUANTIZERS

MODES = ("round", "quantize", "eightbit", "weights", "weights_rounded", "test", "bfloat16")
TARGETS = ("auto", "reference", "onednn", "kernels")
BFLOAT16_FALLBACK_NOTE = "; runs in bfloat16 (--bfloat16_fallback)"


@dataclasses.dataclass
class Options:
    mode: str = "eightbit"
    bitdepth: int = 8
    strip_redundant_quantization: bool = True
    quantized_input_range: tuple = None       # (min, max): inputs become quint8
    fallback_range: tuple = None              # (min, max) used instead of run-time ranges
    excluded_ops: tuple = ()
    excluded_nodes: tuple = ()
    target: str = "auto"                      # auto: onednn where its kernels run, else reference
    # Calibration (eightbit): sample inputs {input node name: array}, or ranges saved before.
    calibration_inputs: dict = None
    calibration_method: str = "minmax"
    calibration_percentile: float = 99.99
    ranges: dict = None                       # {tensor: (min, max)}, e.g. from --ranges_in
    # Without calibration data or ranges: ranges from batch-norm statistics (statistics/),
    # the graph inputs covering input_range (min, max); k: range half-width in std devs.
    input_range: tuple = None
    statistics_k: float = statistics_ranges.DEFAULT_K
    progress: object = None                   # callable(total, label) -> bar with update()/close()
    # Accuracy levers, measured on held-out calibration inputs.
    max_relative_error: float = None          # keep the fewest, worst layers float to meet these
    min_top1_agreement: float = None
    layer_report: bool = False                # fill Report.layers (per-layer SQNR)
    # Subtract each int8 layer's weight-rounding mean shift from its bias (calibration data,
    # onednn target): passes/bias_correction.py.
    bias_correction: bool = True
    # Scale each channel of a Relu/Relu6 activation read only by depthwise convs to the
    # tensor's range (calibration data, onednn target): passes/equalize_ranges.py.
    equalize_ranges: bool = True
    # A conv reading a signed graph input runs in int8 on x + c (onednn): passes/shift_input.py.
    shift_input: bool = False
    # eightbit: the layers kept out of int8 (accuracy fallback, --excluded_*) run in bfloat16
    # instead of float32: passes/bfloat16.py.
    bfloat16_fallback: bool = False
    # Fold constant subgraphs before quantizing (off for the original module's GraphRewriter).
    fold_constants: bool = True


@dataclasses.dataclass
class Report:
    mode: str
    target: str
    target_reason: str = ""
    quantized: list = dataclasses.field(default_factory=list)      # names lowered to 8 bits
    stayed_float: dict = dataclasses.field(default_factory=dict)   # name -> (op, reason)
    ranges: dict = None                                            # the ranges frozen in
    range_source: str = ""                                         # where they came from
    range_sources: dict = None                                     # tensor -> its range's source
    notes: list = dataclasses.field(default_factory=list)          # one line each, for the user
    layers: list = None                                            # [sensitivity.LayerError]
    fallback: list = None                                          # layers kept float to meet goals
    held_out_error: object = None                                  # compare.OutputError, held-out

    def summary(self):
        if self.mode == "bfloat16":
            return _bfloat16_summary(self)
        if self.mode not in ("eightbit", "test"):
            return "mode %s: done" % self.mode
        listed = _listed_ops(self.stayed_float)
        bf16 = sum(why.endswith(BFLOAT16_FALLBACK_NOTE) for _, why in self.stayed_float.values())
        lines = ["%d ops quantized (target %s); %d ops stay float%s%s" % (
            len(self.quantized), self.target, len(self.stayed_float),
            (": " + listed) if listed else "", ("; %d of them run in bfloat16" % bf16) if bf16 else "")]
        if self.range_source:
            lines.append(self.range_source)
        return "\n".join(lines + list(self.notes))


def _listed_ops(stayed_float):
    """'Conv2D x2, Softmax x1' for {name: (op, why)}."""
    ops = collections.Counter(op for op, _ in stayed_float.values())
    return ", ".join("%s x%d" % (op, n) for op, n in sorted(ops.items()))


def _bfloat16_summary(report):
    listed = _listed_ops(report.stayed_float)
    return "%d ops in bfloat16; %d ops stay float32%s" % (
        len(report.quantized), len(report.stayed_float), (": " + listed) if listed else "")


def graph_placeholders(graph_def):
    return [n.name for n in graph_def.node if n.op == "Placeholder"]


def validate_options(options):
    if not isinstance(options, Options):
        raise QuantizeGraphError("options must be a pipeline.Options, got %s" % type(options).__name__)
    check_option_values(options)
    if options.mode not in MODES:
        raise QuantizeGraphError("unknown mode '%s'; expected one of %s" % (options.mode, ", ".join(MODES)))
    if options.target not in TARGETS:
        raise QuantizeGraphError("unknown target '%s'; expected one of %s" % (options.target, ", ".join(TARGETS)))
    if options.mode == "eightbit" and options.bitdepth != 8:
        raise QuantizeGraphError("mode eightbit needs --bitdepth=8 (got %d)" % options.bitdepth)
    for flag, rng in (("quantized_input", options.quantized_input_range),
                      ("quantized_fallback", options.fallback_range)):
        if rng is not None and not rng[0] < rng[1]:
            raise QuantizeGraphError("--%s_min must be below --%s_max (got %g, %g)" % (flag, flag, rng[0], rng[1]))
    if options.calibration_method not in CALIBRATION_METHODS:
        raise QuantizeGraphError("unknown calibration method '%s'; expected one of %s"
                                 % (options.calibration_method, ", ".join(CALIBRATION_METHODS)))
    if options.quantized_input_range is not None and options.mode != "eightbit":
        raise QuantizeGraphError("--quantized_input only applies to mode eightbit")
    if options.input_range is not None:
        lo, hi = options.input_range
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise QuantizeGraphError("--input_range must be two finite numbers MIN,MAX with MIN "
                                     "below MAX (got %g, %g)" % (lo, hi))
    if not (math.isfinite(options.statistics_k) and options.statistics_k > 0):
        raise QuantizeGraphError("statistics_k must be a positive number (got %g)"
                                 % options.statistics_k)
    if options.bfloat16_fallback and options.mode not in ("eightbit", "test"):
        raise QuantizeGraphError("--bfloat16_fallback only applies to mode eightbit "
                                 "(mode bfloat16 puts every layer it can in bfloat16)")


def check_graph_def_type(graph_def):
    if not isinstance(graph_def, graph_pb2.GraphDef):
        raise QuantizeGraphError("the graph must be a GraphDef, got %s" % type(graph_def).__name__)


def check_inputs(graph_def, inputs, options):
    """The graph against its op definitions, and the names and arrays given with it."""
    validate_graph_def(graph_def, options.mode)
    check_excluded_nodes(GraphIndex(graph_def), options.excluded_nodes)
    check_op_type_names(options.excluded_ops, "excluded op type")
    if options.calibration_inputs:
        unknown = sorted(set(options.calibration_inputs) - set(inputs))
        missing = [n for n in inputs if n not in options.calibration_inputs]
        if unknown or missing:
            raise QuantizeGraphError("calibration inputs must be keyed by the input names (%s); %s"
                                     % (", ".join(inputs), "'%s' is not one" % unknown[0] if unknown
                                        else "'%s' is missing" % missing[0]))
        shapes = placeholder_shapes(graph_def, inputs)
        if any(shape is None for shape, _ in shapes.values()):  # an inner tensor as the input
            inferred = static_shapes(graph_def)
            shapes = {n: (shape or inferred.get(n), dtype) for n, (shape, dtype) in shapes.items()}
        check_calibration_inputs(options.calibration_inputs, shapes)


def check_graph(graph_def, output_names, input_names):
    """Validates the graph and the names; returns (outputs, inputs) as node names."""
    outputs = strip_output_names(output_names)
    if not outputs:
        raise QuantizeGraphError("no output node names given (--output_node_names)")
    index = GraphIndex(graph_def)
    index.validate()
    index.require(outputs, "output node")
    inputs = strip_output_names(input_names) if input_names else graph_placeholders(graph_def)
    index.require(inputs, "input node")
    return outputs, inputs


def run_pipeline(graph_def, output_names, options, input_names=None):
    """Returns (quantized GraphDef, Report)."""
    validate_options(options)
    check_graph_def_type(graph_def)
    check_name_list(output_names, "output node names")
    check_name_list(input_names, "input node names", optional=True)
    outputs, inputs = check_graph(graph_def, output_names, input_names)
    check_inputs(graph_def, inputs, options)
    ctx = PassContext(tuple(inputs), tuple(outputs), options)
    prepared = prepare.run(graph_def, ctx)
    g, moments = prepared.graph_def, prepared.facts["moments"]
    # Batch-norm statistics are a range source only where nothing better was given.
    statistics = moments if not (options.calibration_inputs or options.ranges is not None) else None
    if options.mode in ("eightbit", "test"):
        target, why = resolve_target(options.target, bool(
            options.calibration_inputs or options.ranges or options.fallback_range), bool(statistics))
        options = dataclasses.replace(options, target=target)
    else:
        target, why = options.target, ""
    report = Report(options.mode, target, why)
    ctx = dataclasses.replace(ctx, options=options)
    mode = options.mode
    if mode in ("weights", "weights_rounded"):
        g = weights.run(g, ctx).graph_def
    elif mode == "quantize":
        g = simulate.run(g, ctx).graph_def
    elif mode == "bfloat16":
        g = _bfloat16(g, dataclasses.replace(ctx, moments=moments), report)
    else:  # eightbit, round, test (test quantizes like eightbit and compares)
        decision = annotate(g, "reference" if mode == "round" else options.target,
                            options.excluded_ops, options.excluded_nodes)
        if mode != "round":
            decision = refine(options.target, g, decision)
        kinds = {n.name: n.op for n in g.node}
        report.quantized = sorted(decision.quantized)
        report.stayed_float = {n: (kinds[n], why) for n, why in decision.float_reasons.items()}
        if mode == "round":
            g = simulate.run(g, dataclasses.replace(ctx, quantized=frozenset(decision.quantized))).graph_def
        else:
            g = _eightbit(g, decision, ctx, report, statistics)
    return prune.run(g, ctx).graph_def, report


def _eightbit(g, decision, ctx, report, statistics=None):
    """calibrate -> (per-layer report, float fallback) -> lower -> clean up."""
    options, inputs, outputs = ctx.options, list(ctx.inputs), list(ctx.outputs)
    calibration, held_out = options.calibration_inputs, None
    if options.layer_report or _has_accuracy_goal(options):
        if not calibration:
            raise QuantizeGraphError("--max_relative_error, --min_top1_agreement and --report "
                                     "need calibration data (--calibration_data)")
        calibration, held_out = split_held_out(calibration)
    reference = g  # what held-out errors are measured against
    if options.shift_input and calibration and options.target == "onednn" and options.ranges is None:
        g = shift_input.run(g, dataclasses.replace(ctx, quantized=frozenset(decision.quantized),
                                                   calibration=calibration)).graph_def
    g, statistics, measured = _equalized(g, decision.quantized, calibration, ctx, statistics)
    # One run over the calibration data: the ranges and the means bias correction reads (and
    # the maxima range equalization read, when it already ran it).
    stats = collect_statistics(g, decision.quantized, dataclasses.replace(
        options, calibration_inputs=calibration), statistics, inputs,
        mean_tensors=_mean_tensors(g, decision.quantized, calibration, options), measured=measured)
    report.ranges, report.range_sources = stats.ranges, stats.sources
    report.range_source = stats.summary
    if stats.from_moments:
        decision = _without_ranges(g, decision, report, inputs, options)
    corrections = _bias_corrections(g, decision.quantized, stats, options)
    kinds = {n.name: n.op for n in g.node}

    def build(quantized, why_float=None):
        chosen = Decision(set(quantized), dict(decision.float_reasons))
        chosen.float_reasons.update(why_float or {})
        q, chosen = lower(options.target, g, chosen, stats.fallback_range, stats.ranges, corrections)
        if options.bfloat16_fallback:
            q = _bfloat16_fallback(q, chosen, ctx)
        # The target may have kept more nodes float; the report shows its final choice.
        report.quantized = sorted(chosen.quantized)
        report.stayed_float = {n: (kinds[n], why) for n, why in chosen.float_reasons.items()}
        if options.quantized_input_range is not None:
            q = quantized_input.run(q, ctx).graph_def
        if options.strip_redundant_quantization:
            q = strip_redundant.run(q, ctx).graph_def
        return prune.run(q, ctx).graph_def

    if held_out is None:
        return build(decision.quantized)
    feeds = {name + ":0": a for name, a in held_out.items()}
    batch = calibration_batch_size(g, list(held_out))
    report.layers = layer_errors(g, report.ranges, feeds, decision.quantized,
                                 DEQUANTIZERS[options.target], batch=batch)
    expected = graph_outputs(reference, outputs[:1], feeds, batch)  # the float graph, once
    if not _has_accuracy_goal(options):
        q = build(decision.quantized)
        report.held_out_error = compare_to_outputs(expected, q, outputs[:1], feeds, batch)[0]
        return q
    measured = {}

    def meets(excluded):
        q = build(decision.quantized - set(excluded),
                  {n: "kept float by the accuracy fallback" for n in excluded})
        err = compare_to_outputs(expected, q, outputs[:1], feeds, batch)[0]
        measured[len(excluded)] = err
        return ((options.max_relative_error is None or err.relative_error <= options.max_relative_error)
                and (options.min_top1_agreement is None
                     or err.top1_agreement >= options.min_top1_agreement))

    members = {r.layer: r.members for r in report.layers}
    ranked = [r.layer for r in report.layers]
    layers, met = fewest_float_layers(ranked, lambda chosen: meets(
        [m for layer in chosen for m in members[layer]]))
    excluded = [m for layer in layers for m in members[layer]]
    report.held_out_error = measured[len(excluded)]
    if not met:
        raise QuantizeGraphError(
            "the accuracy goal is not met even with every layer in float (held-out relative "
            "error %.4g, top-1 agreement %.3f)" % (report.held_out_error.relative_error,
                                                   report.held_out_error.top1_agreement))
    report.fallback = layers
    # Built once more so the report describes this candidate, not the last one tried.
    return build(decision.quantized - set(excluded),
                 {n: "kept float by the accuracy fallback" for n in excluded})


def _bfloat16(g, ctx, report):
    result = bfloat16.run(g, ctx)
    kinds = {n.name: n.op for n in g.node}
    report.quantized = result.facts["bfloat16"]
    report.stayed_float = {n: (kinds[n], why) for n, why in result.facts["float_reasons"].items()}
    return result.graph_def


def _bfloat16_fallback(q, chosen, ctx):
    """The layers that the accuracy fallback or --excluded_* kept out of int8, in bfloat16."""
    left_out = {n for n, why in chosen.float_reasons.items()
                if why.startswith(("kept float by", "excluded by"))}
    result = bfloat16.run(q, dataclasses.replace(ctx, only=frozenset(left_out)))
    for name in result.facts["bfloat16"]:
        chosen.float_reasons[name] += BFLOAT16_FALLBACK_NOTE
    return result.graph_def


def _equalized(g, quantized, calibration, ctx, moments=None):
    """(the float graph with channel ranges equalized, the batch-norm moments that describe
    it, the Measurements of the calibration run that serve it or None) (option on, onednn):
    per-channel maxima measured on calibration data, or without data propagated from the
    batch-norm statistics."""
    options = ctx.options
    if not (options.equalize_ranges and options.target == "onednn"):
        return g, moments, None
    if calibration:
        equalized, measured = _equalized_on_data(g, quantized, calibration, ctx)
        return equalized, moments, measured
    if not moments or options.ranges is not None:
        return g, moments, None
    stats = statistics_ranges.propagated(g, moments, ctx.inputs, options.input_range,
                                         statistics_ranges.EQUALIZE_K)
    equalized = _equalize(g, quantized, ctx, lambda tensors: statistics_ranges.channel_maxima(stats, tensors))
    return equalized.graph_def, statistics_ranges.rescaled(moments, g, equalized.facts["scales"]), None


def _equalized_on_data(g, quantized, calibration, ctx):
    """(equalized graph, Measurements for collect_statistics or None).

    One run gives the maxima and, for minmax, the ranges and means of the equalized graph too:
    Relu/Relu6 are positively homogeneous and the depthwise readers divide each channel back,
    so on the calibration data a scaled layer's conv, BiasAdd and activation results are s * x
    per channel (their ranges from the per-channel extremes times s, the activation's means
    times s) and every other tensor keeps its values. Percentile and entropy read histograms of
    |x|, which mix the channels at their new scales: measured again on the equalized graph."""
    options = dataclasses.replace(ctx.options, calibration_inputs=calibration)
    layers = equalize_ranges.candidate_layers(g, quantized)
    if not layers:
        return g, None
    activations = [a for a, _ in layers]
    ranges = range_tensors(g, quantized)
    means = _mean_tensors(g, quantized, calibration, options)
    if options.calibration_method != "minmax":
        maxima = measure(g, calibration_batches(g, calibration), maxima=activations).maxima
        return _equalize(g, quantized, ctx, lambda tensors: [maxima[t] for t in tensors]).graph_def, None
    scaled_with = {t: a for a, inside in layers for t in inside + [a]}  # tensor -> its activation
    extremes = [t for t in scaled_with if t in set(ranges)]
    measured = measure_calibration(g, ranges, means, options, maxima_names=sorted(set(activations + extremes)),
                                   minima_names=extremes)
    equalized = _equalize(g, quantized, ctx, lambda tensors: [measured.maxima[t] for t in tensors])
    scales = equalized.facts["scales"]
    for t in extremes:
        if scaled_with[t] in scales:
            s = scales[scaled_with[t]]
            measured.tensors[t].min = float((measured.minima[t] * s).min())
            measured.tensors[t].max = float((measured.maxima[t] * s).max())
    measured.means = {t: m * scales[t] if t in scales else m for t, m in measured.means.items()}
    return equalized.graph_def, measured


def _equalize(g, quantized, ctx, maxima_of):
    return equalize_ranges.run(g, dataclasses.replace(
        ctx, quantized=frozenset(quantized), statistics=Statistics(maxima_of=maxima_of)))


def _bias_correcting(options):
    return options.bias_correction and options.target in BIAS_CORRECTED


def _mean_tensors(g, quantized, calibration, options):
    """The tensors whose means to measure with the ranges (bias correction on calibration data)."""
    return mean_tensors(g, quantized) if calibration and _bias_correcting(options) else ()


def _bias_corrections(g, quantized, stats, options):
    """{layer: bias shift} from the statistics' per-channel means (measured on calibration
    data, or propagated from batch-norm statistics), or None (option off, no means, or a
    target without a bias-correction hook)."""
    if not (_bias_correcting(options) and stats.means_of is not None):
        return None
    return bias_corrections_from_means(g, quantized, stats.means_of, DEQUANTIZERS[options.target])


def _without_ranges(g, decision, report, inputs, options):
    """Statistics reach most tensors but not all (the graph input without --input_range, ops
    the propagation has no rule for): nodes that need a range it lacks stay float."""
    if options.fallback_range is not None:
        return decision  # the fallback range fills the gaps
    index = GraphIndex(g)
    chosen = Decision(set(decision.quantized), dict(decision.float_reasons))
    reads_input = False
    for name in sorted(decision.quantized):
        missing = [t for t in node_range_tensors(index, name) if t not in report.ranges]
        if not missing:
            continue
        chosen.quantized.discard(name)
        if any(split_input(t)[0] in inputs for t in missing):
            reads_input = True
            chosen.float_reasons[name] = ("reads the graph input, whose range is unknown "
                                          "(--input_range, or --input_mean/--input_std)")
        else:
            chosen.float_reasons[name] = "no range from batch-norm statistics for '%s'" % missing[0]
    if reads_input:
        report.notes.append("the ops that read the graph input stay float: its range is unknown "
                            "(give --input_range=MIN,MAX or --input_mean/--input_std)")
    return chosen


def _has_accuracy_goal(options):
    return options.max_relative_error is not None or options.min_top1_agreement is not None


def split_held_out(inputs, fraction=0.2, minimum=4):
    """(calibration part, held-out part): the last fifth (at least 4 examples) is held out."""
    count = min(len(a) for a in inputs.values())
    held = max(minimum, int(round(count * fraction)))
    if count - held < 1:
        raise QuantizeGraphError("need at least %d calibration examples to hold some out, got %d"
                                 % (minimum + 1, count))
    return split(inputs, count - held)
