"""BiasAdd: QuantizedBiasAdd (quint8 + quint8 -> qint32), then narrowed to 8 bits."""
from quantize_graph.ops.common import is_float, is_nhwc
from quantize_graph.ops.handlers import FUSED_INTO_PRODUCER, register


def supports_bias_add(node):
    if not is_float(node) or not is_nhwc(node):
        return False, "only float NHWC BiasAdd is quantized"
    return True, ""


def lower_bias_add_reference(ctx, node):
    (x, x_min, x_max), (b, b_min, b_max) = ctx.quantize_inputs(node, [0, 1])
    add = ctx.emit("QuantizedBiasAdd", node, "quantized_bias_add",
                   [x, b, x_min, x_max, b_min, b_max],
                   types={"T1": "quint8", "T2": "quint8", "out_type": "qint32"})
    ctx.finish_int32(node, add.name)


register(["BiasAdd", "BiasAddV1"], supports_bias_add, reference=lower_bias_add_reference,
         onednn=FUSED_INTO_PRODUCER, kernels=FUSED_INTO_PRODUCER)
