"""DepthwiseConv2dNative: no legacy quantized form; the onednn target fuses it with its
BiasAdd and Relu/Relu6 into QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize."""
from quantize_graph.ops.common import all_ones, is_float, is_nhwc
from quantize_graph.ops.handlers import LOWERED_BY_TARGET, register


def supports_depthwise(node):
    if not is_float(node) or not is_nhwc(node):
        return False, "only float NHWC depthwise convolutions are quantized"
    if node.attr["padding"].s not in (b"SAME", b"VALID"):
        return False, "explicit padding is not supported by the int8 depthwise conv"
    if "dilations" in node.attr and not all_ones(node.attr["dilations"].list.i):
        return False, "dilated depthwise convolutions are not supported"
    return True, ""


register(["DepthwiseConv2dNative"], supports_depthwise, onednn=LOWERED_BY_TARGET,
         kernels=LOWERED_BY_TARGET)
