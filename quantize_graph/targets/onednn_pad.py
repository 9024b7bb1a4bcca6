"""Zero padding in the onednn target: Pad runs on the quint8 codes.

Activations are quint8 with zero at code 0 (SCALED, no offset), so padding the codes with 0
pads the values with 0.0: exact, and the tensor stays int8 between, e.g., a Relu6 and the
stride-2 depthwise conv after it (MobileNet-v2) or a Relu and a max pool (ResNet-50).
"""
import tensorflow as tf

from quantize_graph.graph.nodes import copy_attr


def lower_pad(lowering, node):
    x = lowering._input(node.input[0])
    if x is None:
        return False
    pad = lowering._emit("Pad", node.name + "/eightbit", [x.tensor, node.input[1]], {"T": tf.quint8})
    if "Tpaddings" in node.attr:
        copy_attr(pad, "Tpaddings", node.attr["Tpaddings"])
    lowering._replace([node.name])
    # Pad has one output: the range tensors are the input's.
    lowering.quantized[node.name] = x._replace(tensor=pad.name)
    lowering.produced.add(node.name)
    return True
