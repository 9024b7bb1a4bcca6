"""Keeps only what the outputs need (and the declared inputs, so a graph keeps its feeds)."""
from quantize_graph.graph.edit import graph_with_nodes
from quantize_graph.graph.index import GraphIndex
from quantize_graph.passes.context import result


def prune(graph_def, output_node_names, keep=()):
    index = GraphIndex(graph_def)
    roots = [n for n in list(output_node_names) + list(keep) if n in index]
    needed = set(index.topological_order(roots))
    # Control-edge loops (NextIteration) are not followed by topological_order; keep their sources.
    return graph_with_nodes(graph_def, [n for n in graph_def.node if n.name in needed])


def run(graph_def, ctx):
    """The pass: what the outputs do not need goes, the inputs stay."""
    return result(prune(graph_def, ctx.outputs, keep=ctx.inputs))
