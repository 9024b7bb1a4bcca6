"""Decides which nodes run in 8 bits: op support, exclusions, and the target's limits."""
import collections

from quantize_graph.ops.registry import handler

Decision = collections.namedtuple("Decision", ["quantized", "float_reasons"])


def annotate(graph_def, target, excluded_ops=(), excluded_nodes=()):
    """Returns Decision(quantized: set of names, float_reasons: {name: why it stays float})."""
    excluded_ops, excluded_nodes = set(excluded_ops), set(excluded_nodes)
    quantized, reasons = set(), {}
    for node in graph_def.node:
        if node.op in ("Const", "Placeholder"):
            continue
        h = handler(node.op)
        if node.name in excluded_nodes:
            reasons[node.name] = "excluded by --excluded_nodes"
        elif node.op in excluded_ops:
            reasons[node.name] = "excluded by --excluded_ops"
        elif h is None or target not in h.lower:
            reasons[node.name] = "no quantized form"
        else:
            ok, why = h.supports(node)
            if ok:
                quantized.add(node.name)
            else:
                reasons[node.name] = why
    return Decision(quantized, reasons)
