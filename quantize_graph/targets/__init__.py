"""Lowering targets: each turns the annotated float graph into one family of 8-bit ops."""
import tensorflow as tf

from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import canonical_input, split_input
from tensorflow.python.framework import op_def_registry
from quantize_graph.targets import kernels as _kernels
from quantize_graph.targets.onednn import lower_onednn
from quantize_graph.targets.probe import HOW_TO_ENABLE, onednn_int8_runs
from quantize_graph.targets.reference import lower_reference, refine_reference

_LOWERINGS = {"reference": lower_reference, "onednn": lower_onednn, "kernels": _kernels.lower_kernels}
# Targets whose int8 conv/matmul add a float bias, where bias correction subtracts the mean
# shift of their weight rounding (weight_schemes.DEQUANTIZERS gives their real weights).
BIAS_CORRECTED = ("onednn", "kernels")
_REFINERS = {"reference": refine_reference, "onednn": lambda graph_def, decision: decision,
             "kernels": lambda graph_def, decision: decision}


NO_RANGES = ("no calibration data and no batch norms to derive ranges from: the reference ops "
             "measure every range at run time and run slower than float; --calibration_data "
             "gives the fast onednn target")


def resolve_target(target, has_ranges, has_statistics=False):
    """(concrete target, why) for --target; `auto` picks onednn where its kernels run and
    ranges can be frozen (calibration data, a ranges file, the fallback range, or batch-norm
    statistics), else reference."""
    if target != "auto":
        return target, "asked for"
    if not onednn_int8_runs():
        return "reference", "TensorFlow's oneDNN int8 kernels do not run here (%s)" % HOW_TO_ENABLE
    if has_ranges:
        return "onednn", "TensorFlow's oneDNN int8 kernels run here"
    if has_statistics:
        return "onednn", ("TensorFlow's oneDNN int8 kernels run here, and the graph's batch norms "
                          "give the ranges without calibration data")
    return "reference", NO_RANGES


def refine(target, graph_def, decision):
    """The target's own say on annotate's decision (limits of its ops)."""
    return _REFINERS[target](graph_def, decision)


def lower(target, graph_def, decision, fallback_range=None, ranges=None, bias_corrections=None):
    """(the lowered graph, the Decision it realizes). A target may keep more nodes float than
    annotate chose (limits it only sees with the ranges): the returned Decision says which and
    why; `decision` itself is not changed. `bias_corrections` ({layer: per-channel shift},
    passes/bias_correction.py) only exist for targets in BIAS_CORRECTED."""
    if bias_corrections:
        return _LOWERINGS[target](graph_def, decision, fallback_range, ranges, bias_corrections)
    return _LOWERINGS[target](graph_def, decision, fallback_range, ranges)


def range_tensors(graph_def, quantize_names):
    """The float tensors whose ranges the lowering reads: every non-constant data input of a
    quantized node, and every quantized node's result."""
    index = GraphIndex(graph_def)
    return sorted({t for name in quantize_names for t in node_range_tensors(index, name)})


def node_range_tensors(index, name):
    """The tensors range_tensors reads for one quantized node (index: a GraphIndex)."""
    tensors = [name]
    for inp in index.nodes[name].input:
        src = index.get(inp)
        if (not inp.startswith("^") and src is not None and src.op != "Const"
                and output_dtype(src, split_input(inp)[1]) == tf.float32):
            tensors.append(canonical_input(inp))
    return tensors


def output_dtype(node, port):
    """The dtype of output `port` of `node`, from its op definition; None if unknown."""
    op_def = op_def_registry.get(node.op)
    if op_def is None or port >= len(op_def.output_arg):
        return None
    arg = op_def.output_arg[port]
    if arg.type:
        return tf.as_dtype(arg.type)
    if arg.type_attr and arg.type_attr in node.attr:
        return tf.as_dtype(node.attr[arg.type_attr].type)
    return None
