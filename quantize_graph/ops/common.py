"""What the op modules share: their handler type and attribute checks."""
import collections

import tensorflow as tf

# supports(node) -> (ok, why not); lower: {target: emitter} (see registry.py).
OpHandler = collections.namedtuple("OpHandler", ["supports", "lower"])
# A fused target's lowering of one pattern: plan(state, group) -> lowering/plan.GroupPlan
# (emit, or keep float and why; the specs), emit(ctx, plan) carries an emitted plan out.
Lowering = collections.namedtuple("Lowering", ["plan", "emit"])

# For the fused targets, BiasAdd, Relu/Relu6 and Add have no emitter of their own: they may be
# quantized, as members of the ConvGroup that the conv/matmul emitter lowers.
FUSED_INTO_PRODUCER = "quantized only when fused into the conv/matmul that produces its input"


def handlers(op_types, supports, **lowerings):
    """{op type: OpHandler} for the op types one module handles alike."""
    return {op: OpHandler(supports, dict(lowerings)) for op in op_types}


def is_float(node, attr="T"):
    return attr in node.attr and node.attr[attr].type == tf.float32.as_datatype_enum


def is_nhwc(node):
    return node.attr["data_format"].s in (b"", b"NHWC")


def all_ones(values):
    return all(v == 1 for v in values)
