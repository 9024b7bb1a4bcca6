"""Reshape: the quint8 codes and their range carried through unchanged. reference and onednn:
QuantizedReshape; kernels: the stock Reshape on the codes (the range travels with the
producer's min/max). Fused targets reshape only what an int8 op already produces."""
import tensorflow as tf

from quantize_graph.graph.nodes import copy_attr
from quantize_graph.lowering.context import Quantized
from quantize_graph.graph.names import tensor_name
from quantize_graph.ops.common import is_float
from quantize_graph.ops.common import handlers
from quantize_graph.lowering import kernels, onednn

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


def _emit(ctx, group, quantize_input, reshape):
    node = ctx.index.nodes[group.node]
    if not ctx.already_int8(node.input[0]):
        return FLOAT_INPUT
    x = quantize_input(ctx, node.input[0])
    if x is None:
        return NEGATIVE_INPUT
    ctx.replace([node.name])
    ctx.tensors[node.name] = reshape(ctx, node, x)
    ctx.produced.add(node.name)
    return None


def _onednn_reshape(ctx, node, x):
    r = ctx.emit("QuantizedReshape", node.name + "/eightbit",
                 [x.tensor, node.input[1], x.min, x.max], {"T": tf.quint8})
    copy_attr(r, "Tshape", node.attr["Tshape"])
    return Quantized(r.name, tensor_name(r.name, 1), tensor_name(r.name, 2), tf.quint8, x.magnitude)


def _kernels_reshape(ctx, node, x):
    r = ctx.emit("Reshape", node.name + "/eightbit", [x.tensor, node.input[1]], {"T": tf.quint8})
    copy_attr(r, "Tshape", node.attr["Tshape"])
    return Quantized(r.name, x.min, x.max, tf.quint8, x.magnitude)


def emit_onednn(ctx, group):
    return _emit(ctx, group, onednn.quantize_input, _onednn_reshape)


def emit_kernels(ctx, group):
    return _emit(ctx, group, kernels.quantize_input, _kernels_reshape)


HANDLERS = handlers(["Reshape"], supports_reshape, reference=lower_reshape_reference, onednn=emit_onednn,
                    kernels=emit_kernels)
