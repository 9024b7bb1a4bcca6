"""Reshape: the quint8 codes and their range carried through unchanged. reference and onednn:
QuantizedReshape; kernels: the stock Reshape on the codes (the range travels with the
producer's min/max). Fused targets reshape only what an int8 op already produces."""
import dataclasses

import tensorflow as tf

from quantize_graph.graph.names import tensor_name
from quantize_graph.graph.nodes import copy_attr
from quantize_graph.lowering import kernels, onednn
from quantize_graph.lowering.context import Quantized
from quantize_graph.lowering.plan import GroupPlan, keep_float
from quantize_graph.ops.common import Lowering, handlers, is_float

FLOAT_INPUT = "its input is float: quantizing only to reshape would lose precision"
NEGATIVE_INPUT = "an input can be negative"


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


def _plan(state, group, input_spec):
    node = state.ctx.index.nodes[group.node]
    if not state.already_int8(node.input[0]):
        return keep_float(group, FLOAT_INPUT)
    x = input_spec(state, node.input[0])
    if x is None:
        return keep_float(group, NEGATIVE_INPUT)
    return GroupPlan(group, inputs=(x,), output=state.produce(
        dataclasses.replace(x, tensor=node.name, shared_with=None)))


def _emit(ctx, plan, quantize, reshape):
    node = ctx.index.nodes[plan.group.node]
    x = quantize(ctx, plan.inputs[0])
    ctx.replace([node.name])
    ctx.tensors[node.name] = reshape(ctx, node, x)
    ctx.produced.add(node.name)


def _onednn_reshape(ctx, node, x):
    r = ctx.emit("QuantizedReshape", node.name + "/eightbit",
                 [x.tensor, node.input[1], x.min, x.max], {"T": tf.quint8})
    copy_attr(r, "Tshape", node.attr["Tshape"])
    return Quantized(r.name, tensor_name(r.name, 1), tensor_name(r.name, 2), tf.quint8, x.magnitude)


def _kernels_reshape(ctx, node, x):
    r = ctx.emit("Reshape", node.name + "/eightbit", [x.tensor, node.input[1]], {"T": tf.quint8})
    copy_attr(r, "Tshape", node.attr["Tshape"])
    return Quantized(r.name, x.min, x.max, tf.quint8, x.magnitude)


def plan_onednn(state, group):
    return _plan(state, group, onednn.input_spec)


def emit_onednn(ctx, plan):
    _emit(ctx, plan, onednn.quantize, _onednn_reshape)


def plan_kernels(state, group):
    return _plan(state, group, kernels.input_spec)


def emit_kernels(ctx, plan):
    _emit(ctx, plan, kernels.quantize, _kernels_reshape)


HANDLERS = handlers(["Reshape"], supports_reshape, reference=lower_reshape_reference,
                    onednn=Lowering(plan_onednn, emit_onednn), kernels=Lowering(plan_kernels, emit_kernels))
