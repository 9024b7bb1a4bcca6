"""Evaluates every subgraph that depends only on constants and replaces it by Const nodes.

Batch-norm folding needs this: a TF-slim or Keras graph computes the per-channel scale as
gamma * rsqrt(variance + epsilon) at run time; after folding it is one Const.
"""
import tensorflow as tf
from tensorflow.python.framework import op_def_registry

from quantize_graph.graph.edit import copy_graph, graph_with_nodes, rewire_inputs
from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import split_input, tensor_name
from quantize_graph.graph.nodes import make_const
from quantize_graph.runner import run_graph

_NEVER_FOLD = {"Placeholder", "PlaceholderWithDefault", "PlaceholderV2", "VariableV2",
               "VarHandleOp", "ReadVariableOp", "Enter", "Exit", "Merge", "Switch",
               "NextIteration", "LoopCond", "FakeQuantWithMinMaxVars",
               "FakeQuantWithMinMaxVarsPerChannel", "FakeQuantWithMinMaxArgs"}


def _foldable_op(op):
    if op in _NEVER_FOLD:
        return False
    op_def = op_def_registry.get(op)
    return op_def is not None and not op_def.is_stateful


def constant_nodes(graph_def):
    """Names of nodes whose value is fixed: Consts and stateless ops fed only by them."""
    index = GraphIndex(graph_def)
    const = set()
    for name in index.topological_order():
        node = index.nodes[name]
        if node.op == "Const":
            const.add(name)
        elif node.input and _foldable_op(node.op) and all(
                split_input(i)[0] in const for i in node.input):
            const.add(name)
    return const


def fold_constants(graph_def, protected=()):
    """`protected` node names keep their op (the user's inputs and outputs)."""
    graph_def = copy_graph(graph_def)
    index = GraphIndex(graph_def)
    const = constant_nodes(graph_def)
    # The frontier: computed constants that a non-constant node (or the user) reads.
    wanted = {}  # node name -> set of ports
    for node in graph_def.node:
        if node.name in const:
            continue
        for inp in node.input:
            src, port, control = split_input(inp)
            if not control and src in const and index.nodes[src].op != "Const":
                wanted.setdefault(src, set()).add(port)
    for name in protected:
        if name in const and index.nodes[name].op != "Const":
            wanted.setdefault(name, set()).add(0)
    if not wanted:
        return graph_def
    fetches = [(name, port) for name, ports in sorted(wanted.items()) for port in sorted(ports)]
    values = run_graph(graph_def, [tensor_name(n, p) for n, p in fetches], {})
    new_consts, mapping = {}, {}
    for (name, port), value in zip(fetches, values):
        const_name = name if port == 0 else "%s/folded_port_%d" % (name, port)
        dtype = tf.as_dtype(value.dtype) if value.dtype != object else tf.string
        new_consts[const_name] = make_const(const_name, value, dtype)
        if port != 0:
            mapping[tensor_name(name, port)] = const_name
    nodes = []
    for node in graph_def.node:
        if node.name in new_consts:
            nodes.append(new_consts.pop(node.name))
        else:
            nodes.append(node)
    nodes.extend(new_consts.values())
    out = graph_with_nodes(graph_def, nodes)
    rewire_inputs(out, mapping)
    return out
