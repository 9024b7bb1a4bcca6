"""Lowering targets: each turns the annotated float graph into one family of 8-bit ops."""
from quantize_graph.targets.reference import lower_reference, refine_reference

_LOWERINGS = {"reference": lower_reference}
_REFINERS = {"reference": refine_reference}


def refine(target, graph_def, decision):
    """The target's own say on annotate's decision (limits of its ops)."""
    return _REFINERS[target](graph_def, decision)


def lower(target, graph_def, quantize_names, fallback_range=None):
    return _LOWERINGS[target](graph_def, quantize_names, fallback_range)
