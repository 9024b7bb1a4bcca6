"""The pipeline: load -> prepare -> annotate -> (calibrate) -> lower -> clean up.

Each stage is a pure GraphDef -> GraphDef function; this module only chains them per mode
and collects a report of what was done.
"""
import collections
import dataclasses

from quantize_graph.annotate import annotate
from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import strip_output_names
from quantize_graph.passes.prepare import prepare
from quantize_graph.passes.prune import prune
from quantize_graph.passes.quantized_input import quantize_placeholders
from quantize_graph.passes.simulate import quantize_dequantize_graph, round_graph
from quantize_graph.passes.strip_redundant import strip_redundant_quantization
from quantize_graph.passes.weights import quantize_weights, round_weights
from quantize_graph.targets import lower, refine

MODES = ("round", "quantize", "eightbit", "weights", "weights_rounded", "test")
TARGETS = ("reference",)


@dataclasses.dataclass
class Options:
    mode: str = "eightbit"
    bitdepth: int = 8
    strip_redundant_quantization: bool = True
    quantized_input_range: tuple = None       # (min, max): inputs become quint8
    fallback_range: tuple = None              # (min, max) used instead of run-time ranges
    excluded_ops: tuple = ()
    excluded_nodes: tuple = ()
    target: str = "reference"


@dataclasses.dataclass
class Report:
    mode: str
    target: str
    quantized: list = dataclasses.field(default_factory=list)      # names lowered to 8 bits
    stayed_float: dict = dataclasses.field(default_factory=dict)   # name -> (op, reason)

    def summary(self):
        if self.mode not in ("eightbit", "test"):
            return "mode %s: done" % self.mode
        ops = collections.Counter(op for op, _ in self.stayed_float.values())
        listed = ", ".join("%s x%d" % (op, n) for op, n in sorted(ops.items()))
        return "%d ops quantized (target %s); %d ops stay float%s" % (
            len(self.quantized), self.target, len(self.stayed_float),
            (": " + listed) if listed else "")


def graph_placeholders(graph_def):
    return [n.name for n in graph_def.node if n.op == "Placeholder"]


def validate_options(options):
    if options.mode not in MODES:
        raise QuantizeGraphError("unknown mode '%s'; expected one of %s" % (options.mode, ", ".join(MODES)))
    if options.target not in TARGETS:
        raise QuantizeGraphError("unknown target '%s'; expected one of %s" % (options.target, ", ".join(TARGETS)))
    if not 1 <= options.bitdepth <= 16:
        raise QuantizeGraphError("--bitdepth must be between 1 and 16, got %d" % options.bitdepth)
    if options.mode == "eightbit" and options.bitdepth != 8:
        raise QuantizeGraphError("mode eightbit needs --bitdepth=8 (got %d)" % options.bitdepth)
    for flag, rng in (("quantized_input", options.quantized_input_range),
                      ("quantized_fallback", options.fallback_range)):
        if rng is not None and not rng[0] < rng[1]:
            raise QuantizeGraphError("--%s_min must be below --%s_max (got %g, %g)" % (flag, flag, rng[0], rng[1]))
    if options.quantized_input_range is not None and options.mode != "eightbit":
        raise QuantizeGraphError("--quantized_input only applies to mode eightbit")


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
    outputs, inputs = check_graph(graph_def, output_names, input_names)
    report = Report(options.mode, options.target)
    g = prepare(graph_def, inputs, outputs)
    mode = options.mode
    if mode == "weights":
        g = quantize_weights(g)
    elif mode == "weights_rounded":
        g = round_weights(g, options.bitdepth)
    elif mode == "quantize":
        g = quantize_dequantize_graph(g, options.bitdepth)
    else:  # eightbit, round, test (test quantizes like eightbit and compares)
        decision = annotate(g, options.target, options.excluded_ops, options.excluded_nodes)
        if mode != "round":
            decision = refine(options.target, g, decision)
        kinds = {n.name: n.op for n in g.node}
        report.quantized = sorted(decision.quantized)
        report.stayed_float = {n: (kinds[n], why) for n, why in decision.float_reasons.items()}
        if mode == "round":
            g = round_graph(g, decision.quantized, options.bitdepth)
        else:
            g = lower(options.target, g, decision.quantized, options.fallback_range)
            if options.quantized_input_range is not None:
                g = quantize_placeholders(g, inputs, options.quantized_input_range)
            if options.strip_redundant_quantization:
                g = strip_redundant_quantization(g)
    return prune(g, outputs, keep=inputs), report
