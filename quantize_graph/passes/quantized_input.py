"""--quantized_input: the graph's float inputs become quint8 Placeholders with a fixed range.

Each input keeps its name (so feeds do not change) and is expanded by a Dequantize that the
strip-redundant pass then cancels against the first quantized op's QuantizeV2.
"""
import numpy as np
import tensorflow as tf

from quantize_graph.graph.edit import NameAllocator, copy_graph, rewire_inputs
from quantize_graph.graph.nodes import make_const, create_node, set_attr_dtype, set_attr_string
from quantize_graph.passes.context import result


def quantize_placeholders(graph_def, input_names, input_range, mode="MIN_FIRST"):
    g = copy_graph(graph_def)
    names = NameAllocator(g)
    mapping, new_nodes = {}, []
    for node in g.node:
        if node.name not in input_names or node.op != "Placeholder":
            continue
        if node.attr["dtype"].type != tf.float32.as_datatype_enum:
            continue
        set_attr_dtype(node, "dtype", tf.quint8)
        lo = make_const(names(node.name + "_quantized_min"), np.float32(input_range[0]))
        hi = make_const(names(node.name + "_quantized_max"), np.float32(input_range[1]))
        dq = create_node("Dequantize", names(node.name + "_dequantize"), [node.name, lo.name, hi.name])
        set_attr_dtype(dq, "T", tf.quint8)
        set_attr_string(dq, "mode", mode.encode())
        new_nodes.extend([lo, hi, dq])
        mapping[node.name] = dq.name
    rewire_inputs(g, mapping)  # before adding the Dequantizes, which must keep reading the input
    g.node.extend(new_nodes)
    return g


def run(graph_def, ctx):
    """The pass: the graph inputs become quint8 over --quantized_input's range."""
    return result(quantize_placeholders(graph_def, ctx.inputs, ctx.options.quantized_input_range))
