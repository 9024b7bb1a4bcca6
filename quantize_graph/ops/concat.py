"""Concat (v1: axis first) and ConcatV2 (axis last): QuantizedConcat, quint8 in and out.

QuantizedConcat requantizes every input to the union of their ranges itself.
"""
from quantize_graph.graph.edit import data_inputs
from quantize_graph.graph.nodes import const_value, set_attr_int
from quantize_graph.ops.common import is_float
from quantize_graph.ops.handlers import LOWERED_BY_TARGET, register


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


def nonnegative_axis(ctx, node, axis, first_value):
    """The axis as a tensor >= 0: quantized concat ops reject -1 (Keras' Concatenate default).

    A constant axis >= 0 is kept; any other becomes FloorMod(axis, Rank(first value)), which
    constant folding by TF's optimizer makes free.
    """
    src = ctx.index.get(axis)
    if src is not None and src.op == "Const" and int(const_value(src)) >= 0:
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


register(["Concat", "ConcatV2"], supports_concat, reference=lower_concat_reference, onednn=LOWERED_BY_TARGET,
         kernels=LOWERED_BY_TARGET)
