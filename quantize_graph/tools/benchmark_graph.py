"""benchmark_graph: time a frozen graph, or two of them side by side, on random inputs.

  benchmark_graph --graph=frozen.pb --compare=eightbit.pb --batch=1,8 --threads=2 --runs=20

Both graphs are loaded in one process, each in its own session limited to --threads threads, and
are run interleaved (A, B, A, B, ...) after the warm-up runs, so that a slow spell of a shared
machine hits both alike. Prints median/min/max per graph and batch and the ratio of the medians;
--json prints the same as a JSON document with the machine's description.
"""
import os

# TF's C++ INFO lines would bury the table and the one-line errors; this must precede TF's import.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from quantize_graph.errors import QuantizeGraphError
from quantize_graph.tools.entry import run_tool  # noqa: E402
from quantize_graph.graph.io import load_graph_def  # noqa: E402
from quantize_graph.graph.names import node_name_from_input  # noqa: E402
from quantize_graph.runner import GraphRunner  # noqa: E402
from quantize_graph.tools.label_image import _layer_tensor  # noqa: E402

PROG = "benchmark_graph"

# Private flag registry, so that other tools' flags of the same names can live in one process.
FLAGS = flags.FlagValues()
flags.DEFINE_string("graph", None, "Frozen GraphDef to time (.pb or .pbtxt): graph A.",
                    flag_values=FLAGS)
flags.DEFINE_string("compare", None, "A second GraphDef, B, timed interleaved with A; the ratio "
                    "A/B of the medians is reported.", flag_values=FLAGS)
flags.DEFINE_string("batch", None, "Comma-separated batch sizes, e.g. 1,8; default: the input's "
                    "fixed batch, else 1.", flag_values=FLAGS)
flags.DEFINE_integer("threads", 2, "intra_op and inter_op threads of each graph's session.",
                     lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("runs", 20, "Timed runs per graph and batch.", lower_bound=1,
                     flag_values=FLAGS)
flags.DEFINE_integer("warmup", 3, "Untimed runs per graph and batch before the timed ones.",
                     lower_bound=0, flag_values=FLAGS)
flags.DEFINE_string("input_layer", None, "Input tensor (':0' optional); default: the graph's "
                    "only Placeholder.", flag_values=FLAGS)
flags.DEFINE_string("output_layer", None, "Output tensor (':0' optional); default: the node no "
                    "other node reads.", flag_values=FLAGS)
flags.DEFINE_boolean("json", False, "Print a JSON document instead of the table.",
                     flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Seed of the random inputs.", flag_values=FLAGS)

_NOT_OUTPUTS = ("Const", "Placeholder", "PlaceholderWithDefault", "NoOp")
_QUANTIZED_NUMPY = {tf.quint8: np.uint8, tf.qint8: np.int8, tf.quint16: np.uint16,
                    tf.qint16: np.int16, tf.qint32: np.int32}


# --- graphs, inputs and outputs (shared with evaluate_graph) ------------------------------------

class Model:
    """One graph imported into its own session, with its input and output tensors resolved.

    `graph` is a path or a GraphDef; `label` names it in errors (e.g. "graph A.pb").
    """

    def __init__(self, graph, input_layer=None, output_layer=None, threads=None, label=None):
        is_path = isinstance(graph, (str, os.PathLike))
        self.path = os.fspath(graph) if is_path else None
        self.label = label or ("graph %s" % self.path if is_path else "the graph")
        graph_def = load_graph_def(self.path) if is_path else graph
        try:
            self.runner = GraphRunner(graph_def, threads)
        except QuantizeGraphError as e:
            raise self.error(e)
        try:
            self.input = (_layer_tensor(self.runner.graph, input_layer, "input") if input_layer
                          else self.runner.graph.get_tensor_by_name(
                              default_input(graph_def) + ":0"))
            self.output = (_layer_tensor(self.runner.graph, output_layer, "output")
                           if output_layer else self.runner.graph.get_tensor_by_name(
                               default_output(graph_def, self.runner.graph) + ":0"))
        except QuantizeGraphError as e:
            self.close()
            raise self.error(e)
        self.shape = self.input.shape.as_list() if self.input.shape.rank is not None else None
        self._call = self.runner.session.make_callable(self.output, feed_list=[self.input])

    @property
    def fixed_batch(self):
        """The input's static batch size, or None when it is free (or there is no batch dim)."""
        return self.shape[0] if self.shape else None

    def error(self, e):
        return QuantizeGraphError("%s: %s" % (self.label, e))

    def check_batch(self, batch, flag="--batch"):
        """Raises a one-line error if the input cannot take a batch of `batch`."""
        if self.fixed_batch is not None and batch != self.fixed_batch:
            raise self.error("input '%s' has a fixed batch of %d, so %s=%d is not possible "
                             "(use %s=%d)" % (self.input.op.name, self.fixed_batch, flag, batch,
                                              flag, self.fixed_batch))

    def random_input(self, batch, seed=0):
        """Uniform random values of the input's static shape with the batch dim set to `batch`."""
        layer = self.input.op.name
        if self.shape is None:
            raise self.error("input '%s' has no static shape; random inputs need one" % layer)
        if not self.shape:
            if batch != 1:
                raise self.error("input '%s' is a scalar and takes no batch, so --batch=%d is "
                                 "not possible" % (layer, batch))
            shape = []
        else:
            self.check_batch(batch)
            shape = [batch] + self.shape[1:]
        if any(d is None for d in shape):
            raise self.error("input '%s' has shape %s; random inputs need every dimension but "
                             "the batch known" % (layer, _dims(self.shape)))
        return random_array(self.input.dtype, shape, np.random.RandomState(seed), self.error)

    def __call__(self, value):
        try:
            return self._call(value)
        except tf.errors.OpError as e:
            raise self.error("running the graph failed: %s" % _first_line(e))

    def describe(self):
        return {"path": self.path, "input": self.input.name, "output": self.output.name,
                "input_shape": self.shape, "input_dtype": self.input.dtype.name,
                "size_bytes": os.path.getsize(self.path) if self.path else None}

    def close(self):
        self.runner.close()


def default_input(graph_def):
    """The name of the graph's only Placeholder; a one-line error if there is not exactly one."""
    names = [n.name for n in graph_def.node if n.op == "Placeholder"]
    if len(names) != 1:
        raise QuantizeGraphError(
            "the graph has %s Placeholders%s; give --input_layer"
            % (len(names) or "no", " (%s)" % _listing(names) if names else ""))
    return names[0]


def default_output(graph_def, graph):
    """The name of the one node (not a Const, Placeholder or NoOp) that no other node reads."""
    read = {node_name_from_input(i) for n in graph_def.node for i in n.input}
    sinks = [n.name for n in graph_def.node if n.name not in read and n.op not in _NOT_OUTPUTS
             and graph.get_operation_by_name(n.name).outputs]
    if len(sinks) != 1:
        raise QuantizeGraphError(
            "the graph has %s nodes that no other node reads%s; give --output_layer"
            % (len(sinks) or "no", " (%s)" % _listing(sinks) if sinks else ""))
    return sinks[0]


def random_array(dtype, shape, rng, error=QuantizeGraphError):
    """Floats uniform in [0, 1), integers (also quantized types) uniform in 0..127, or bools."""
    if dtype.is_floating:
        return rng.uniform(0, 1, size=shape).astype(dtype.as_numpy_dtype)
    if dtype.is_bool:
        return rng.uniform(0, 1, size=shape) < 0.5
    if dtype in _QUANTIZED_NUMPY or dtype.is_integer:
        return rng.randint(0, 128, size=shape).astype(_QUANTIZED_NUMPY.get(dtype,
                                                                          dtype.as_numpy_dtype))
    raise error("the input has type %s; random inputs can be made only for numbers and bools"
                % dtype.name)


def parse_batches(text, flag="--batch"):
    """'1,8' -> [1, 8] (duplicates dropped); a one-line error for anything but positive ints."""
    batches = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise QuantizeGraphError("bad %s value '%s': '%s' is not a positive integer"
                                     % (flag, text, part))
        if int(part) not in batches:
            batches.append(int(part))
    return batches


def _listing(names, most=5):
    shown = ", ".join(names[:most])
    return shown + (", ..." if len(names) > most else "")


def _dims(shape):
    return "[%s]" % ",".join("?" if d is None else str(d) for d in shape)


def _first_line(error):
    text = getattr(error, "message", None) or str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


# --- the benchmark -----------------------------------------------------------------------------

def machine_info(threads=None):
    """CPU model, core counts, load, TensorFlow and Python versions, session threads."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:
        available = os.cpu_count()
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "available_cores": available,
            "load_average": load, "tensorflow": tf.__version__,
            "python": platform.python_version(), "threads": threads}


def cpu_model():
    """The 'model name' of /proc/cpuinfo, else what the platform module knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def benchmark(graph_a, graph_b=None, batches=(1,), threads=2, runs=20, warmup=3,
              input_layer=None, output_layer=None, seed=0):
    """Times graph A (and B) per batch size; returns the result dict that --json prints.

    Graphs are paths or GraphDefs. `batches=None` means the input's fixed batch, else 1.
    result["results"] has one entry per batch: {"batch", "A": {"median_ms", "min_ms", "max_ms",
    "mean_ms", "items_per_s", "times_ms"}, "B": ..., "ratio" (A/B of the medians), "faster",
    "summary"}; B, ratio, faster and summary only with graph_b.
    """
    if threads is not None and threads < 1:
        raise QuantizeGraphError("threads must be at least 1, got %d" % threads)
    if runs < 1:
        raise QuantizeGraphError("runs must be at least 1, got %d" % runs)
    if warmup < 0:
        raise QuantizeGraphError("warmup must not be negative, got %d" % warmup)
    models = {}
    try:
        for name, graph in (("A", graph_a), ("B", graph_b)):
            if graph is not None:
                models[name] = Model(graph, input_layer, output_layer, threads,
                                     label=graph_label(graph, name))
        if batches is None:
            batches = [models["A"].fixed_batch or 1]
        batches = list(batches)
        if not batches:
            raise QuantizeGraphError("no batch size given")
        # Every input is made before any timing, so a bad batch fails at once.
        feeds = {b: {name: m.random_input(b, seed) for name, m in models.items()}
                 for b in batches}
        info = machine_info(threads)
        results = [_time_batch(models, b, feeds[b], runs, warmup) for b in batches]
    finally:
        for m in models.values():
            m.close()
    return {"machine": info,
            "settings": {"batches": batches, "runs": runs, "warmup": warmup,
                         "threads": threads, "interleaved": len(models) > 1, "seed": seed},
            "graphs": {name: m.describe() for name, m in models.items()},
            "results": results}


def graph_label(graph, name):
    if isinstance(graph, (str, os.PathLike)):
        return "graph %s (%s)" % (name, os.fspath(graph))
    return "graph %s" % name


def _time_batch(models, batch, feeds, runs, warmup):
    for _ in range(warmup):
        for name, model in models.items():
            model(feeds[name])
    times = {name: [] for name in models}
    for _ in range(runs):
        for name, model in models.items():  # interleaved: A, B, A, B, ...
            start = time.perf_counter()
            model(feeds[name])
            times[name].append((time.perf_counter() - start) * 1000.0)
    result = {"batch": batch}
    for name, ms in times.items():
        median = float(np.median(ms))
        result[name] = {"median_ms": median, "min_ms": float(np.min(ms)),
                        "max_ms": float(np.max(ms)), "mean_ms": float(np.mean(ms)),
                        "items_per_s": batch * 1000.0 / median if median > 0 else None,
                        "times_ms": [round(t, 4) for t in ms]}
    if "B" in times:
        a, b = result["A"]["median_ms"], result["B"]["median_ms"]
        ratio = a / b if b > 0 else float("inf")
        result["ratio"] = ratio
        result["faster"], result["summary"] = _verdict(ratio)
    return result


def _verdict(ratio):
    """('B', 'B is 3.1x faster than A') from the ratio A/B of the medians."""
    if round(ratio, 2) == 1.0:
        return None, "A and B are equally fast"
    if ratio > 1:
        return "B", "B is %.3gx faster than A" % ratio
    return "A", "A is %.3gx faster than B" % (1.0 / ratio)


def format_table(result):
    """The human-readable report of a benchmark() result."""
    info, settings = result["machine"], result["settings"]
    load = info["load_average"]
    lines = ["machine: %s, %d cores%s, TensorFlow %s, %s threads per session" % (
        info["cpu"], info["cores"],
        " (load %.2f)" % load[0] if load else "", info["tensorflow"], info["threads"] or "default")]
    for name, g in result["graphs"].items():
        lines.append("%s: %s  input %s %s -> output %s" % (
            name, g["path"] or "(GraphDef)", g["input"],
            _dims(g["input_shape"]) if g["input_shape"] is not None else "[unknown]", g["output"]))
    names = list(result["graphs"])
    lines.append("%d timed runs per graph and batch%s, after %d warm-up runs" % (
        settings["runs"], " (interleaved %s, ...)" % ", ".join(names * 2)
        if len(names) > 1 else "", settings["warmup"]))
    lines.append("")
    lines.append("%5s  %-5s  %10s  %10s  %10s  %10s" % ("batch", "graph", "median ms", "min ms",
                                                        "max ms", "items/s"))
    for r in result["results"]:
        for name in names:
            t = r[name]
            lines.append("%5d  %-5s  %10.3f  %10.3f  %10.3f  %10.1f" % (
                r["batch"], name, t["median_ms"], t["min_ms"], t["max_ms"],
                t["items_per_s"] or 0.0))
        if "ratio" in r:
            lines.append("%5s  A/B of medians %.3f: %s" % ("", r["ratio"], r["summary"]))
    return "\n".join(lines)


# --- command line ------------------------------------------------------------------------------

def main(argv):
    """Parses argv, benchmarks, prints; raises QuantizeGraphError or flags.Error on bad input."""
    FLAGS.unparse_flags()  # run() may be called more than once in a process (tests)
    extra = FLAGS(argv)[1:]
    if extra:
        raise QuantizeGraphError("unexpected argument '%s'" % extra[0])
    if not FLAGS.graph:
        raise QuantizeGraphError("--graph is required")
    batches = parse_batches(FLAGS.batch) if FLAGS.batch is not None else None
    result = benchmark(FLAGS.graph, FLAGS.compare, batches, FLAGS.threads, FLAGS.runs,
                       FLAGS.warmup, FLAGS.input_layer, FLAGS.output_layer, FLAGS.seed)
    if FLAGS.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result))


def run(argv=None):
    """Console-script entry point; returns the exit status."""
    return run_tool(PROG, "--graph=A.pb [--compare=B.pb] [--batch=1,8] [flags]", FLAGS, main, argv)


if __name__ == "__main__":
    sys.exit(run())
