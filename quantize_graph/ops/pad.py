"""Pad (zero padding): onednn only, a plain Pad on the quint8 codes (zero is code 0 there)."""
from quantize_graph.ops.common import is_float
from quantize_graph.ops.registry import LOWERED_BY_TARGET, register


def supports_pad(node):
    if not is_float(node):
        return False, "only float Pad is quantized"
    return True, ""


register(["Pad"], supports_pad, onednn=LOWERED_BY_TARGET)
