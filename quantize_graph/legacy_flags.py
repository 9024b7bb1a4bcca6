"""The original module's flag values (`quantize_graph.FLAGS`), in a module of their own so
that the weight helpers (weights.py) read them without importing the pipeline."""
import types

# Read by quantize_weight_rounded and GraphRewriter. The CLI sets them from its absl flags;
# Python callers may assign them directly.
FLAGS = types.SimpleNamespace(bitdepth=8, strip_redundant_quantization=True,
                              quantized_input=False, quantized_input_min=0.0, quantized_input_max=1.0,
                              quantized_fallback_min=None, quantized_fallback_max=None,
                              print_nodes=False, mode="round", output_node_names="",
                              input="", output="")
