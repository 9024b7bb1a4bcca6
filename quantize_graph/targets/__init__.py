"""Lowering targets: each turns the annotated float graph into one family of 8-bit ops."""
import tensorflow as tf

from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import canonical_input
from quantize_graph.targets.onednn import lower_onednn
from quantize_graph.targets.reference import lower_reference, refine_reference

_LOWERINGS = {"reference": lower_reference, "onednn": lower_onednn}
_REFINERS = {"reference": refine_reference, "onednn": lambda graph_def, decision: decision}


def refine(target, graph_def, decision):
    """The target's own say on annotate's decision (limits of its ops)."""
    return _REFINERS[target](graph_def, decision)


def lower(target, graph_def, decision, fallback_range=None, ranges=None):
    """The lowered graph. A target may keep more nodes float than annotate chose (limits it
    only sees with the ranges); it records them in `decision`."""
    return _LOWERINGS[target](graph_def, decision, fallback_range, ranges)


def range_tensors(graph_def, quantize_names):
    """The float tensors whose ranges the lowering reads: every non-constant data input of a
    quantized node, and every quantized node's result."""
    index = GraphIndex(graph_def)
    tensors = set()
    for name in quantize_names:
        node = index.nodes[name]
        tensors.add(name)
        for inp in node.input:
            src = index.get(inp)
            if not inp.startswith("^") and src is not None and src.op != "Const" and _is_float(src, inp):
                tensors.add(canonical_input(inp))
    return sorted(tensors)


def _is_float(node, inp):
    """Whether input `inp` (an output of `node`) is float32, from the node's type attributes."""
    if node.op == "Placeholder":
        return node.attr["dtype"].type == tf.float32.as_datatype_enum
    if node.op in ("Shape", "Size", "Rank"):
        return False
    return "T" in node.attr and node.attr["T"].type == tf.float32.as_datatype_enum
