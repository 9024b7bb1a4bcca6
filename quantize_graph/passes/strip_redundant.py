"""Removes Dequantize -> QuantizeV2 pairs that cancel, so chains of quantized ops stay 8-bit.

A QuantizeV2 that reads a Dequantize of the same type and mode reproduces the Dequantize's
input (the same 8-bit codes for the same float values), so its readers can read the
Dequantize's inputs directly. Range nodes left without readers are pruned later.
"""
from quantize_graph.graph.edit import copy_graph, graph_with_nodes, rewire_inputs
from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import split_input, tensor_name
from quantize_graph.passes.context import result


def strip_redundant_quantization(graph_def):
    graph_def = copy_graph(graph_def)
    index = GraphIndex(graph_def)
    mapping, removed = {}, set()
    for node in graph_def.node:
        if node.op != "QuantizeV2":
            continue
        src_name, port, _ = split_input(node.input[0])
        src = index.get(src_name)
        if (src is None or src.op != "Dequantize" or port != 0
                or src.attr["T"].type != node.attr["T"].type
                or src.attr["mode"].s != node.attr["mode"].s):
            continue
        for out_port in range(3):
            mapping[tensor_name(node.name, out_port)] = src.input[out_port]
        removed.add(node.name)
    out = graph_with_nodes(graph_def, [n for n in graph_def.node if n.name not in removed])
    rewire_inputs(out, mapping)
    return out


def count_cancelling_pairs(graph_def):
    """Dequantize -> QuantizeV2 pairs still in the graph (tests and reports use it)."""
    index = GraphIndex(graph_def)
    return sum(1 for n in graph_def.node if n.op == "QuantizeV2"
               and index.get(n.input[0]) is not None and index.get(n.input[0]).op == "Dequantize")


def run(graph_def, ctx):
    """The pass."""
    del ctx  # needs nothing beyond the graph
    return result(strip_redundant_quantization(graph_def))
