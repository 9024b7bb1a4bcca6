"""Runs a GraphDef in a TF1-style session: one place that imports graphs for execution."""
import importlib

import numpy as np
import tensorflow as tf

from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph.names import ensure_tensor_name_has_port


class GraphRunner:
    """Imports a GraphDef once and runs it on feeds; `threads` limits both TF thread pools."""

    def __init__(self, graph_def, threads=None):
        _check_runnable(graph_def)
        self.graph = tf.Graph()
        with self.graph.as_default():
            try:
                tf.compat.v1.import_graph_def(graph_def, name="")
            except (ValueError, tf.errors.OpError) as e:
                raise QuantizeGraphError("the graph does not import: %s" % _first_line(e))
        config = tf.compat.v1.ConfigProto()
        if threads:
            config.intra_op_parallelism_threads = threads
            config.inter_op_parallelism_threads = threads
        self.session = tf.compat.v1.Session(graph=self.graph, config=config)

    def tensor(self, name):
        try:
            return self.graph.get_tensor_by_name(ensure_tensor_name_has_port(name))
        except (KeyError, ValueError):
            raise QuantizeGraphError("tensor '%s' is not in the graph" % name)

    def run(self, outputs, feeds):
        """Runs `outputs` (tensor names) with `feeds` ({tensor name: array}); returns a list."""
        fetches = [self.tensor(o) for o in outputs]
        feed_dict = {self.tensor(k): v for k, v in feeds.items()}
        try:
            return self.session.run(fetches, feed_dict)
        except tf.errors.OpError as e:
            raise QuantizeGraphError("running the graph failed: %s" % _first_line(e))

    def run_batched(self, outputs, feeds, batch):
        """Like run(), over `feeds` split into batches of `batch` examples; outputs concatenated
        (graphs with a fixed batch size need this)."""
        count = min(len(v) for v in feeds.values())
        parts = [self.run(outputs, {k: v[i:i + batch] for k, v in feeds.items()})
                 for i in range(0, count, batch)]
        return [np.concatenate([p[j] for p in parts]) for j in range(len(outputs))]

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_CONTEXT_LINES = ("Graph execution error", "Detected at node", "[[", "Stack trace", "File ",
                  "Traceback", "Node:", "(", "0 successful", "1 root error", "Additional")


def _first_line(error):
    """The line of a TF error that says what went wrong, without its graph context."""
    text = getattr(error, "message", None) or str(error)
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    useful = [l for l in lines if not l.startswith(_CONTEXT_LINES)]
    return (useful or lines or [type(error).__name__])[0]


def _check_runnable(graph_def):
    """A onednn-target graph in a TensorFlow without oneDNN would fail deep inside a run with
    "Missing 0-th output" (or return nothing); say what is wrong instead."""
    from quantize_graph.targets.probe import HOW_TO_ENABLE, onednn_int8_runs, uses_onednn_ops
    if uses_onednn_ops(graph_def) and not onednn_int8_runs():
        raise QuantizeGraphError("this graph uses TensorFlow's oneDNN int8 kernels (target onednn), "
                                 "which this TensorFlow does not run: " + HOW_TO_ENABLE)
    _load_kernels_if_needed(graph_def)
    from quantize_graph.cpu_bf16 import warn_if_emulated
    warn_if_emulated(graph_def)  # a bfloat16 graph still runs where the CPU has no bf16 unit


def _load_kernels_if_needed(graph_def):
    """Graphs lowered to the `kernels` target use Qg* ops, registered only by our op library."""
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    qg_ops = sorted({n.op for n in nodes if n.op.startswith("Qg")})
    if not qg_ops:
        return
    try:
        kernels = importlib.import_module("quantize_graph.kernels")
    except ModuleNotFoundError as e:
        if e.name != "quantize_graph.kernels":
            raise
        raise QuantizeGraphError("the graph uses this project's ops (%s), which need its op "
                                 "library, but quantize_graph.kernels is not available"
                                 % ", ".join(qg_ops))
    try:
        kernels.load()
    except (ImportError, tf.errors.OpError) as e:
        raise QuantizeGraphError("the graph uses this project's ops (%s): %s"
                                 % (", ".join(qg_ops), _first_line(e)))


def run_graph(graph_def, outputs, feeds, threads=None):
    """One-shot helper: imports, runs, closes."""
    with GraphRunner(graph_def, threads) as r:
        return r.run(outputs, feeds)


def placeholder_shapes(graph_def, names):
    """{name: (shape list with None for unknown dims, numpy dtype)} for the given Placeholders."""
    out = {}
    by_name = {n.name: n for n in graph_def.node}
    for name in names:
        node = by_name[name]
        shape = None
        if "shape" in node.attr and not node.attr["shape"].shape.unknown_rank:
            shape = [d.size if d.size >= 0 else None for d in node.attr["shape"].shape.dim]
        dtype = tf.as_dtype(node.attr["dtype"].type).as_numpy_dtype if "dtype" in node.attr else np.float32
        out[name] = (shape, dtype)
    return out
