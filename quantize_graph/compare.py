"""Compares a float graph with a quantized one on the same inputs (mode test, tests, tools)."""
import collections

import numpy as np

from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph.names import ensure_tensor_name_has_port
from quantize_graph.runner import GraphRunner, placeholder_shapes

OutputError = collections.namedtuple("OutputError", ["name", "max_abs_error", "relative_error",
                                                     "top1_agreement"])


def output_errors(name, reference, other):
    """Max abs error, relative L2 error and top-1 agreement (argmax over the last axis)."""
    reference, other = np.asarray(reference, np.float64), np.asarray(other, np.float64)
    diff = np.abs(reference - other)
    norm = np.linalg.norm(reference)
    rel = float(np.linalg.norm(reference - other) / norm) if norm > 0 else float(diff.max(initial=0))
    if reference.ndim >= 1 and reference.shape[-1] > 1:
        ref_top = reference.reshape(-1, reference.shape[-1]).argmax(axis=1)
        oth_top = other.reshape(-1, other.shape[-1]).argmax(axis=1)
        agreement = float(np.mean(ref_top == oth_top))
    else:
        agreement = float("nan")
    return OutputError(name, float(diff.max(initial=0)), rel, agreement)


def random_feeds(graph_def, input_names, dims_list, seed=0):
    """Uniform [0, 1) inputs; `dims_list` gives one shape per input (None: the static shape)."""
    rng = np.random.RandomState(seed)
    shapes = placeholder_shapes(graph_def, input_names)
    feeds = {}
    for name, dims in zip(input_names, dims_list):
        static, dtype = shapes[name]
        shape = dims if dims is not None else static
        if shape is None or any(d is None for d in shape):
            raise QuantizeGraphError(
                "input '%s' has no fully known shape; give --test_input_dims" % name)
        feeds[name] = rng.uniform(0, 1, size=shape).astype(dtype)
    return feeds


def compare_graphs(reference_graph, other_graph, output_names, feeds, batch=None):
    """[OutputError] per output, running both graphs on `feeds` ({input node name: array}),
    `batch` examples at a time (default: all at once)."""
    return compare_to_outputs(graph_outputs(reference_graph, output_names, feeds, batch),
                              other_graph, output_names, feeds, batch)


def graph_outputs(graph_def, output_names, feeds, batch=None):
    """[array] per output of the graph on `feeds`, `batch` examples at a time."""
    fetches = [ensure_tensor_name_has_port(o) for o in output_names]
    tensors = {ensure_tensor_name_has_port(k): v for k, v in feeds.items()}
    with GraphRunner(graph_def) as runner:
        return runner.run_batched(fetches, tensors, batch or min(len(v) for v in tensors.values()))


def compare_to_outputs(reference_outputs, other_graph, output_names, feeds, batch=None):
    """compare_graphs with the reference's outputs already computed (graph_outputs): the
    accuracy fallback compares several candidates with one float run."""
    other = graph_outputs(other_graph, output_names, feeds, batch)
    return [output_errors(n, r, o) for n, r, o in zip(output_names, reference_outputs, other)]


def format_errors(errors):
    lines = []
    for e in errors:
        lines.append("%s: max abs error %.6g, relative error %.4g, top-1 agreement %s" % (
            e.name, e.max_abs_error, e.relative_error,
            "n/a" if np.isnan(e.top1_agreement) else "%.1f%%" % (100 * e.top1_agreement)))
    return "\n".join(lines)


def pair_keys(first, second, kind):
    """[(key of first, key of second)]: by name when both models have the same keys, else in
    order (a GraphDef's keys are node names, a SavedModel's are its signature's)."""
    first, second = list(first), list(second)
    if set(first) == set(second):
        return [(k, k) for k in first]
    if len(first) == len(second):
        return list(zip(first, second))
    raise QuantizeGraphError("the models have different %ss: %s vs %s" % (
        kind, ", ".join(first), ", ".join(second)))


def compare_models(first, second, feeds, batch):
    """[OutputError] per output of `first` against `second` (graph.saved_model.ServedGraph
    each), both run on `feeds` ({input key of first: array}), `batch` examples at a time."""
    inputs = pair_keys(first.inputs, second.inputs, "input")
    outputs = pair_keys(first.outputs, second.outputs, "output")
    with GraphRunner(first.graph_def) as a, GraphRunner(second.graph_def) as b:
        ref = a.run_batched([first.outputs[k] for k, _ in outputs],
                            {first.inputs[k]: feeds[k] for k, _ in inputs}, batch)
        oth = b.run_batched([second.outputs[k] for _, k in outputs],
                            {second.inputs[k2]: feeds[k1] for k1, k2 in inputs}, batch)
    names = [k1 if k1 == k2 else "%s / %s" % (k1, k2) for k1, k2 in outputs]
    return [output_errors(n, r, o) for n, r, o in zip(names, ref, oth)]
