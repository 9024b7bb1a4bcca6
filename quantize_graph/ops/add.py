"""Add / AddV2 (residual connections): quantized only when fused, as the summand, into the conv
(+ BiasAdd) that produces one operand. onednn: QuantizedConv2DWithBiasSumAndReluAndRequantize
(see targets/onednn_residual.py); kernels: QgQuantizedConv2D's summand input
(targets/kernels.py). An Add that cannot be fused stays float."""
from quantize_graph.ops.common import is_float
from quantize_graph.ops.handlers import FUSED_INTO_PRODUCER, register


def supports_add(node):
    if not is_float(node):
        return False, "only float adds are quantized"
    return True, ""


register(["Add", "AddV2"], supports_add, onednn=FUSED_INTO_PRODUCER, kernels=FUSED_INTO_PRODUCER)
