"""Conv2D and DepthwiseConv2dNative, with the BiasAdd, Relu/Relu6 and residual Add a
patterns.ConvGroup fuses: per target a plan and an emitter (reference: one per node).

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
from quantize_graph.graph.nodes import (copy_attr, create_node, set_attr_bool, set_attr_dtype,
                                        set_attr_int, set_attr_string)
from quantize_graph.lowering import kernels, onednn, onednn_residual, onednn_signed_input
from quantize_graph.lowering.plan import OFFSET, ZERO_AT_0, GroupPlan, WeightSpec, keep_float
from quantize_graph.ops.common import Lowering, all_ones, handlers, is_float, is_nhwc

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


def _padded_input(state, group, input_spec):
    """(input spec, whether a Pad is folded): the Pad's input when the group has a foldable
    Pad (patterns.foldable_pad) and it can be quantized, else the conv's own input."""
    head = state.ctx.index.nodes[group.head]
    x = input_spec(state, group.pad) if group.pad is not None else None
    if x is not None:
        return x, True
    return input_spec(state, head.input[0]), False


def _copy_conv_attrs(node, head, folded):
    for attr in CONV_ATTRS:
        if attr in head.attr:
            copy_attr(node, attr, head.attr[attr])
    if folded:
        set_attr_string(node, "padding", b"SAME")


# The weights each target's fused convs take (what ctx.quantize_weights computes).
ONEDNN_WEIGHTS = {"Conv2D": WeightSpec(per_channel=True, pair_limited=True),
                  "DepthwiseConv2dNative": WeightSpec(per_channel=True, pair_limited=False)}
KERNELS_WEIGHTS = ONEDNN_WEIGHTS


def plan_onednn(state, group):
    ctx = state.ctx
    head, last = ctx.index.nodes[group.head], ctx.index.nodes[group.tail]
    act = ctx.index.nodes[group.activation].op if group.activation else None
    if head.op == "DepthwiseConv2dNative" and act is None:
        return keep_float(group, "no fused int8 depthwise conv without an activation")
    if head.op == "Conv2D" and act is None and ctx.only_float_readers(last):
        return keep_float(group, "no activation and only float ops read it: its qint8 result (127 "
                                 "levels over +-max, e.g. logits) would only lose precision")
    x, folded = _padded_input(state, group, onednn.input_spec)
    if x is None:  # signed: codes with an offset, undone in the bias (1x1 / VALID convs)
        x = onednn_signed_input.offset_spec(state, head)
    if x is None:
        return keep_float(group, "its input can be negative (quint8 holds no negatives)")
    if head.op == "DepthwiseConv2dNative" and ctx.layer_weights(group).shape[3] != 1:
        return keep_float(group, "depthwise channel multiplier > 1")
    output = onednn.output_spec(ctx, last.name, act)
    summand = None
    if group.residual_add is not None:
        summand = onednn.input_spec(state, canonical_input(group.summand))
        if summand is None:
            return keep_float(group, "the residual summand can be negative (quint8 holds no negatives)")
    return GroupPlan(group, inputs=(x,), summand=summand, output=state.produce(output),
                     weights=ONEDNN_WEIGHTS[head.op], folded_pad=folded)


def emit_onednn(ctx, plan):
    group, [x_spec], out = plan.group, plan.inputs, plan.output
    head, last = ctx.index.nodes[group.head], ctx.index.nodes[group.tail]
    if x_spec.scheme == OFFSET:
        x, offset = onednn_signed_input.offset_input(ctx, x_spec), x_spec.lo
    else:
        x, offset = onednn.quantize(ctx, x_spec), 0.0
    weights = ctx.layer_weights(group)
    bias = ctx.layer_bias(group, weights)
    base = last.name + "/eightbit"
    q_w, w_max = ctx.quantize_weights(head.op, weights)
    filt = ctx.const(base + "_weights", q_w, tf.qint8)
    if offset:
        bias = bias + onednn_signed_input.offset_bias(q_w, w_max, offset)
    if out.scheme == ZERO_AT_0:
        op = ("QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize"
              if head.op == "DepthwiseConv2dNative" else "QuantizedConv2DWithBiasAndReluAndRequantize")
    else:
        op = "QuantizedConv2DWithBiasAndRequantize"
    summand = []
    if plan.summand is not None:
        summand = onednn_residual.summand_inputs(ctx, group, onednn.quantize(ctx, plan.summand))
        op = onednn_residual.SUM_OP
    out_type = onednn.DTYPES[out.scheme]
    inputs = [x.tensor, filt, ctx.const(base + "_bias", bias), x.min, x.max,
              ctx.const(base + "_min_filter", -w_max), ctx.const(base + "_max_filter", w_max),
              ctx.const(base + "_min_output", out.lo), ctx.const(base + "_max_output", out.hi)]
    conv = ctx.emit(op, base, inputs + summand, {"Tinput": tf.quint8, "Tfilter": tf.qint8,
                                                 "Tbias": tf.float32, "out_type": out_type})
    if summand:
        set_attr_dtype(conv, "Tsummand", tf.quint8)
    _copy_conv_attrs(conv, head, plan.folded_pad)
    ctx.replace(group.members)
    ctx.produce(last.name, conv, out_type, out.hi)


def plan_kernels(state, group):
    ctx = state.ctx
    head, last = ctx.index.nodes[group.head], ctx.index.nodes[group.tail]
    x, folded = _padded_input(state, group, kernels.input_spec)
    if x is None:
        return keep_float(group, "no range for its input")
    summand = None
    if group.residual_add is not None:
        summand = kernels.input_spec(state, group.summand)
        if summand is None:
            return keep_float(group, "no range for the residual summand")
    act = ctx.index.nodes[group.activation].op if group.activation else None
    output = kernels.output_spec(ctx, last.name, act)
    return GroupPlan(group, inputs=(x,), summand=summand, output=state.produce(output),
                     weights=KERNELS_WEIGHTS[head.op], folded_pad=folded)


def emit_kernels(ctx, plan):
    group, [x_spec], out = plan.group, plan.inputs, plan.output
    head, last = ctx.index.nodes[group.head], ctx.index.nodes[group.tail]
    act = ctx.index.nodes[group.activation] if group.activation else None
    x = kernels.quantize(ctx, x_spec)
    summand = kernels.quantize(ctx, plan.summand) if plan.summand is not None else None
    weights = ctx.layer_weights(group)
    bias = ctx.layer_bias(group, weights)
    base = last.name + "/eightbit"
    codes, scales = ctx.quantize_weights(head.op, weights)
    depthwise = head.op == "DepthwiseConv2dNative"
    inputs = [x.tensor, ctx.const(base + "_weights", codes, tf.qint8),
              ctx.const(base + "_weight_scale", scales),
              ctx.const(base + "_bias", bias), x.min, x.max,
              ctx.const(base + "_min_output", out.lo), ctx.const(base + "_max_output", out.hi)]
    if not depthwise and summand:
        inputs += [summand.tensor, summand.min, summand.max]
    node = create_node("QgQuantizedDepthwiseConv2D" if depthwise else "QgQuantizedConv2D",
                       ctx.names(base), inputs)
    set_attr_string(node, "activation", (act.op.lower() if act is not None else "none").encode())
    set_attr_dtype(node, "out_type", tf.quint8)
    if not depthwise:
        set_attr_int(node, "num_summand", 1 if summand else 0)
    set_attr_bool(node, "constant_weights", True)   # a Const: prepared once
    _copy_conv_attrs(node, head, plan.folded_pad)
    ctx.add(node)
    ctx.replace(group.members)
    ctx.produce(last.name, node, tf.quint8, out.hi)


HANDLERS = {
    **handlers(["Conv2D"], supports_conv2d, reference=lower_conv2d_reference,
               onednn=Lowering(plan_onednn, emit_onednn), kernels=Lowering(plan_kernels, emit_kernels)),
    **handlers(["DepthwiseConv2dNative"], supports_depthwise,
               onednn=Lowering(plan_onednn, emit_onednn), kernels=Lowering(plan_kernels, emit_kernels)),
}
