"""One loader for a model named on the command line: a GraphDef file or a SavedModel directory.

Either way the result is a ServedGraph: a frozen GraphDef with keyed inputs and outputs. For a
SavedModel the keys and tensors come from its signature; for a GraphDef the keys are the node
names given (--input_node_names, default the Placeholders; --output_node_names).
"""
import os

from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph.io import load_graph_def
from quantize_graph.graph.names import ensure_tensor_name_has_port, split_input
from quantize_graph.graph.saved_model import ServedGraph, is_saved_model, load_saved_model
from quantize_graph.graph.signature import DEFAULT_KEY, signature_from_graph
from quantize_graph.pipeline import check_graph


def load_model(path, signature_key=DEFAULT_KEY, input_names=None, output_names=None,
               with_signature=False):
    """A ServedGraph for `path`. A GraphDef gets a signature built from its float graph only
    when `with_signature` (it costs an import of the graph)."""
    if os.path.isdir(path):
        if (input_names or output_names) and is_saved_model(path):
            raise QuantizeGraphError("'%s' is a SavedModel: its signature '%s' names the inputs and "
                                     "outputs; drop --input_node_names/--output_node_names"
                                     % (path, signature_key))
        served = load_saved_model(path, signature_key)
        node_names(served.inputs, "input")
        node_names(served.outputs, "output")
        return served
    graph_def = load_graph_def(path)
    outputs, inputs = check_graph(graph_def, output_names or [], input_names)
    signature = signature_from_graph(graph_def, inputs, outputs) if with_signature else None
    return ServedGraph(graph_def, signature, {n: ensure_tensor_name_has_port(n) for n in inputs},
                       {n: ensure_tensor_name_has_port(n) for n in outputs})


def node_names(tensors, kind):
    """The node names of {key: tensor}, in its order; the pipeline keeps nodes by name, so each
    tensor must be its node's first output."""
    names = []
    for key, tensor in tensors.items():
        node, port, _ = split_input(tensor)
        if port != 0:
            raise QuantizeGraphError("signature %s '%s' is output %d of node '%s'; only a node's first "
                                     "output can be a signature tensor here" % (kind, key, port, node))
        names.append(node)
    return names
