"""The `weights` and `weights_rounded` modes: only the stored weights change; compute stays float."""
import tensorflow as tf

from quantize_graph.graph.edit import graph_with_nodes
from quantize_graph.graph.nodes import const_value
from quantize_graph.weights import quantize_weight_eightbit, quantize_weight_rounded

MIN_WEIGHT_ELEMENTS = 16  # smaller constants (shapes, scalars) gain nothing from 8 bits


def is_float_weight(node):
    return (node.op == "Const" and node.attr["dtype"].type == tf.float32.as_datatype_enum
            and const_value(node).size >= MIN_WEIGHT_ELEMENTS)


def quantize_weights(graph_def):
    """Float weights stored as quint8 + min/max, expanded by a Dequantize at run time."""
    nodes = []
    for node in graph_def.node:
        nodes.extend(quantize_weight_eightbit(node, "MIN_FIRST") if is_float_weight(node) else [node])
    return graph_with_nodes(graph_def, nodes)


def round_weights(graph_def, bitdepth):
    """Float weights rounded to 2^bitdepth levels and stored as float (they compress well)."""
    nodes = []
    for node in graph_def.node:
        nodes.extend(quantize_weight_rounded(node, bitdepth) if is_float_weight(node) else [node])
    return graph_with_nodes(graph_def, nodes)

