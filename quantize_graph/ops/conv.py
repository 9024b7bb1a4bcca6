"""Conv2D and DepthwiseConv2dNative, with the BiasAdd, Relu/Relu6 and residual Add a
patterns.ConvGroup fuses: one emitter per target.

- reference: Conv2D alone as QuantizedConv2D (quint8 x quint8 -> qint32), then narrowed to 8
  bits (the BiasAdd stays float, see targets/reference.py); no depthwise form;
- onednn: QuantizedConv2DWithBiasAndReluAndRequantize (Relu6 by saturating at an output range
  of 6), without activation QuantizedConv2DWithBiasAndRequantize (qint8 out), depthwise only
  with an activation (QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize), a residual Add as
  QuantizedConv2DWithBiasSumAndReluAndRequantize (lowering/onednn_residual.py), a signed input
  with an offset (lowering/onednn_signed_input.py);
- kernels: QgQuantizedConv2D / QgQuantizedDepthwiseConv2D, affine in and out, the residual
  Add as the summand with or without an activation.
A foldable Pad (ConvGroup.pad) becomes the conv's SAME padding on both fused targets.
"""
import tensorflow as tf

from quantize_graph.graph.names import canonical_input
from quantize_graph.graph.nodes import copy_attr, create_node, set_attr_bool, set_attr_dtype, set_attr_int, set_attr_string
from quantize_graph.graph.patterns import ACTIVATION_CAPS
from quantize_graph.ops.common import all_ones, is_float, is_nhwc
from quantize_graph.ops.common import handlers
from quantize_graph.lowering import kernels, onednn, onednn_residual, onednn_signed_input

CONV_ATTRS = ("strides", "padding", "dilations")


def supports_conv2d(node):
    if not is_float(node) or not is_nhwc(node):
        return False, "only float NHWC convolutions are quantized"
    if node.attr["padding"].s not in (b"SAME", b"VALID"):
        return False, "explicit padding is not supported by QuantizedConv2D"
    if "dilations" in node.attr and not all_ones(node.attr["dilations"].list.i):
        return False, "dilated convolutions are not supported by QuantizedConv2D"
    return True, ""


def supports_depthwise(node):
    if not is_float(node) or not is_nhwc(node):
        return False, "only float NHWC depthwise convolutions are quantized"
    if node.attr["padding"].s not in (b"SAME", b"VALID"):
        return False, "explicit padding is not supported by the int8 depthwise conv"
    if "dilations" in node.attr and not all_ones(node.attr["dilations"].list.i):
        return False, "dilated depthwise convolutions are not supported"
    return True, ""


def lower_conv2d_reference(ctx, node):
    [(x, x_min, x_max)] = ctx.quantize_inputs(node, [0])
    w, w_min, w_max, channel_scale = ctx.quantize_weights(node, axis=3)
    conv = ctx.emit("QuantizedConv2D", node, "quantized_conv",
                    [x, w, x_min, x_max, w_min, w_max],
                    types={"Tinput": "quint8", "Tfilter": "quint8", "out_type": "qint32"})
    for attr in CONV_ATTRS:
        if attr in node.attr:
            copy_attr(conv, attr, node.attr[attr])
    ctx.finish_int32(node, conv.name, channel_scale)


def padded_input(ctx, group, quantize_input):
    """(8-bit input, whether a Pad was folded): the Pad's input when the group has a foldable
    Pad (patterns.foldable_pad) and it can be quantized, else the conv's own input."""
    head = ctx.index.nodes[group.head]
    x = quantize_input(ctx, group.pad) if group.pad is not None else None
    if x is not None:
        return x, True
    return quantize_input(ctx, head.input[0]), False


def _copy_conv_attrs(node, head, folded):
    for attr in CONV_ATTRS:
        if attr in head.attr:
            copy_attr(node, attr, head.attr[attr])
    if folded:
        set_attr_string(node, "padding", b"SAME")


def emit_onednn(ctx, group):
    head, last = ctx.index.nodes[group.head], ctx.index.nodes[group.tail]
    act = ctx.index.nodes[group.activation] if group.activation else None
    if head.op == "DepthwiseConv2dNative" and act is None:
        return "no fused int8 depthwise conv without an activation"
    if head.op == "Conv2D" and act is None and ctx.only_float_readers(last):
        return ("no activation and only float ops read it: its qint8 result (127 levels "
                "over +-max, e.g. logits) would only lose precision")
    x, folded = padded_input(ctx, group, onednn.quantize_input)
    offset = 0.0
    if x is None:  # signed: codes with an offset, undone in the bias (1x1 / VALID convs)
        x, offset = onednn_signed_input.offset_input(ctx, head)
    if x is None:
        return "its input can be negative (quint8 holds no negatives)"
    weights = ctx.layer_weights(group)
    if head.op == "DepthwiseConv2dNative" and weights.shape[3] != 1:
        return "depthwise channel multiplier > 1"
    bias = ctx.layer_bias(group, weights)
    base = last.name + "/eightbit"
    q_w, w_max = ctx.quantize_weights(head.op, weights)
    filt = ctx.const(base + "_weights", q_w, tf.qint8)
    if offset:
        bias = bias + onednn_signed_input.offset_bias(q_w, w_max, offset)
    if act is not None:
        magnitude = onednn.output_magnitude(ctx, last.name, ACTIVATION_CAPS[act.op])
        out_type, lo = tf.quint8, 0.0
        op = ("QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize"
              if head.op == "DepthwiseConv2dNative" else "QuantizedConv2DWithBiasAndReluAndRequantize")
    else:
        magnitude = onednn.output_magnitude(ctx, last.name)
        out_type, lo = tf.qint8, -magnitude
        op = "QuantizedConv2DWithBiasAndRequantize"
    summand = []
    if group.residual_add is not None:
        q = onednn.quantize_input(ctx, canonical_input(group.summand))
        if q is None:
            return "the residual summand can be negative (quint8 holds no negatives)"
        summand = onednn_residual.summand_inputs(ctx, group, q)
        op = onednn_residual.SUM_OP
    inputs = [x.tensor, filt, ctx.const(base + "_bias", bias), x.min, x.max,
              ctx.const(base + "_min_filter", -w_max), ctx.const(base + "_max_filter", w_max),
              ctx.const(base + "_min_output", lo), ctx.const(base + "_max_output", magnitude)]
    conv = ctx.emit(op, base, inputs + summand, {"Tinput": tf.quint8, "Tfilter": tf.qint8,
                                                 "Tbias": tf.float32, "out_type": out_type})
    if summand:
        set_attr_dtype(conv, "Tsummand", tf.quint8)
    _copy_conv_attrs(conv, head, folded)
    ctx.replace(group.members)
    ctx.produce(last.name, conv, out_type, magnitude)
    return None


def emit_kernels(ctx, group):
    head, last = ctx.index.nodes[group.head], ctx.index.nodes[group.tail]
    act = ctx.index.nodes[group.activation] if group.activation else None
    x, folded = padded_input(ctx, group, kernels.quantize_input)
    if x is None:
        return "no range for its input"
    summand = None
    if group.residual_add is not None:
        summand = kernels.quantize_input(ctx, group.summand)
        if summand is None:
            return "no range for the residual summand"
    weights = ctx.layer_weights(group)
    bias = ctx.layer_bias(group, weights)
    base = last.name + "/eightbit"
    codes, scales = ctx.quantize_weights(head.op, weights)
    depthwise = head.op == "DepthwiseConv2dNative"
    lo, hi = kernels.output_range(ctx, last.name, act.op if act else None)
    concat = kernels.concat_reader(ctx, last)
    if concat is not None:
        lo, hi = kernels.output_range(ctx, concat.name)
    inputs = [x.tensor, ctx.const(base + "_weights", codes, tf.qint8),
              ctx.const(base + "_weight_scale", scales),
              ctx.const(base + "_bias", bias), x.min, x.max,
              ctx.const(base + "_min_output", lo), ctx.const(base + "_max_output", hi)]
    if not depthwise and summand:
        inputs += [summand.tensor, summand.min, summand.max]
    node = create_node("QgQuantizedDepthwiseConv2D" if depthwise else "QgQuantizedConv2D",
                       ctx.names(base), inputs)
    set_attr_string(node, "activation", (act.op.lower() if act is not None else "none").encode())
    set_attr_dtype(node, "out_type", tf.quint8)
    if not depthwise:
        set_attr_int(node, "num_summand", 1 if summand else 0)
    set_attr_bool(node, "constant_weights", True)   # a Const: prepared once
    _copy_conv_attrs(node, head, folded)
    ctx.add(node)
    ctx.replace(group.members)
    ctx.produce(last.name, node, tf.quint8, hi)
    return None


HANDLERS = {
    **handlers(["Conv2D"], supports_conv2d, reference=lower_conv2d_reference, onednn=emit_onednn,
               kernels=emit_kernels),
    **handlers(["DepthwiseConv2dNative"], supports_depthwise, onednn=emit_onednn, kernels=emit_kernels),
}
