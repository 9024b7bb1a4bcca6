"""Small graph-editing helpers shared by the passes: rewiring, copying, unique names."""
from tensorflow.core.framework import graph_pb2

from quantize_graph.graph.names import canonical_input, split_input, tensor_name


def copy_graph(graph_def):
    out = graph_pb2.GraphDef()
    out.CopyFrom(graph_def)
    return out


def graph_with_nodes(template, nodes):
    """A GraphDef with `template`'s versions and library but the given nodes."""
    out = graph_pb2.GraphDef()
    out.versions.CopyFrom(template.versions)
    if template.HasField("library"):
        out.library.CopyFrom(template.library)
    out.node.extend(nodes)
    return out


def rewire_inputs(graph_def, mapping):
    """Replaces every input equal to a key of `mapping` ("node" or "node:port") by its value.

    Keys are compared in canonical form ("a:0" == "a"); control inputs "^a" are mapped
    when the mapping has "^a".
    """
    canon = {canonical_input(k): v for k, v in mapping.items()}
    for node in graph_def.node:
        for i, inp in enumerate(node.input):
            new = canon.get(canonical_input(inp))
            if new is not None:
                node.input[i] = new


def drop_control_inputs(node):
    data = [i for i in node.input if not i.startswith("^")]
    del node.input[:]
    node.input.extend(data)


def data_inputs(node):
    return [i for i in node.input if not i.startswith("^")]


class NameAllocator:
    """Hands out node names that do not clash with the graph's or with earlier ones."""

    def __init__(self, graph_def):
        self.used = {n.name for n in graph_def.node}

    def __call__(self, base):
        name, k = base, 1
        while name in self.used:
            name = "%s_%d" % (base, k)
            k += 1
        self.used.add(name)
        return name


def output_tensor(node_name, port):
    return tensor_name(node_name, port)


def input_port(inp):
    return split_input(inp)[1]
