"""MatMul, with the BiasAdd and Relu/Relu6 a patterns.ConvGroup fuses: per target a plan and
an emitter (reference: one per node).

- reference: QuantizedMatMul (quint8 x quint8 -> qint32), then narrowed to 8 bits;
- onednn: QuantizedMatMulWithBiasAndReluAndRequantize, without an activation
  QuantizedMatMulWithBiasAndDequantize (float out, for logits); per-tensor pair-limited weights;
- kernels: QgQuantizedMatMul, float out where only float ops read it (logits keep full
  precision).
"""
import tensorflow as tf

from quantize_graph.graph.nodes import (copy_attr, create_node, set_attr_bool, set_attr_dtype,
                                        set_attr_int, set_attr_string)
from quantize_graph.lowering import kernels, onednn
from quantize_graph.lowering.plan import FLOAT, GroupPlan, TensorSpec, WeightSpec, keep_float
from quantize_graph.ops.common import Lowering, handlers, is_float

TRANSPOSE_A = "transpose_a is not supported by the int8 MatMul"


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


# The weights each target's fused MatMul takes (what ctx.quantize_weights computes): onednn's
# kernel rejects per-channel ranges.
ONEDNN_WEIGHTS = WeightSpec(per_channel=False, pair_limited=True)
KERNELS_WEIGHTS = WeightSpec(per_channel=True, pair_limited=True)


def plan_onednn(state, group):
    ctx = state.ctx
    head, last = ctx.index.nodes[group.head], ctx.index.nodes[group.tail]
    a = onednn.input_spec(state, head.input[0])
    if a is None:
        return keep_float(group, "its input can be negative (quint8 holds no negatives)")
    if head.attr["transpose_a"].b:
        return keep_float(group, TRANSPOSE_A)
    if group.activation is None:   # QuantizedMatMulWithBiasAndDequantize: float out
        output = TensorSpec(last.name, FLOAT, 0.0, 1.0)
    else:
        output = state.produce(onednn.output_spec(ctx, last.name, ctx.index.nodes[group.activation].op))
    return GroupPlan(group, inputs=(a,), output=output, weights=ONEDNN_WEIGHTS)


def emit_onednn(ctx, plan):
    group, [a_spec], out = plan.group, plan.inputs, plan.output
    head, last = ctx.index.nodes[group.head], ctx.index.nodes[group.tail]
    a = onednn.quantize(ctx, a_spec)
    weights = ctx.layer_weights(group)
    bias = ctx.layer_bias(group, weights)
    base = last.name + "/eightbit"
    q_b, b_max = ctx.quantize_weights(head.op, weights, head.attr["transpose_b"].b)
    b = ctx.const(base + "_weights", q_b, tf.qint8)
    if out.scheme == FLOAT:
        op, out_type = "QuantizedMatMulWithBiasAndDequantize", tf.float32
    else:
        op, out_type = "QuantizedMatMulWithBiasAndReluAndRequantize", tf.quint8
    inputs = [a.tensor, b, ctx.const(base + "_bias", bias), a.min, a.max,
              ctx.const(base + "_min_b", -b_max), ctx.const(base + "_max_b", b_max),
              ctx.const(base + "_min_output", out.lo), ctx.const(base + "_max_output", out.hi)]
    # A float result takes the replaced node's name, as a Dequantize would.
    mm = create_node(op, last.name if out_type == tf.float32 else ctx.names(base), inputs)
    for attr, dtype in (("T1", tf.quint8), ("T2", tf.qint8), ("Tbias", tf.float32), ("Toutput", out_type)):
        set_attr_dtype(mm, attr, dtype)
    set_attr_bool(mm, "transpose_a", False)
    set_attr_bool(mm, "transpose_b", head.attr["transpose_b"].b)
    set_attr_string(mm, "input_quant_mode", b"SCALED")
    ctx.add(mm)
    ctx.replace(group.members)
    if out_type != tf.float32:
        ctx.produce(last.name, mm, out_type, out.hi)


def plan_kernels(state, group):
    ctx = state.ctx
    head, last = ctx.index.nodes[group.head], ctx.index.nodes[group.tail]
    a = kernels.input_spec(state, head.input[0])
    if a is None:
        return keep_float(group, "no range for its input")
    if head.attr["transpose_a"].b:
        return keep_float(group, TRANSPOSE_A)
    act = ctx.index.nodes[group.activation].op if group.activation else None
    if act is None and ctx.only_float_readers(last):   # logits keep full precision
        output = TensorSpec(last.name, FLOAT, 0.0, 1.0)
    else:
        output = state.produce(kernels.output_spec(ctx, last.name, act))
    return GroupPlan(group, inputs=(a,), output=output, weights=KERNELS_WEIGHTS)


def emit_kernels(ctx, plan):
    group, [a_spec], out = plan.group, plan.inputs, plan.output
    head, last = ctx.index.nodes[group.head], ctx.index.nodes[group.tail]
    act = ctx.index.nodes[group.activation] if group.activation else None
    a = kernels.quantize(ctx, a_spec)
    weights = ctx.layer_weights(group)
    bias = ctx.layer_bias(group, weights)
    base = last.name + "/eightbit"
    codes, scales = ctx.quantize_weights(head.op, weights, head.attr["transpose_b"].b)
    float_out = out.scheme == FLOAT
    inputs = [a.tensor, ctx.const(base + "_weights", codes, tf.qint8),
              ctx.const(base + "_weight_scale", scales),
              ctx.const(base + "_bias", bias), a.min, a.max,
              ctx.const(base + "_min_output", out.lo), ctx.const(base + "_max_output", out.hi)]
    node = create_node("QgQuantizedMatMul", last.name if float_out else ctx.names(base), inputs)
    set_attr_string(node, "activation", (act.op.lower() if act is not None else "none").encode())
    set_attr_dtype(node, "out_type", tf.float32 if float_out else tf.quint8)
    set_attr_int(node, "num_summand", 0)
    set_attr_bool(node, "constant_weights", True)   # a Const: prepared once
    ctx.add(node)
    ctx.replace(group.members)
    if not float_out:
        ctx.produce(last.name, node, tf.quint8, out.hi)


HANDLERS = handlers(["MatMul"], supports_matmul, reference=lower_matmul_reference,
                    onednn=Lowering(plan_onednn, emit_onednn), kernels=Lowering(plan_kernels, emit_kernels))
