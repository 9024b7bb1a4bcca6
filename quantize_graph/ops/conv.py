"""Conv2D: QuantizedConv2D (quint8 x quint8 -> qint32), then narrowed to 8 bits."""
from quantize_graph.graph.nodes import copy_attr
from quantize_graph.ops.common import all_ones, is_float, is_nhwc
from quantize_graph.ops.handlers import LOWERED_BY_TARGET, register


def supports_conv2d(node):
    if not is_float(node) or not is_nhwc(node):
        return False, "only float NHWC convolutions are quantized"
    if node.attr["padding"].s not in (b"SAME", b"VALID"):
        return False, "explicit padding is not supported by QuantizedConv2D"
    if "dilations" in node.attr and not all_ones(node.attr["dilations"].list.i):
        return False, "dilated convolutions are not supported by QuantizedConv2D"
    return True, ""


def lower_conv2d_reference(ctx, node):
    [(x, x_min, x_max)] = ctx.quantize_inputs(node, [0])
    w, w_min, w_max, channel_scale = ctx.quantize_weights(node, axis=3)
    conv = ctx.emit("QuantizedConv2D", node, "quantized_conv",
                    [x, w, x_min, x_max, w_min, w_max],
                    types={"Tinput": "quint8", "Tfilter": "quint8", "out_type": "qint32"})
    for attr in ("strides", "padding", "dilations"):
        if attr in node.attr:
            copy_attr(conv, attr, node.attr[attr])
    ctx.finish_int32(node, conv.name, channel_scale)


register(["Conv2D"], supports_conv2d, reference=lower_conv2d_reference, onednn=LOWERED_BY_TARGET,
         kernels=LOWERED_BY_TARGET)
