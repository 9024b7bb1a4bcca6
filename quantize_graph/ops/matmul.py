"""MatMul: QuantizedMatMul (quint8 x quint8 -> qint32), then narrowed to 8 bits."""
from quantize_graph.graph.nodes import copy_attr
from quantize_graph.ops.common import is_float
from quantize_graph.ops.handlers import LOWERED_BY_TARGET, register


def supports_matmul(node):
    if not is_float(node):
        return False, "only float MatMul is quantized"
    return True, ""


def lower_matmul_reference(ctx, node):
    [(a, a_min, a_max)] = ctx.quantize_inputs(node, [0])
    b, b_min, b_max, channel_scale = ctx.quantize_weights(node, axis=0 if node.attr["transpose_b"].b else 1)
    mm = ctx.emit("QuantizedMatMul", node, "quantized_mat_mul",
                  [a, b, a_min, a_max, b_min, b_max],
                  types={"T1": "quint8", "T2": "quint8", "Toutput": "qint32", "Tactivation": "quint8"})
    for attr in ("transpose_a", "transpose_b"):
        copy_attr(mm, attr, node.attr[attr])
    ctx.finish_int32(node, mm.name, channel_scale)


register(["MatMul"], supports_matmul, reference=lower_matmul_reference, onednn=LOWERED_BY_TARGET,
         kernels=LOWERED_BY_TARGET)
