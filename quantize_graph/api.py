"""The Python API: quantize() plus load/save helpers, and the SavedModel round trip."""
import dataclasses
import os
import sys

from quantize_graph.cpu_bf16 import warn_if_emulated
from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph.io import check_output_path, load_graph_def, save_graph_def
from quantize_graph.graph.model import load_model, node_names
from quantize_graph.graph.saved_model import save_saved_model
from quantize_graph.graph.signature import DEFAULT_KEY
from quantize_graph.pipeline import Options, run_pipeline
from quantize_graph.serving import for_serving, server_requirements


def make_options(mode, options):
    """pipeline.Options from keyword arguments; an unknown one is a QuantizeGraphError."""
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(Options)})
    if unknown:
        raise QuantizeGraphError("unknown option '%s'; options are %s" % (
            unknown[0], ", ".join(f.name for f in dataclasses.fields(Options) if f.name != "mode")))
    return Options(mode=mode, **options)


def quantize(graph_def, output_node_names, mode="eightbit", input_node_names=None, **options):
    """Returns the quantized GraphDef. `options` are the fields of pipeline.Options:
    bitdepth, strip_redundant_quantization, quantized_input_range, fallback_range,
    excluded_ops, excluded_nodes, target, bfloat16_fallback (mode may be "bfloat16"),
    calibration_inputs, ranges, and input_range=(min, max): without calibration data, the
    graph's batch-norm statistics give the ranges and input_range the input's."""
    graph, _ = run_pipeline(graph_def, output_node_names, make_options(mode, options),
                            input_names=input_node_names)
    warn_if_emulated(graph)
    return graph


def quantize_file(input_path, output_path, output_node_names, mode="eightbit", **kwargs):
    """Reads, quantizes and atomically writes a GraphDef file; returns the new GraphDef."""
    for what, path in (("input_path", input_path), ("output_path", output_path)):
        if not isinstance(path, (str, os.PathLike)):
            raise QuantizeGraphError("%s must be a path, got %r" % (what, path))
    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    check_output_path(output_path, input_path)  # before the work, as the CLI does
    graph = quantize(load_graph_def(input_path), output_node_names, mode, **kwargs)
    save_graph_def(graph, output_path, input_path=input_path)
    return graph


def quantize_saved_model(input_path, output_path, mode="eightbit", signature_def=DEFAULT_KEY,
                         input_node_names=None, output_node_names=None, **options):
    """Quantizes a SavedModel's signature (or a GraphDef's named nodes) into a new SavedModel
    directory `output_path` (e.g. <base>/2), written whole or not at all, with the same signature
    keys, dtypes and shapes. `calibration_inputs` may be keyed by signature input key. Warns on
    stderr when the server needs more than stock TensorFlow. Returns the quantized GraphDef."""
    model = load_model(input_path, signature_def, input_node_names, output_node_names, with_signature=True)
    inputs = node_names(model.inputs, "input")
    keys = dict(zip(model.inputs, inputs))
    if options.get("calibration_inputs"):
        options["calibration_inputs"] = {keys.get(k, k): v for k, v in options["calibration_inputs"].items()}
    graph, report = run_pipeline(model.graph_def, node_names(model.outputs, "output"),
                                 make_options(mode, options), input_names=inputs)
    save_saved_model(dataclasses.replace(model, graph_def=for_serving(graph, inputs)), output_path,
                     input_path=input_path)
    warn_if_emulated(graph)
    if mode == "eightbit":
        for warning in server_requirements(report.target):
            print("quantize_graph: warning: " + warning, file=sys.stderr)
    return graph
