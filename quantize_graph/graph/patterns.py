"""The patterns the 8-bit targets lower, found once for every reader: lowering, range
equalization, bias correction, the per-layer report.

`conv_groups(index, quantized)` and `single_group(node)` group the quantized nodes of a graph
into typed, immutable groups:
- ConvGroup: a conv / depthwise conv / matmul with Const weights, the BiasAdd (Const bias) and
  the Relu/Relu6 that only it feeds; each link is the sole reader of the previous node, reads
  it at input 0, port 0, and is itself quantized. A Pad before a VALID conv equal to SAME
  padding is recorded as `pad` (the fused convs take the Pad's input with padding SAME).
- PoolGroup, ConcatGroup, ReshapeGroup: one node each;
- Unmatched: any other quantized node (a BiasAdd or Relu no conv feeds, an Add, ...).

A residual Add is matched per ConvGroup by `residual_candidate` (the Add its tail feeds, the
other operand, the Relu/Relu6 after the Add); whether a target fuses it is the target's
choice (its plan), since the targets' kernels differ in what they accept.
"""
import dataclasses
from typing import Optional, Tuple

import tensorflow as tf

from quantize_graph.graph.names import canonical_input, split_input
from quantize_graph.graph.nodes import const_value
from quantize_graph.graph.shapes import window_output_size

# What each activation keeps of its input: [0, cap], cap None for unbounded. The one table of
# activations every target, pass and report reads.
ACTIVATION_CAPS = {"Relu": None, "Relu6": 6.0}
HEAD_OPS = ("Conv2D", "DepthwiseConv2dNative", "MatMul")
BIAS_OPS = ("BiasAdd", "BiasAddV1")
ADD_OPS = ("Add", "AddV2")
POOL_OPS = ("MaxPool", "AvgPool")
CONCAT_OPS = ("Concat", "ConcatV2")


def kept_range(activation_op):
    """(0.0, cap or None) that Relu/Relu6 keeps of its input; None for other ops."""
    if activation_op not in ACTIVATION_CAPS:
        return None
    return 0.0, ACTIVATION_CAPS[activation_op]


@dataclasses.dataclass(frozen=True)
class ConvGroup:
    head: str                          # Conv2D / DepthwiseConv2dNative / MatMul
    op: str                            # the head's op
    bias: Optional[str] = None         # BiasAdd
    activation: Optional[str] = None   # Relu/Relu6: after the bias, or after the residual Add
    residual_add: Optional[str] = None
    summand: Optional[str] = None      # the Add's other input, as the Add reads it
    pad: Optional[str] = None          # the folded Pad's input tensor, see foldable_pad

    @property
    def members(self):
        """The fused nodes, in data order."""
        return tuple(m for m in (self.head, self.bias, self.residual_add, self.activation) if m)

    @property
    def tail(self):
        """The node whose result leaves the group."""
        return self.members[-1]


@dataclasses.dataclass(frozen=True)
class PoolGroup:
    node: str

    @property
    def members(self):
        return (self.node,)


@dataclasses.dataclass(frozen=True)
class ConcatGroup:
    node: str
    axis: str                          # the axis input
    values: Tuple[str, ...]            # the value inputs

    @property
    def members(self):
        return (self.node,)


@dataclasses.dataclass(frozen=True)
class ReshapeGroup:
    node: str

    @property
    def members(self):
        return (self.node,)


@dataclasses.dataclass(frozen=True)
class Unmatched:
    node: str

    @property
    def members(self):
        return (self.node,)


def conv_groups(index, quantized, shapes=None):
    """The ConvGroups among the `quantized` node names (index: a GraphIndex), by head name.
    `shapes` (a StaticShapes of the graph) is needed to find a foldable Pad: the lowering
    gives it; the passes and the report, which do not read `pad`, need not."""
    return [g for g in (_conv_group(index, n, quantized, shapes) for n in sorted(quantized)) if g]


def single_group(node):
    """The one-node group of a quantized node no ConvGroup holds."""
    if node.op in POOL_OPS:
        return PoolGroup(node.name)
    if node.op in CONCAT_OPS:
        inputs = [i for i in node.input if not i.startswith("^")]
        axis, values = (inputs[0], inputs[1:]) if node.op == "Concat" else (inputs[-1], inputs[:-1])
        return ConcatGroup(node.name, axis, tuple(values))
    if node.op == "Reshape":
        return ReshapeGroup(node.name)
    return Unmatched(node.name)


def _conv_group(index, name, quantized, shapes):
    node = index.nodes[name]
    if node.op not in HEAD_OPS or not is_const(index, node.input[1]):
        return None
    bias = activation = None
    tail = node
    reader = sole_reader(index, tail, quantized)
    if reader is not None and reader.op in BIAS_OPS and is_const(index, reader.input[1]):
        bias, tail = reader.name, reader
        reader = sole_reader(index, tail, quantized)
    if reader is not None and reader.op in ACTIVATION_CAPS:
        activation = reader.name
    pad = foldable_pad(index, node, shapes) if shapes is not None else None
    return ConvGroup(name, node.op, bias, activation, pad=pad)


def residual_candidate(index, quantized, group):
    """`group` extended by the residual Add its tail feeds: a Conv2D group with no activation
    whose result is one of the two operands of a quantized Add (the other, different, is the
    summand), with the Add's quantized Relu/Relu6, if any. None if there is no such Add."""
    if group.op != "Conv2D" or group.activation is not None:
        return None
    tail = index.nodes[group.tail]
    add = sole_reader(index, tail, quantized, any_position=True)
    if add is None or add.op not in ADD_OPS:
        return None
    operands = [i for i in add.input if not i.startswith("^")]
    if len(operands) != 2 or canonical_input(operands[0]) == canonical_input(operands[1]):
        return None
    mine = [i for i in operands if canonical_input(i) == tail.name]
    if len(mine) != 1:
        return None
    summand = operands[1] if mine[0] == operands[0] else operands[0]
    if index.get(summand) is None:
        return None
    act = sole_reader(index, add, quantized)
    activation = act.name if act is not None and act.op in ACTIVATION_CAPS else None
    return dataclasses.replace(group, residual_add=add.name, summand=summand, activation=activation)


def sole_reader(index, node, quantized, any_position=False):
    """The one node that reads `node` (port 0), if it is quantized; at input 0 unless
    `any_position` (an Add may read it second)."""
    readers = index.consumers.get(node.name, [])
    if len(readers) != 1 or readers[0][0].name not in quantized:
        return None
    reader, position = readers[0]
    if split_input(reader.input[position])[1] != 0 or (position != 0 and not any_position):
        return None
    return reader


def is_const(index, inp):
    src = index.get(inp)
    return src is not None and src.op == "Const"


def foldable_pad(index, head, shapes):
    """The Pad's input tensor when `head` (a VALID conv / depthwise conv) reads a zero Pad
    equal to SAME padding; None otherwise.

    Keras writes a stride-2 conv as ZeroPadding2D + VALID conv (MobileNet-v2's four stride-2
    depthwise convs). The fused int8 convs read the Pad's input with padding SAME instead:
    exact (zero is a code of the 8-bit input), and the Pad disappears. Running the Pad on the
    codes was measured slow: TF's generic Pad kernel took 10 ms for MobileNet-v2's four at
    batch 1 (the float Pads: 1 ms)."""
    if head.op not in ("Conv2D", "DepthwiseConv2dNative") or head.attr["padding"].s != b"VALID":
        return None
    pad = index.get(head.input[0])
    if pad is None or pad.op != "Pad" or split_input(head.input[0])[1] != 0:
        return None
    amounts = index.get(pad.input[1])
    if amounts is None or amounts.op != "Const":
        return None
    amounts = const_value(amounts).astype(int)
    if amounts.shape != (4, 2) or amounts[0].any() or amounts[3].any():
        return None
    shape = shapes.of(pad.input[0])
    kernel = const_value(index.node(head.input[1])).shape
    strides = list(head.attr["strides"].list.i)
    dilations = list(head.attr["dilations"].list.i) if "dilations" in head.attr else [1] * 4
    if shape is None or any(d != 1 for d in dilations):
        return None
    for axis in (1, 2):
        size, k, s = shape[axis], kernel[axis - 1], strides[axis]
        if size is None:
            return None
        if window_output_size(size, k, s, 1, "SAME")[1:] != tuple(amounts[axis]):
            return None
    return pad.input[0]


class StaticShapes:
    """Static 4-D shapes of a graph's tensors (None dims unknown), from importing the graph
    once, on the first question."""

    def __init__(self, graph_def):
        self.graph_def = graph_def
        self._graph = None

    def of(self, tensor):
        if self._graph is None:
            self._graph = tf.Graph()
            with self._graph.as_default():
                tf.compat.v1.import_graph_def(self.graph_def, name="")
        name, port, _ = split_input(tensor)
        shape = self._graph.get_tensor_by_name("%s:%d" % (name, port)).shape
        return None if shape.rank != 4 else shape.as_list()
