"""Relu and Relu6: QuantizedRelu / QuantizedRelu6 stay in quint8 with the input's range."""
from quantize_graph.ops.common import is_float
from quantize_graph.ops.handlers import FUSED_INTO_PRODUCER, register


def supports_activation(node):
    if not is_float(node):
        return False, "only float activations are quantized"
    return True, ""


def lower_activation_reference(ctx, node):
    [(x, x_min, x_max)] = ctx.quantize_inputs(node, [0])
    op = "Quantized" + node.op
    act = ctx.emit(op, node, op.lower(), [x, x_min, x_max],
                   types={"Tinput": "quint8", "out_type": "quint8"})
    ctx.finish_quint8(node, act.name)


register(["Relu", "Relu6"], supports_activation, reference=lower_activation_reference,
         onednn=FUSED_INTO_PRODUCER, kernels=FUSED_INTO_PRODUCER)
