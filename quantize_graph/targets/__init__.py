"""Lowering targets: each turns the annotated float graph into one family of 8-bit ops."""
from quantize_graph.targets.reference import lower_reference

_LOWERINGS = {"reference": lower_reference}


def lower(target, graph_def, quantize_names, fallback_range=None):
    return _LOWERINGS[target](graph_def, quantize_names, fallback_range)
