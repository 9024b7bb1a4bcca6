"""MaxPool and AvgPool, quint8 in and out with the input's range: QuantizedMaxPool /
QuantizedAvgPool (reference, onednn), QgQuantizedMaxPool / QgQuantizedAvgPool (kernels)."""
import dataclasses

import tensorflow as tf

from quantize_graph.graph.nodes import copy_attr
from quantize_graph.lowering import kernels, onednn
from quantize_graph.lowering.plan import GroupPlan, keep_float
from quantize_graph.ops.common import Lowering, handlers, is_float, is_nhwc

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


def _plan(state, group, input_spec):
    node = state.ctx.index.nodes[group.node]
    x = input_spec(state, node.input[0])
    if x is None:
        return keep_float(group, NEGATIVE_INPUT)
    return GroupPlan(group, inputs=(x,), output=state.produce(dataclasses.replace(x, tensor=node.name, shared_with=None)))


def _emit(ctx, plan, quantize, op_prefix, types):
    node = ctx.index.nodes[plan.group.node]
    x = quantize(ctx, plan.inputs[0])
    pool = ctx.emit(op_prefix + node.op, node.name + "/eightbit", [x.tensor, x.min, x.max], types)
    for attr in POOL_ATTRS:
        copy_attr(pool, attr, node.attr[attr])
    ctx.replace([node.name])
    ctx.produce(node.name, pool, tf.quint8, x.magnitude)


def plan_onednn(state, group):
    return _plan(state, group, onednn.input_spec)


def emit_onednn(ctx, plan):
    _emit(ctx, plan, onednn.quantize, "Quantized", {"T": tf.quint8})


def plan_kernels(state, group):
    return _plan(state, group, kernels.input_spec)


def emit_kernels(ctx, plan):
    _emit(ctx, plan, kernels.quantize, "QgQuantized", None)


HANDLERS = handlers(["MaxPool", "AvgPool"], supports_pool, reference=lower_pool_reference,
                    onednn=Lowering(plan_onednn, emit_onednn), kernels=Lowering(plan_kernels, emit_kernels))
