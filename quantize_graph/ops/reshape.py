"""Reshape: QuantizedReshape carries the quint8 data and its range through unchanged."""
from quantize_graph.graph.nodes import copy_attr
from quantize_graph.ops.common import is_float
from quantize_graph.ops.handlers import LOWERED_BY_TARGET, register


def supports_reshape(node):
    if not is_float(node):
        return False, "only float reshapes are quantized"
    return True, ""


def lower_reshape_reference(ctx, node):
    [(x, x_min, x_max)] = ctx.quantize_inputs(node, [0])
    reshape = ctx.emit("QuantizedReshape", node, "quantized_reshape",
                       [x, node.input[1], x_min, x_max], types={"T": "quint8"})
    copy_attr(reshape, "Tshape", node.attr["Tshape"])
    ctx.finish_quint8(node, reshape.name)


register(["Reshape"], supports_reshape, reference=lower_reshape_reference, onednn=LOWERED_BY_TARGET,
         kernels=LOWERED_BY_TARGET)
