"""MaxPool and AvgPool: QuantizedMaxPool / QuantizedAvgPool, quint8 in and out."""
from quantize_graph.graph.nodes import copy_attr
from quantize_graph.ops.common import is_float, is_nhwc
from quantize_graph.ops.handlers import LOWERED_BY_TARGET, register


def supports_pool(node):
    if not is_float(node) or not is_nhwc(node):
        return False, "only float NHWC pooling is quantized"
    if node.attr["padding"].s not in (b"SAME", b"VALID"):
        return False, "explicit padding is not supported by quantized pooling"
    return True, ""


def lower_pool_reference(ctx, node):
    [(x, x_min, x_max)] = ctx.quantize_inputs(node, [0])
    op = "Quantized" + node.op
    pool = ctx.emit(op, node, op.lower(), [x, x_min, x_max], types={"T": "quint8"})
    for attr in ("ksize", "strides", "padding"):
        copy_attr(pool, attr, node.attr[attr])
    ctx.finish_quint8(node, pool.name)


register(["MaxPool", "AvgPool"], supports_pool, reference=lower_pool_reference, onednn=LOWERED_BY_TARGET,
         kernels=LOWERED_BY_TARGET)
