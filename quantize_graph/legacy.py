"""The original tensorflow/tools/quantization/quantize_graph.py module API, on our pipeline.

Scripts written against the 2016 module keep working: GraphRewriter, the node helpers,
the weight helpers and FLAGS.bitdepth have the same arguments, results and errors.
"""
from quantize_graph.graph.names import (ensure_tensor_name_has_port, node_name_from_input,  # noqa: F401
                                        unique_node_name_from_input)
from quantize_graph.graph.nodes import (copy_attr, create_constant_node, create_node,  # noqa: F401
                                        set_attr_bool, set_attr_dtype, set_attr_float, set_attr_int,
                                        set_attr_int_list, set_attr_shape, set_attr_string,
                                        set_attr_tensor)
from quantize_graph.legacy_flags import FLAGS
from quantize_graph.passes.strip_redundant import strip_redundant_quantization
from quantize_graph.pipeline import MODES, Options, run_pipeline
from quantize_graph.weights import quantize_array, quantize_weight_eightbit, quantize_weight_rounded  # noqa: F401

__all__ = ["GraphRewriter", "FLAGS", "create_node", "create_constant_node", "copy_attr",
           "set_attr_dtype", "set_attr_shape", "set_attr_tensor", "set_attr_string",
           "set_attr_int_list", "set_attr_bool", "set_attr_int", "set_attr_float",
           "node_name_from_input", "unique_node_name_from_input", "ensure_tensor_name_has_port",
           "quantize_array", "quantize_weight_eightbit", "quantize_weight_rounded"]

class GraphRewriter:
    """Takes a float graph and rewrites it in quantized form."""

    def __init__(self, input_graph, mode, quantized_input_range, fallback_quantization_range=None):
        self.input_graph = input_graph
        self.nodes_map = self.create_nodes_map(input_graph)
        self.output_graph = None
        self.mode = mode
        if quantized_input_range:
            self.input_range = (quantized_input_range[0], quantized_input_range[1])
            if self.input_range[0] >= self.input_range[1]:
                raise ValueError("Invalid quantized_input_range: [%s,%s]" % self.input_range)
            if self.mode != "eightbit":
                raise ValueError("quantized_input_range can only be specified in eightbit mode")
        else:
            self.input_range = None
        if fallback_quantization_range:
            self.fallback_quantization_range = [fallback_quantization_range[0],
                                                fallback_quantization_range[1]]
            if self.fallback_quantization_range[0] >= self.fallback_quantization_range[1]:
                raise ValueError("Invalid fallback_quantization_range: [%s,%s]"
                                 % tuple(self.fallback_quantization_range))
            if self.mode != "eightbit":
                raise ValueError("fallback_quantization_range can only be specified in eightbit mode")
        else:
            self.fallback_quantization_range = None

    def create_nodes_map(self, graph):
        """Builds a mapping of node names to their defs from the graph."""
        nodes_map = {}
        for node in graph.node:
            if node.name not in nodes_map:
                nodes_map[node.name] = node
            else:
                raise ValueError("Duplicate node names detected.")
        return nodes_map

    def rewrite(self, output_node_names):
        """Returns the rewritten GraphDef for the given output node names."""
        if self.mode not in MODES or self.mode == "test":
            raise ValueError("Unsupported mode: %s" % self.mode)
        options = Options(
            mode=self.mode, bitdepth=FLAGS.bitdepth,
            strip_redundant_quantization=FLAGS.strip_redundant_quantization,
            quantized_input_range=self.input_range,
            fallback_range=tuple(self.fallback_quantization_range)
            if self.fallback_quantization_range else None,
            # The original's graphs: its legacy ops, constant inputs quantized up front.
            target="reference", fold_constants=False)
        self.output_graph, _ = run_pipeline(self.input_graph, output_node_names, options)
        return self.output_graph

    def remove_redundant_quantization(self, old_graph):
        """Removes Dequantize -> QuantizeV2 pairs that cancel each other out."""
        return strip_redundant_quantization(old_graph)
