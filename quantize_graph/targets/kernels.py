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

from quantize_graph.lowering import kernels as kernels_blocks
from quantize_graph.lowering.driver import FusedTarget, lower_patterns
from quantize_graph.passes.weights import round_keeping_sums
from quantize_graph.targets.onednn import weight_scale


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


# Lowered at a group's last member, so that a residual summand produced by another branch is
# already 8-bit when its Add is fused.
TARGET = FusedTarget("kernels", kernels_blocks.fuse_residuals, kernels_blocks.dequantize,
                     _quantized_layout, anchor_at_tail=True)


def lower_kernels(graph_def, decision, fallback_range=None, ranges=None, bias_corrections=None):
    """(lowered graph, Decision with what stayed float): lowering/driver.py with this target's
    emitters (ops/*.py)."""
    return lower_patterns(graph_def, decision, TARGET, ranges, fallback_range, bias_corrections)
