"""The Python API: quantize() plus load/save helpers."""
from quantize_graph.graph.io import load_graph_def, save_graph_def
from quantize_graph.pipeline import Options, run_pipeline


def quantize(graph_def, output_node_names, mode="eightbit", input_node_names=None, **options):
    """Returns the quantized GraphDef. `options` are the fields of pipeline.Options:
    bitdepth, strip_redundant_quantization, quantized_input_range, fallback_range,
    excluded_ops, excluded_nodes, target."""
    graph, _ = run_pipeline(graph_def, output_node_names, Options(mode=mode, **options),
                            input_names=input_node_names)
    return graph


def quantize_file(input_path, output_path, output_node_names, mode="eightbit", **kwargs):
    """Reads, quantizes and atomically writes a GraphDef file; returns the new GraphDef."""
    graph = quantize(load_graph_def(input_path), output_node_names, mode, **kwargs)
    save_graph_def(graph, output_path, input_path=input_path)
    return graph
