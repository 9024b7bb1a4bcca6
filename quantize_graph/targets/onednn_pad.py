"""Zero padding in the onednn target: a Pad before a VALID conv becomes the conv's SAME padding.

Keras writes a stride-2 conv as ZeroPadding2D + VALID conv (MobileNet-v2's four stride-2
depthwise convs). Where the explicit pads equal what SAME would add for that input size,
kernel and stride, the fused int8 conv reads the Pad's input with padding SAME: exact (zero is
code 0 of the quint8 input), and the Pad disappears. Running the Pad on the quint8 codes
instead was measured slow: TF's generic Pad kernel took 10 ms for MobileNet-v2's four at batch
1 (the float Pads: 1 ms). A Pad that does not fold stays float.
"""
import tensorflow as tf

from quantize_graph.graph.names import split_input
from quantize_graph.graph.nodes import const_value
from quantize_graph.graph.shapes import window_output_size


def folded_pad_input(lowering, head):
    """The Pad's input tensor when `head` (a VALID conv / depthwise conv) reads a zero Pad
    equal to SAME padding; None otherwise."""
    if head.op not in ("Conv2D", "DepthwiseConv2dNative") or head.attr["padding"].s != b"VALID":
        return None
    pad = lowering.index.get(head.input[0])
    if pad is None or pad.op != "Pad" or split_input(head.input[0])[1] != 0:
        return None
    amounts = lowering.index.get(pad.input[1])
    if amounts is None or amounts.op != "Const":
        return None
    amounts = const_value(amounts).astype(int)
    if amounts.shape != (4, 2) or amounts[0].any() or amounts[3].any():
        return None
    shape = _static_shape(lowering, pad.input[0])
    kernel = const_value(lowering.index.node(head.input[1])).shape
    strides = list(head.attr["strides"].list.i)
    dilations = list(head.attr["dilations"].list.i) if "dilations" in head.attr else [1] * 4
    if shape is None or any(d != 1 for d in dilations):
        return None
    for axis in (1, 2):
        size, k, s = shape[axis], kernel[axis - 1], strides[axis]
        if size is None:
            return None
        if window_output_size(size, k, s, 1, "SAME")[1:] != tuple(amounts[axis]):
            return None
    return pad.input[0]


def _static_shape(lowering, tensor):
    """Static shape of a tensor (None dims unknown), from importing the float graph once."""
    if getattr(lowering, "_graph_for_shapes", None) is None:
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.import_graph_def(lowering.graph_def, name="")
        lowering._graph_for_shapes = graph
    name, port, _ = split_input(tensor)
    shape = lowering._graph_for_shapes.get_tensor_by_name("%s:%d" % (name, port)).shape
    return None if shape.rank != 4 else shape.as_list()
