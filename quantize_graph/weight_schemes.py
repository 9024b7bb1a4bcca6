"""Weight quantization schemes: every way the tool turns float weights into integer codes.

Arrays in, arrays out (no graph nodes): the targets, the weights/round modes, the original
module's helpers, bias correction and the per-layer report all take their codes from here, so
what the report measures and what bias correction undoes is what the int8 ops multiply by.

| scheme | used by | codes |
|---|---|---|
| `quantize_array` | legacy `quantize_weight_rounded` | 2^bits bucket centres over [min, max] |
| `weight_range` | legacy `quantize_weight_eightbit` (TF's QuantizeV2 MIN_FIRST), reference | per tensor, holds zero |
| `quantize_nudged` | reference | quint8 per tensor, zero on a code |
| `quantize_channel_scaled` | reference, float-read results | each channel / its max, then `quantize_nudged` |
| `quantize_per_channel` | `weights` mode | quint8 per output channel over [min, max] |
| `round_per_channel` | `weights_rounded`, `round` modes | the same levels, kept float |
| `onednn_conv_codes`, `onednn_matmul_codes` | onednn | qint8 symmetric, pair-limited (no VNNI) |
| `kernels_codes` | kernels | qint8 symmetric per channel, pair-limited along the GEMM's K |

`DEQUANTIZERS[target](op, weights, transpose_b)` gives the float weights a target's int8 ops
really multiply by, in the float op's layout.
"""
import numpy as np


# ---- rounding and ranges shared by the schemes ----

def round_keeping_sums(levels, axis, top):
    """Rounds `levels` (float positions on an integer grid 0..top) to integers so that every
    channel's sum of rounding errors is as close to zero as the grid allows.

    Plain rounding leaves each channel's output with an error of x * sum(errors) on smooth
    inputs; after batch-norm folding some channels are large weights that nearly cancel, and
    that error is then as big as the signal (MobileNet v1, 8-bit weights: top-1 -2.4 points
    with plain rounding, -0.9 with this). Each value still moves by less than one step.
    """
    moved = np.moveaxis(levels, axis, -1)
    flat = moved.reshape(-1, moved.shape[-1])
    low = np.floor(flat)
    frac = flat - low
    ups = np.round(frac.sum(axis=0)).astype(np.int64)  # how many values to round up, per channel
    rank = np.argsort(np.argsort(-frac, axis=0, kind="stable"), axis=0, kind="stable")
    rounded = np.clip(low + (rank < ups), 0, top)
    return np.moveaxis(rounded.reshape(moved.shape), -1, axis)


def weight_range(values):
    """The range the original tool used for a weight: includes zero, never empty."""
    lo, hi = float(np.min(values)), float(np.max(values))
    lo = min(lo, 0.0)
    if lo == hi:
        if abs(lo) < 0.000001:
            hi = lo + 1.0
        elif lo > 0:
            hi = 2 * lo
        else:
            hi = lo / 2.0
    return lo, hi


def nudge_range(lo, hi):
    """(lo, hi) moved so that 0.0 falls exactly on an 8-bit code (the reference target nudges
    its weights' and its frozen activations' ranges alike).

    The legacy ops assume MIN_FIRST codes, whose zero is exact; TF's oneDNN builds run
    QuantizeV2 with another rounding of the offset, which shifts every value of a tensor
    with a negative minimum by up to half a step (measured: MobileNet's first conv off by
    13%). With zero on a code both roundings give the same codes.
    """
    lo = min(lo, 0.0)
    hi = max(hi, lo + 1e-6)
    step = (hi - lo) / 255.0
    lo = round(lo / step) * step
    return lo, lo + 255.0 * step


def per_channel_ranges(values, axis):
    """Per-channel (min, max) along `axis`, never empty."""
    other = tuple(a for a in range(values.ndim) if a != axis)
    lo, hi = values.min(axis=other), values.max(axis=other)
    return lo, np.where(hi > lo, hi, lo + 1.0)


def output_axis(op, transpose_b=False):
    """The output-channel axis of a Conv2D [h, w, in, out], depthwise [h, w, channels,
    multiplier] (batch-norm scales vary along the channels) or MatMul [K, N] filter."""
    if op == "Conv2D":
        return 3
    if op == "DepthwiseConv2dNative":
        return 2
    return 0 if transpose_b else 1


def _along(vector, ndim, axis):
    """`vector` shaped to broadcast along `axis` of an ndim array."""
    shape = [1] * ndim
    shape[axis] = -1
    return np.reshape(vector, shape)


# ---- the original module's schemes ----

def quantize_array(arr, num_buckets):
    """Maps each value to the centre of one of `num_buckets` equal-width buckets spanning
    [min, max]: quantize_array([0, 0.3, 0.6, 1], 2) -> [0.25, 0.25, 0.75, 0.75]."""
    if num_buckets < 1:
        raise ValueError("num_buckets must be >= 1")
    arr_max, arr_min = arr.max(), arr.min()
    if arr_max == arr_min:
        return arr
    width = (arr_max - arr_min) / num_buckets
    bucket = np.floor((arr - arr_min) / width)
    bucket[bucket == num_buckets] = num_buckets - 1  # the maximum belongs to the last bucket
    return arr_min + width * (bucket + 0.5)


# ---- reference target ----

def quantize_nudged(values):
    """(quint8 codes, min, max) of a weight over its nudged range (the original tool's range:
    holds zero, never empty), computed here so it doesn't depend on TF's build."""
    lo, hi = nudge_range(*weight_range(values))
    step = (hi - lo) / 255.0
    codes = np.clip(np.floor((values.astype(np.float64) - lo) / step + 0.5), 0, 255).astype(np.uint8)
    return codes, lo, hi


def quantize_channel_scaled(values, axis):
    """(quint8 codes, min, max, float32 per-channel scale): each output channel divided by
    its largest magnitude, then one nudged range for the tensor; the result is multiplied by
    the scales in float (the reference target, where a conv/matmul's int32 result is turned
    to float exactly)."""
    values = values.astype(np.float64)
    other = tuple(a for a in range(values.ndim) if a != axis)
    scale = np.abs(values).max(axis=other)
    scale = np.where(scale > 0, scale, 1.0)
    codes, lo, hi = quantize_nudged((values / _along(scale, values.ndim, axis)).astype(np.float32))
    return codes, lo, hi, scale.astype(np.float32)


def reference_dequantized(op, weights, transpose_b=False):
    """The reference target's weights as its conv/matmul results use them (channel-scaled:
    its BiasAdd after a conv/matmul stays float, so the result is dequantized exactly)."""
    axis = output_axis(op, transpose_b)
    codes, lo, hi, scale = quantize_channel_scaled(weights, axis)
    step = (hi - lo) / 255.0
    return (codes * step + lo) * _along(scale.astype(np.float64), weights.ndim, axis)


# ---- weights / weights_rounded / round modes ----

def quantize_per_channel(values, axis):
    """(quint8 codes, float32 min, float32 max per channel) over each channel's [min, max]."""
    lo, hi = per_channel_ranges(values, axis)
    scale = (hi - lo) / 255.0
    levels = (values.astype(np.float64) - _along(lo, values.ndim, axis)) / _along(scale, values.ndim, axis)
    codes = round_keeping_sums(levels, axis, 255).astype(np.uint8)
    return codes, lo.astype(np.float32), hi.astype(np.float32)


def round_per_channel(values, axis, bitdepth):
    """Each output channel rounded to 2^bitdepth evenly spaced levels from its minimum to its
    maximum (the levels the `weights` mode stores), as float32."""
    values = values.astype(np.float64)
    lo, hi = per_channel_ranges(values, axis)
    step = _along((hi - lo) / ((1 << bitdepth) - 1), values.ndim, axis)
    lo = _along(lo, values.ndim, axis)
    index = round_keeping_sums((values - lo) / step, axis, (1 << bitdepth) - 1)
    return (lo + step * index).astype(np.float32)


# ---- onednn target ----

def pair_limit(weights, k_axis, reduce_axes):
    """Largest |w[2k]| + |w[2k+1]| over adjacent pairs of the same sign along the reduction
    axis `k_axis`.

    Without VNNI, oneDNN adds the products of such a pair (inputs 0..255 times int8 codes) in
    a saturating int16 before accumulating. A pair of opposite signs cannot overflow
    (255 * 128 < 32768), so only same-sign pairs limit the scale: their codes must sum to at
    most 128 in magnitude.
    """
    w = weights.astype(np.float64)
    if w.shape[k_axis] % 2:
        pad = [(0, 0)] * w.ndim
        pad[k_axis] = (0, 1)
        w = np.pad(w, pad)
    even = np.take(w, range(0, w.shape[k_axis], 2), axis=k_axis)
    odd = np.take(w, range(1, w.shape[k_axis], 2), axis=k_axis)
    pairs = np.where(even * odd > 0, np.abs(even) + np.abs(odd), 0.0)
    return pairs.max(axis=reduce_axes)


def weight_scale(weights, k_axis, reduce_axes, pair_levels):
    """Per-channel (or per-tensor) scale of int8 weight codes on CPUs without VNNI: the
    largest same-sign pair maps to `pair_levels` (<= 128 once rounded) and the largest single
    weight to at most 127. Channels whose big weights have small or opposite-sign neighbours
    keep 8 bits; 7 bits at worst."""
    top = np.abs(weights.astype(np.float64)).max(axis=reduce_axes)
    scale = np.maximum(pair_limit(weights, k_axis, reduce_axes) / pair_levels, top / 127.0)
    return np.where(scale > 0, scale, 1e-8)


def onednn_conv_codes(weights, op):
    """(qint8 codes, per-channel max to declare) for a onednn conv or depthwise filter."""
    axis = 3 if op == "Conv2D" else 2
    other = tuple(a for a in range(weights.ndim) if a != axis)
    if op == "Conv2D":  # pairs of input channels (axis 2) saturate; depthwise has no pairs
        # Sum-keeping rounding moves a code by up to one step, so a pair of codes may grow by
        # 2: the largest same-sign pair maps to 126 and stays <= 128 after rounding.
        scale = weight_scale(weights, 2, other, 126.0)
    else:
        scale = np.abs(weights).max(axis=other).astype(np.float64) / 127.0
        scale = np.where(scale > 0, scale, 1e-8)
    grid = weights / _along(scale, weights.ndim, axis) + 127   # 0 .. 254
    codes = (round_keeping_sums(grid, axis, 254) - 127).astype(np.int8)
    # The kernel's scale is max_filter / 127.
    return codes, (scale * 127.0).astype(np.float32)


def onednn_matmul_codes(weights, transpose_b):
    """(qint8 codes, max to declare) for a onednn MatMul: per tensor (the kernel rejects
    per-channel ranges), with the same pair limit along K."""
    k_axis = 1 if transpose_b else 0
    # Plain rounding moves each code by at most 1/2: a pair at 127 stays <= 128.
    scale = float(weight_scale(weights, k_axis, tuple(range(weights.ndim)), 127.0))
    return np.clip(np.round(weights / scale), -127, 127).astype(np.int8), scale * 127.0


def onednn_dequantized(op, weights, transpose_b=False):
    """The float weights the onednn int8 op really multiplies by (codes times their scale)."""
    if op == "MatMul":
        codes, top = onednn_matmul_codes(weights, transpose_b)
    else:
        codes, top = onednn_conv_codes(weights, op)
        if op == "DepthwiseConv2dNative":  # [h, w, channels, 1]: scales along axis 2
            top = top[:, None]
    return onednn_values(codes, top)


def onednn_values(codes, top):
    """What qint8 codes declared with max `top` (per output channel, broadcast along the last
    axis) stand for in the onednn ops: code * top / 127."""
    return codes.astype(np.float64) * (np.asarray(top, np.float64) / 127.0)


# ---- kernels target ----

def symmetric_codes(weights, axis, pair_limited=False):
    """(qint8 codes in [-127, 127], float32 scale per channel along `axis`), symmetric; rounding
    keeps each channel's sum of rounding errors near zero.

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
    grid = weights / _along(scale, weights.ndim, axis) + 127.0
    codes = (round_keeping_sums(grid, axis, 254) - 127).astype(np.int8)
    return codes, scale.astype(np.float32)


def kernels_codes(op, weights, transpose_b=False):
    """(codes, per-channel scales) of a layer's weights as the Qg op takes them: conv HWIO,
    depthwise [kh, kw, C, mult], MatMul [K, N] (transposed first if transpose_b)."""
    if op == "MatMul":
        return symmetric_codes(weights.T if transpose_b else weights, 1, pair_limited=True)
    if op == "Conv2D":  # K runs over (kh, kw, C): the im2col row order of the kernel
        return symmetric_codes(weights, 3, pair_limited=True)
    kh, kw, c, mult = weights.shape
    codes, scales = symmetric_codes(weights.reshape(kh, kw, 1, c * mult), 3)
    return codes.reshape(kh, kw, c, mult), scales


def kernels_dequantized(op, weights, transpose_b=False):
    """The float weights the Qg op really multiplies by, in the float op's layout."""
    codes, scales = kernels_codes(op, weights, transpose_b)
    if op == "DepthwiseConv2dNative":
        kh, kw, c, mult = weights.shape
        return (codes.reshape(kh, kw, 1, c * mult) * scales.astype(np.float64)).reshape(weights.shape)
    values = codes * scales.astype(np.float64)
    return values.T if op == "MatMul" and transpose_b else values


# What each target's int8 conv/depthwise/matmul multiplies by, in the float op's layout.
DEQUANTIZERS = {"reference": reference_dequantized, "onednn": onednn_dequantized,
                "kernels": kernels_dequantized}
