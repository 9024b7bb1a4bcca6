"""Removes nodes that only matter for training or debugging: Identity, CheckNumerics,
StopGradient-like passthroughs, control-only NoOps and every control edge.

A TF2 frozen graph has a NoOp with control inputs from every weight's Identity; once the
Identities and control edges are gone, the weights are plain Consts again and later
passes (constant folding, batch-norm folding, weight quantization) can see them.
"""
from quantize_graph.graph.edit import copy_graph, drop_control_inputs, graph_with_nodes, rewire_inputs
from quantize_graph.graph.names import canonical_input

# Ops that pass their first input through unchanged at inference time.
PASSTHROUGH_OPS = {"Identity", "CheckNumerics", "StopGradient", "PreventGradient", "Snapshot"}
_REMOVABLE = {"NoOp", "Assert"}


def strip_training_nodes(graph_def, protected=()):
    """`protected`: node names (the user's inputs and outputs) that must keep their names."""
    protected = set(protected)
    graph_def = copy_graph(graph_def)
    for node in graph_def.node:
        drop_control_inputs(node)
    mapping = {}
    keep = []
    for node in graph_def.node:
        if node.name in protected:
            keep.append(node)
        elif node.op in PASSTHROUGH_OPS and node.input:
            mapping[node.name] = node.input[0]
        elif node.op in _REMOVABLE:
            continue
        else:
            keep.append(node)
    # Chains of Identities: resolve each mapping to its final source.
    for name in list(mapping):
        target = canonical_input(mapping[name])
        while target in mapping:  # a passthrough has one output, so only "name" (port 0) chains
            target = canonical_input(mapping[target])
        mapping[name] = target
    out = graph_with_nodes(graph_def, keep)
    rewire_inputs(out, mapping)
    return out
