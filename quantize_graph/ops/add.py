"""Add / AddV2: a residual add is quantized only when the kernels target fuses it, as the
summand, into the conv (+ BiasAdd) that produces one of its inputs."""
from quantize_graph.ops.common import is_float
from quantize_graph.ops.registry import FUSED_INTO_PRODUCER, register


def supports_add(node):
    if not is_float(node):
        return False, "only float adds are quantized"
    return True, ""


register(["Add", "AddV2"], supports_add, kernels=FUSED_INTO_PRODUCER)
