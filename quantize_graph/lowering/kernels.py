"""The kernels target's building blocks for the emitters (ops/*.py): affine quint8 in and
out (QgQuantize, QgDequantize), results requantized straight to a concat's range, and which
residual Adds the Qg convs fuse. The facts: targets/kernels.py and kernels/OPS.md."""
import numpy as np
import tensorflow as tf

from quantize_graph.graph import patterns
from quantize_graph.graph.names import canonical_input, tensor_name
from quantize_graph.graph.nodes import create_node
from quantize_graph.lowering.context import Quantized
from quantize_graph.lowering.plan import AFFINE, TensorSpec


def affine_range(lo, hi):
    """(min, max) widened to hold 0 and nudged so that 0.0 is an exact quint8 code."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-6:
        hi = lo + 1e-6
    scale = (hi - lo) / 255.0
    zero_point = int(np.clip(np.rint(-lo / scale), 0, 255))
    lo = -zero_point * scale
    return lo, lo + 255.0 * scale


def input_spec(state, inp):
    """How a float tensor enters a Qg op: affine quint8 over its calibrated range, as it was
    quantized before or is written by an int8 op; None without a range."""
    key = canonical_input(inp)
    if key in state.specs:
        return state.specs[key]
    rng = state.ctx.range_of(key)
    if rng is None:
        return None
    return state.record(key, TensorSpec(inp, AFFINE, *affine_range(*rng)))


def quantize(ctx, spec):
    """The Quantized form of an input spec: the int8 result or QgQuantize made before, else a
    new QgQuantize."""
    key = canonical_input(spec.tensor)
    if key in ctx.tensors:
        return ctx.tensors[key]
    base = key.replace(":", "_") + "/eightbit"
    q = ctx.emit("QgQuantize", base + "_quantize",
                 [spec.tensor, ctx.const(base + "_min", spec.lo), ctx.const(base + "_max", spec.hi)])
    result = Quantized(q.name, tensor_name(q.name, 1), tensor_name(q.name, 2), tf.quint8, spec.hi)
    ctx.tensors[key] = result
    return result


def output_range(ctx, name, activation=None):
    """The affine range frozen for a result: calibrated, narrowed to what Relu/Relu6 keeps."""
    lo, hi = ctx.calibrated_range(name)
    keep = patterns.kept_range(activation)
    if keep is not None:
        lo = max(lo, keep[0])
        if keep[1] is not None:
            hi = min(hi, keep[1])
    return affine_range(lo, hi)


def output_spec(ctx, name, activation=None):
    """A result's affine spec; written straight at the range of a Concat that alone reads it."""
    node = ctx.index.nodes[name]
    concat = concat_reader(ctx, node)
    if concat is not None:
        return TensorSpec(name, AFFINE, *output_range(ctx, concat.name), shared_with=concat.name)
    return TensorSpec(name, AFFINE, *output_range(ctx, name, activation))


def concat_reader(ctx, node):
    """The 8-bit concat that is the only reader of `node`, or None.

    Such a producer requantizes straight to the concat's range (as TFLite does), so the
    concat's table for this input is the identity and the kernel copies bytes. The concat's
    range holds every input's (it is their union), so nothing is clipped; a branch with a
    smaller range than its siblings loses a little resolution."""
    reader = patterns.sole_reader(ctx.index, node, ctx.quantized_nodes, any_position=True)
    return reader if reader is not None and reader.op in patterns.CONCAT_OPS else None


def dequantize(ctx, name, q):
    ctx.add(create_node("QgDequantize", name, [q.tensor, q.min, q.max]))


def fuse_residuals(ctx, groups):
    """The kernels plan's residual Adds: conv [+ BiasAdd] groups that end in an Add's operand
    take the Add (the other operand, not a Const, becomes the summand) and the Relu/Relu6
    after it, if any. An Add of two such groups (a projection shortcut) goes to the first by
    name; the other is lowered alone, as the summand."""
    claimed, out = set(), []
    for group in groups:   # by head name: the same graph always fuses the same way
        fused = patterns.residual_candidate(ctx.index, ctx.quantized_nodes, group)
        if (fused is not None and fused.residual_add not in claimed
                and ctx.index.get(fused.summand).op != "Const"):
            claimed.add(fused.residual_add)
            group = fused
        out.append(group)
    return out
