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
from quantize_graph.lowering import onednn as onednn_blocks, onednn_residual
from quantize_graph.lowering.driver import FusedTarget, lower_patterns
from quantize_graph.weight_schemes import onednn_conv_codes, onednn_matmul_codes


def quantize_weights(op, weights, transpose_b=False):
    """(qint8 codes, max to declare) of a conv/depthwise filter (per channel) or MatMul
    weights (per tensor), as the fused ops take them (weight_schemes.py)."""
    if op == "MatMul":
        return onednn_matmul_codes(weights, transpose_b)
    return onednn_conv_codes(weights, op)


TARGET = FusedTarget("onednn", onednn_residual.fuse_residuals, onednn_blocks.dequantize,
                     quantize_weights, anchor_at_tail=False)


def lower_onednn(graph_def, decision, fallback_range=None, ranges=None, bias_corrections=None):
    """(lowered graph, Decision with what stayed float): lowering/driver.py with this target's
    emitters (ops/*.py)."""
    return lower_patterns(graph_def, decision, TARGET, ranges, fallback_range, bias_corrections)
