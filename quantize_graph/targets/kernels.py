"""The `kernels` target: the project's own Qg op library (kernels/, contract in kernels/OPS.md).

It lowers the same patterns as the onednn target with the same driver (lowering/driver.py), its
emitters beside onednn's in ops/*.py, with three differences that the Qg ops allow:
- activations are quint8 with a zero point (affine), so signed tensors (the image entering the
  first conv, a conv without activation, residual sums) stay in 8 bits too;
- weights are qint8 symmetric per output channel, conv, depthwise and MatMul alike; conv and
  MatMul codes keep every same-sign pair along K within 128 (onednn's pair_limit), so that the
  AVX2 byte kernel (vpmaddubsw, twice the int16 kernel's multiply rate) can run exactly; any
  codes would still be exact on the int16 path (kernels/OPS.md, "CPU paths");
- a residual Add after conv + BiasAdd is fused as the conv's summand, with or without an
  activation after it.
A MatMul that only float ops read returns float (logits keep full precision).
"""
import numpy as np
import tensorflow as tf

from quantize_graph.graph import patterns
from quantize_graph.graph.names import canonical_input, tensor_name
from quantize_graph.graph.nodes import create_node
from quantize_graph.lowering.context import Quantized
from quantize_graph.lowering.driver import FusedTarget, lower_patterns
from quantize_graph.passes.weights import round_keeping_sums
from quantize_graph.targets.onednn import weight_scale


def affine_range(lo, hi):
    """(min, max) widened to hold 0 and nudged so that 0.0 is an exact quint8 code."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-6:
        hi = lo + 1e-6
    scale = (hi - lo) / 255.0
    zero_point = int(np.clip(np.rint(-lo / scale), 0, 255))
    lo = -zero_point * scale
    return lo, lo + 255.0 * scale


def quantize_weights(weights, axis, pair_limited=False):
    """(qint8 codes in [-127, 127], float32 scale per channel along `axis`), symmetric; rounding
    keeps each channel's sum of rounding errors near zero (see passes/weights.py).

    pair_limited: the other axes flatten, in order, into the GEMM's K (conv HWIO, MatMul
    [K, N]), and adjacent same-sign codes along that K sum to at most 128 in magnitude: onednn's
    weight_scale with the largest such pair at 126, since sum-keeping rounding moves each code
    by under one step. Channels whose big weights have small or opposite-sign neighbours keep
    8 bits; 7 bits at worst."""
    moved = np.moveaxis(weights, axis, -1)
    k_matrix = moved.reshape(-1, moved.shape[-1])          # [K, channels], K in GEMM order
    if pair_limited:
        scale = weight_scale(k_matrix, 0, (0,), 126.0)
    else:
        scale = np.abs(k_matrix).max(axis=0).astype(np.float64) / 127.0
        scale = np.where(scale > 0, scale, 1e-8)
    shape = [1] * weights.ndim
    shape[axis] = -1
    grid = weights / scale.reshape(shape) + 127.0
    codes = (round_keeping_sums(grid, axis, 254) - 127).astype(np.int8)
    return codes, scale.astype(np.float32)


def quantize_input(ctx, inp):
    """The affine quint8 form of a float tensor, quantizing it if needed; None without a range."""
    key = canonical_input(inp)
    if key in ctx.tensors:
        return ctx.tensors[key]
    rng = ctx.range_of(key)
    if rng is None:
        return None
    lo, hi = affine_range(*rng)
    base = key.replace(":", "_") + "/eightbit"
    q = ctx.emit("QgQuantize", base + "_quantize",
                 [inp, ctx.const(base + "_min", lo), ctx.const(base + "_max", hi)])
    result = Quantized(q.name, tensor_name(q.name, 1), tensor_name(q.name, 2), tf.quint8, hi)
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


# Lowered at a group's last member, so that a residual summand produced by another branch is
# already 8-bit when its Add is fused.
TARGET = FusedTarget("kernels", fuse_residuals, dequantize, anchor_at_tail=True)


def _quantized_layout(op, weights, transpose_b=False):
    """(codes, per-channel scales) of a layer's weights as the Qg op takes them: conv HWIO,
    depthwise [kh, kw, C, mult], MatMul [K, N] (transposed first if transpose_b)."""
    if op == "MatMul":
        return quantize_weights(weights.T if transpose_b else weights, 1, pair_limited=True)
    if op == "Conv2D":  # K runs over (kh, kw, C): the im2col row order of the kernel
        return quantize_weights(weights, 3, pair_limited=True)
    kh, kw, c, mult = weights.shape
    codes, scales = quantize_weights(weights.reshape(kh, kw, 1, c * mult), 3)
    return codes.reshape(kh, kw, c, mult), scales


def dequantized_weights(op, weights, transpose_b=False):
    """The float weights the Qg op really multiplies by, in the float op's layout (for bias
    correction)."""
    codes, scales = _quantized_layout(op, weights, transpose_b)
    if op == "DepthwiseConv2dNative":
        kh, kw, c, mult = weights.shape
        return (codes.reshape(kh, kw, 1, c * mult) * scales.astype(np.float64)).reshape(weights.shape)
    values = codes * scales.astype(np.float64)
    return values.T if op == "MatMul" and transpose_b else values


def lower_kernels(graph_def, decision, fallback_range=None, ranges=None, bias_corrections=None):
    """(lowered graph, Decision with what stayed float): lowering/driver.py with this target's
    emitters (ops/*.py)."""
    return lower_patterns(graph_def, decision, TARGET, ranges, fallback_range, bias_corrections)
