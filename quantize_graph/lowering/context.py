"""What the planners and emitters work on: the float graph, its ranges, the nodes emitted so far
and the 8-bit form of each float tensor. One EmitContext per lowering; the pattern modules
(ops/*.py) and the targets' building blocks (lowering/<target>.py) only go through it: planning
reads it, emitting adds to it."""
import collections

import numpy as np
import tensorflow as tf

from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph.edit import NameAllocator
from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import tensor_name
from quantize_graph.graph.nodes import const_value, create_node, make_const, set_attr_dtype
from quantize_graph.graph.patterns import StaticShapes
from quantize_graph.passes.fold_batch_norms import out_channels

# A quantized tensor: its codes, the tensors holding its (min, max), its type, and the largest
# magnitude M it represents (scale M/255 for quint8, M/127 for qint8).
Quantized = collections.namedtuple("Quantized", ["tensor", "min", "max", "dtype", "magnitude"])

NEGATIVE_TOLERANCE = 1e-6  # relative: calibrated minimums this close to 0 count as 0


class EmitContext:

    def __init__(self, graph_def, quantized, quantize_weights, ranges, fallback_range=None,
                 bias_corrections=None):
        self.graph_def = graph_def
        self.index = GraphIndex(graph_def)
        self.shapes = StaticShapes(graph_def)
        self.quantized_nodes = frozenset(quantized)   # annotate's choice (read only)
        # The target's weight scheme: (op, float weights, transpose_b=False) -> (codes, scales).
        self.quantize_weights = quantize_weights
        self.ranges = ranges or {}
        self.fallback_range = fallback_range
        self.bias_corrections = bias_corrections or {}  # layer -> subtracted from its bias
        self.names = NameAllocator(graph_def)
        self.new_nodes = []
        self.tensors = {}        # float tensor name -> Quantized (its 8-bit form)
        self.offset_tensors = {}  # float tensor name -> OffsetQuantized (lowering/onednn_signed_input.py)
        self.produced = set()    # float tensor names whose value now comes from an int8 op
        self.replaced = set()    # original node names not copied to the output graph

    # ---- emitting ------------------------------------------------------------------------

    def emit(self, op, name, inputs, types=None):
        node = create_node(op, self.names(name), inputs)
        for attr, dtype in (types or {}).items():
            set_attr_dtype(node, attr, dtype)
        self.new_nodes.append(node)
        return node

    def add(self, node):
        """Adds a node built by the caller (its name chosen there)."""
        self.new_nodes.append(node)
        return node

    def const(self, name, value, dtype=tf.float32):
        node = make_const(self.names(name), np.asarray(value, dtype.as_numpy_dtype
                                                       if dtype not in (tf.qint8, tf.quint8) else None), dtype)
        self.new_nodes.append(node)
        return node.name

    def replace(self, names):
        self.replaced.update(names)

    def produce(self, name, node, dtype, magnitude):
        """Records that float tensor `name` is now node's int8 output (codes, min, max)."""
        self.tensors[name] = Quantized(node.name, tensor_name(node.name, 1),
                                       tensor_name(node.name, 2), dtype, magnitude)
        self.produced.add(name)

    # ---- reading the float graph ---------------------------------------------------------

    def range_of(self, tensor):
        """The calibrated (min, max) of a float tensor, else the fallback range, else None."""
        return self.ranges.get(tensor, self.fallback_range)

    def calibrated_range(self, name):
        """(min, max) of a tensor the lowering must freeze a range for."""
        rng = self.range_of(name)
        if rng is None:
            raise QuantizeGraphError("no calibrated range for tensor '%s'" % name)
        return rng

    def nonnegative(self, tensor):
        """Whether calibration found `tensor` >= 0 (what quint8 with zero at code 0 holds)."""
        rng = self.range_of(tensor)
        return rng is not None and rng[0] >= -NEGATIVE_TOLERANCE * max(abs(rng[1]), 1e-12)

    def only_float_readers(self, node):
        """True if no reader of `node` can run in 8 bits (e.g. a classifier's logits read by
        Squeeze/Softmax), so an int8 result would be dequantized right away."""
        readers = self.index.consumers.get(node.name, [])
        return all(r.name not in self.quantized_nodes for r, _ in readers)

    def layer_weights(self, group):
        """The float32 weights of a ConvGroup's head."""
        head = self.index.nodes[group.head]
        return const_value(self.index.node(head.input[1])).astype(np.float32)

    def layer_bias(self, group, weights):
        """The float32 bias of a ConvGroup (zero where it has no BiasAdd) minus the layer's
        bias correction (passes/bias_correction.py), if any."""
        head = self.index.nodes[group.head]
        if group.bias is not None:
            bias_node = self.index.nodes[group.bias]
            bias = const_value(self.index.node(bias_node.input[1])).astype(np.float32)
        else:
            bias = np.zeros([out_channels(head, weights)], np.float32)
        if head.name not in self.bias_corrections:
            return bias
        return (bias - self.bias_corrections[head.name]).astype(np.float32)
