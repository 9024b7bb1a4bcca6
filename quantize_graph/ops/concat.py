"""Concat (v1: axis first) and ConcatV2 (axis last), quint8 in and out.

- reference: QuantizedConcat, which requantizes every input to the union of their ranges;
- onednn: QuantizedConcatV2 (unifies input ranges too), the axis made non-negative;
- kernels: QgQuantizedConcat to the concat's calibrated range (a constant axis only).
"""
import tensorflow as tf

from quantize_graph.graph.edit import data_inputs
from quantize_graph.graph.nodes import const_value, set_attr_int
from quantize_graph.lowering import kernels, onednn
from quantize_graph.lowering.plan import AFFINE, ZERO_AT_0, GroupPlan, TensorSpec, keep_float
from quantize_graph.ops.common import Lowering, handlers, is_float

NEGATIVE_INPUT = "an input can be negative"


def supports_concat(node):
    if not is_float(node):
        return False, "only float concatenation is quantized"
    return True, ""


def concat_axis_and_values(node):
    """(axis input, [value input positions]) for Concat and ConcatV2."""
    inputs = data_inputs(node)
    if node.op == "Concat":
        return inputs[0], list(range(1, len(inputs)))
    return inputs[-1], list(range(0, len(inputs) - 1))


def constant_nonnegative_axis(index, axis):
    """Whether the axis input is a Const >= 0 (quantized concat ops reject -1)."""
    src = index.get(axis)
    return src is not None and src.op == "Const" and int(const_value(src)) >= 0


def nonnegative_axis(ctx, node, axis, first_value):
    """The axis as a tensor >= 0: quantized concat ops reject -1 (Keras' Concatenate default).

    A constant axis >= 0 is kept; any other becomes FloorMod(axis, Rank(first value)), which
    constant folding by TF's optimizer makes free.
    """
    if constant_nonnegative_axis(ctx.index, axis):
        return axis
    rank = ctx.emit("Rank", node, "rank", [first_value], types={"T": "float32"})
    fixed = ctx.emit("FloorMod", node, "axis", [axis, rank.name], types={"T": "int32"})
    return fixed.name


def lower_concat_reference(ctx, node):
    axis, positions = concat_axis_and_values(node)
    axis = nonnegative_axis(ctx, node, axis, node.input[positions[0]])
    quantized = ctx.quantize_inputs(node, positions)
    values = [q for q, _, _ in quantized]
    mins = [lo for _, lo, _ in quantized]
    maxes = [hi for _, _, hi in quantized]
    concat = ctx.emit("QuantizedConcat", node, "quantized_concat",
                      [axis] + values + mins + maxes, types={"T": "quint8"})
    set_attr_int(concat, "N", len(values))
    ctx.finish_quint8(node, concat.name)


def plan_onednn(state, group):
    qs = [onednn.input_spec(state, v) for v in group.values]   # each, as the emitter would
    if any(q is None for q in qs):
        return keep_float(group, NEGATIVE_INPUT)
    output = TensorSpec(group.node, ZERO_AT_0, 0.0, max(q.hi for q in qs))  # QuantizedConcatV2 unifies
    return GroupPlan(group, inputs=tuple(qs), output=state.produce(output))


def emit_onednn(ctx, plan):
    group = plan.group
    node = ctx.index.nodes[group.node]
    qs = [onednn.quantize(ctx, spec) for spec in plan.inputs]
    axis = group.axis
    if not constant_nonnegative_axis(ctx.index, axis):  # FloorMod(axis, Rank), as the reference
        rank = ctx.emit("Rank", node.name + "/eightbit_rank", [qs[0].tensor], {"T": tf.quint8})
        axis = ctx.emit("FloorMod", node.name + "/eightbit_axis", [axis, rank.name], {"T": tf.int32}).name
    concat = ctx.emit("QuantizedConcatV2", node.name + "/eightbit",
                      [q.tensor for q in qs] + [axis] + [q.min for q in qs] + [q.max for q in qs],
                      {"T": tf.quint8, "Tidx": tf.int32})
    set_attr_int(concat, "N", len(qs))
    ctx.replace([node.name])
    ctx.produce(node.name, concat, tf.quint8, plan.output.hi)


def plan_kernels(state, group):
    src = state.ctx.index.get(group.axis)
    if src is None or src.op != "Const":
        return keep_float(group, "the concat axis is not a constant")
    qs = [kernels.input_spec(state, v) for v in group.values]
    if any(q is None for q in qs):
        return keep_float(group, NEGATIVE_INPUT)
    output = TensorSpec(group.node, AFFINE, *kernels.output_range(state.ctx, group.node))
    return GroupPlan(group, inputs=tuple(qs), output=state.produce(output))


def emit_kernels(ctx, plan):
    group, out = plan.group, plan.output
    node = ctx.index.nodes[group.node]
    qs = [kernels.quantize(ctx, spec) for spec in plan.inputs]
    concat = ctx.emit("QgQuantizedConcat", node.name + "/eightbit",
                      [q.tensor for q in qs] + [q.min for q in qs] + [q.max for q in qs]
                      + [ctx.const(node.name + "/eightbit_min_output", out.lo),
                         ctx.const(node.name + "/eightbit_max_output", out.hi)])
    set_attr_int(concat, "N", len(qs))
    set_attr_int(concat, "axis", int(const_value(ctx.index.get(group.axis))))
    ctx.replace([node.name])
    ctx.produce(node.name, concat, tf.quint8, out.hi)


HANDLERS = handlers(["Concat", "ConcatV2"], supports_concat, reference=lower_concat_reference,
                    onednn=Lowering(plan_onednn, emit_onednn),
                    kernels=Lowering(plan_kernels, emit_kernels))
