"""The `onednn` target: stock TensorFlow's fused oneDNN int8 kernels, with frozen ranges.

Facts this rests on are measured in docs/onednn_notes.md. In short:
- activations are quint8 with zero at 0 and scale max/255 (the kernels take no offset), so
  only tensors that calibration found non-negative (after Relu/Relu6, pools and concats of
  those) are quantized; an op whose input can be negative stays float;
- conv weights are qint8 symmetric per output channel, scaled so that adjacent input-channel
  pairs never overflow: on CPUs without VNNI oneDNN sums such pairs in saturating int16
  (pair_limit); depthwise weights use plain 8 bits; MatMul weights are per tensor (the kernel
  rejects per-channel ranges), with the same pair limit;
- Conv2D + BiasAdd + Relu/Relu6 -> QuantizedConv2DWithBiasAndReluAndRequantize (Relu6 by
  saturating at an output range of 6); without an activation QuantizedConv2DWithBiasAnd-
  Requantize (qint8 out); depthwise only with an activation; MatMul + BiasAdd + Relu ->
  QuantizedMatMulWithBiasAndReluAndRequantize, and without one
  QuantizedMatMulWithBiasAndDequantize (float out, for logits);
- MaxPool, AvgPool, Concat/ConcatV2 (QuantizedConcatV2 unifies input ranges), Reshape stay 8-bit;
- QuantizeV2 (SCALED, HALF_TO_EVEN) where data enters, Dequantize (SCALED) where a float op reads.

Lowered by lowering/driver.py: the plans and emitters are in ops/<pattern>.py, the building
blocks in lowering/onednn.py, onednn_residual.py and onednn_signed_input.py; this module holds
the weight scheme and the target's FusedTarget.
"""
import numpy as np

from quantize_graph.lowering import onednn as onednn_blocks, onednn_residual
from quantize_graph.lowering.driver import FusedTarget, lower_patterns
from quantize_graph.passes.weights import round_keeping_sums


def quantize_weights(op, weights, transpose_b=False):
    """(qint8 codes, max to declare) of a conv/depthwise filter (per channel) or MatMul
    weights (per tensor), as the fused ops take them."""
    if op == "MatMul":
        return _quantize_matmul_weights(weights, transpose_b)
    return _quantize_conv_weights(weights, op)


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


def _quantize_conv_weights(weights, op):
    """(qint8 codes, per-channel max to declare) for a conv or depthwise filter."""
    axis = 3 if op == "Conv2D" else 2
    other = tuple(a for a in range(weights.ndim) if a != axis)
    if op == "Conv2D":  # pairs of input channels (axis 2) saturate; depthwise has no pairs
        # Sum-keeping rounding moves a code by up to one step, so a pair of codes may grow by
        # 2: the largest same-sign pair maps to 126 and stays <= 128 after rounding.
        scale = weight_scale(weights, 2, other, 126.0)
    else:
        scale = np.abs(weights).max(axis=other).astype(np.float64) / 127.0
        scale = np.where(scale > 0, scale, 1e-8)
    shape = [1] * weights.ndim
    shape[axis] = -1
    grid = weights / scale.reshape(shape) + 127   # 0 .. 254
    codes = (round_keeping_sums(grid, axis, 254) - 127).astype(np.int8)
    # The kernel's scale is max_filter / 127.
    return codes, (scale * 127.0).astype(np.float32)


def _quantize_matmul_weights(weights, transpose_b):
    """(qint8 codes, max to declare): per tensor, with the same pair limit along K."""
    k_axis = 1 if transpose_b else 0
    # Plain rounding moves each code by at most 1/2: a pair at 127 stays <= 128.
    scale = float(weight_scale(weights, k_axis, tuple(range(weights.ndim)), 127.0))
    return np.clip(np.round(weights / scale), -127, 127).astype(np.int8), scale * 127.0


def dequantized_weights(op, weights, transpose_b=False):
    """The float weights the int8 op really multiplies by (codes times their scale): what
    bias correction compares the float weights with."""
    if op == "MatMul":
        codes, top = _quantize_matmul_weights(weights, transpose_b)
    else:
        codes, top = _quantize_conv_weights(weights, op)
        if op == "DepthwiseConv2dNative":  # [h, w, channels, 1]: scales along axis 2
            top = top[:, None]
    return codes.astype(np.float64) * (np.asarray(top, np.float64) / 127.0)


TARGET = FusedTarget("onednn", onednn_residual.fuse_residuals, onednn_blocks.dequantize,
                     quantize_weights, anchor_at_tail=False)


def lower_onednn(graph_def, decision, fallback_range=None, ranges=None, bias_corrections=None):
    """(lowered graph, Decision with what stayed float): lowering/driver.py with this target's
    emitters (ops/*.py)."""
    return lower_patterns(graph_def, decision, TARGET, ranges, fallback_range, bias_corrections)
