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
A MatMul that only float ops read returns float (logits keep full precision). Weight codes:
weight_schemes.kernels_codes.
"""
from quantize_graph.lowering import kernels as kernels_blocks
from quantize_graph.lowering.driver import FusedTarget, lower_patterns
from quantize_graph.weight_schemes import kernels_codes

# Lowered at a group's last member, so that a residual summand produced by another branch is
# already 8-bit when its Add is fused.
TARGET = FusedTarget("kernels", kernels_blocks.fuse_residuals, kernels_blocks.dequantize,
                     kernels_codes, anchor_at_tail=True)


def lower_kernels(graph_def, decision, fallback_range=None, ranges=None, bias_corrections=None):
    """(lowered graph, Decision with what stayed float): lowering/driver.py with this target's
    emitters (ops/*.py)."""
    return lower_patterns(graph_def, decision, TARGET, ranges, fallback_range, bias_corrections)
