"""Where the quantization error comes from, and the automatic float fallback.

The per-layer table measures, on held-out inputs run through the float graph, how much each
quantized layer's result loses when rounded to 8 bits over its frozen range (SQNR, dB), and
how much its weights lose (SQNR of the target's own weight scheme, weight_schemes.py). The fallback
keeps in float the fewest layers, worst first, that bring the whole graph within the asked
relative error / top-1 agreement, measured end to end on the same held-out inputs.
"""
import collections
import json

import numpy as np

from quantize_graph.graph import patterns
from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import ensure_tensor_name_has_port
from quantize_graph.graph.nodes import const_value
from quantize_graph.runner import GraphRunner

LayerError = collections.namedtuple("LayerError", ["layer", "op", "range", "activation_sqnr_db",
                                                   "weight_sqnr_db", "members"])
POOLING_OPS = patterns.POOL_OPS + patterns.CONCAT_OPS


def sqnr_db(signal, noise):
    s, n = float(np.mean(np.square(signal))), float(np.mean(np.square(noise)))
    if n == 0:
        return float("inf")
    return 10 * np.log10(max(s, 1e-30) / n)


def fake_quantize(values, lo, hi, levels=255):
    """Values rounded to `levels` steps over [lo, hi] and clipped (what 8 bits keep)."""
    step = (hi - lo) / levels
    return np.clip(np.round((values - lo) / step), 0, levels) * step + lo


def weight_sqnr(weights, dequantized):
    """SQNR of weights against what the int8 op multiplies by instead (`dequantized`, from the
    target's scheme in weight_schemes.DEQUANTIZERS)."""
    w = weights.astype(np.float64)
    return sqnr_db(w, w - dequantized)


def layers_of(graph_def, quantized):
    """[(layer name, [member node names], tensor that leaves the layer in 8 bits, activation)]

    A layer is a conv/depthwise/matmul with the BiasAdd and Relu/Relu6 that only it feeds (a
    patterns.ConvGroup, the pattern targets fuse), or a pool/concat alone. Its error is
    measured where it leaves the layer: after the activation, which also bounds the range.
    """
    index = GraphIndex(graph_def)
    convs = {g.head: g for g in patterns.conv_groups(index, quantized)}
    absorbed = {m for g in convs.values() for m in g.members[1:]}
    layers = []
    for node in graph_def.node:
        if node.name not in quantized or node.name in absorbed:
            continue
        if node.name in convs:
            group = convs[node.name]
            layers.append((node.name, list(group.members), group.tail,
                           index.nodes[group.activation].op if group.activation else None))
        elif node.op in POOLING_OPS:
            layers.append((node.name, [node.name], node.name, None))
    return layers


def layer_errors(graph_def, ranges, feeds, quantized, dequantized, batch=None):
    """[LayerError] per layer (see layers_of) with a frozen range, worst (lowest SQNR) first.

    dequantized(op, weights, transpose_b): the weights the target's int8 op multiplies by."""
    index = GraphIndex(graph_def)
    layers = [l for l in layers_of(graph_def, quantized) if l[2] in ranges]
    with GraphRunner(graph_def) as runner:
        values = runner.run_batched([ensure_tensor_name_has_port(l[2]) for l in layers], feeds,
                                    batch or min(len(v) for v in feeds.values()))
    rows = []
    for (name, members, tensor, activation), value in zip(layers, values):
        node = index.nodes[name]
        lo, hi = ranges[tensor]
        if activation is not None:  # what the activation keeps is what is stored
            lo, hi = 0.0, min(hi, patterns.ACTIVATION_CAPS[activation] or hi)
        act = sqnr_db(value, value - fake_quantize(value, lo, hi))
        wq = None
        if node.op in patterns.HEAD_OPS:
            w = index.get(node.input[1])
            if w is not None and w.op == "Const":
                weights = const_value(w).astype(np.float64)
                transpose_b = node.op == "MatMul" and node.attr["transpose_b"].b
                wq = weight_sqnr(weights, dequantized(node.op, weights, transpose_b))
        rows.append(LayerError(name, node.op, (lo, hi), act, wq, members))
    return sorted(rows, key=lambda r: min(r.activation_sqnr_db, r.weight_sqnr_db or np.inf))


def format_report(rows, fmt="markdown", summary=None):
    if fmt == "json":
        return json.dumps({"summary": summary, "layers": [r._asdict() for r in rows]}, indent=1,
                          default=float)
    lines = []
    if summary:
        lines += ["# Quantization report", "", summary, ""]
    lines += ["| layer | op | range | activation SQNR (dB) | weight SQNR (dB) |",
              "|---|---|---|---|---|"]
    for r in rows:
        lines.append("| %s | %s | [%.4g, %.4g] | %.1f | %s |" % (
            r.layer, r.op, r.range[0], r.range[1], r.activation_sqnr_db,
            "-" if r.weight_sqnr_db is None else "%.1f" % r.weight_sqnr_db))
    return "\n".join(lines) + "\n"


def fewest_float_layers(ranked, meets):
    """The shortest prefix of `ranked` (worst layers first) whose exclusion `meets` the goal.

    `meets(excluded)` quantizes with those layers in float and measures. Grows the prefix by
    doubling, then bisects, so a graph of n layers costs O(log n) measurements. Returns
    (excluded layers, met): when even every listed layer in float misses, met is False.
    """
    results = {}

    def ok(k):
        if k not in results:
            results[k] = meets(list(ranked[:k]))
        return results[k]

    if ok(0):
        return [], True
    hi = 1
    while hi < len(ranked) and not ok(hi):
        hi *= 2
    hi = min(hi, len(ranked))
    if not ok(hi):
        return list(ranked), False
    lo = hi // 2  # misses (0 was checked; smaller powers of two missed)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return list(ranked[:hi]), True
