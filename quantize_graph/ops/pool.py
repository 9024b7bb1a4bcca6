"""MaxPool and AvgPool, quint8 in and out with the input's range: QuantizedMaxPool /
QuantizedAvgPool (reference, onednn), QgQuantizedMaxPool / QgQuantizedAvgPool (kernels)."""
import tensorflow as tf

from quantize_graph.graph.nodes import copy_attr
from quantize_graph.ops.common import is_float, is_nhwc
from quantize_graph.ops.common import handlers
from quantize_graph.lowering import kernels, onednn

POOL_ATTRS = ("ksize", "strides", "padding")
NEGATIVE_INPUT = "an input can be negative"


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
    for attr in POOL_ATTRS:
        copy_attr(pool, attr, node.attr[attr])
    ctx.finish_quint8(node, pool.name)


def _emit(ctx, group, quantize_input, op_prefix, types):
    node = ctx.index.nodes[group.node]
    x = quantize_input(ctx, node.input[0])
    if x is None:
        return NEGATIVE_INPUT
    pool = ctx.emit(op_prefix + node.op, node.name + "/eightbit", [x.tensor, x.min, x.max], types)
    for attr in POOL_ATTRS:
        copy_attr(pool, attr, node.attr[attr])
    ctx.replace([node.name])
    ctx.produce(node.name, pool, tf.quint8, x.magnitude)
    return None


def emit_onednn(ctx, group):
    return _emit(ctx, group, onednn.quantize_input, "Quantized", {"T": tf.quint8})


def emit_kernels(ctx, group):
    return _emit(ctx, group, kernels.quantize_input, "QgQuantized", None)


HANDLERS = handlers(["MaxPool", "AvgPool"], supports_pool, reference=lower_pool_reference, onednn=emit_onednn,
                    kernels=emit_kernels)
