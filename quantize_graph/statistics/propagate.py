"""Per-channel moments and ranges of every tensor, propagated from the batch norms' output
statistics (batch_norm.py) and the graph input's range, with no data.

Each tensor gets a TensorStats: per-channel mean and variance (for bias correction and for
linear layers without a batch norm after them) and a per-channel range [lo, hi] (what the
lowering freezes). A tensor the rules do not reach gets none, and the ops that need its
range stay float. The approximations, each stated where it is made:
- a batch norm's output is normal per channel, N(beta, gamma^2 var / (var + eps));
- a normal-like tensor's range is mean +- k std per channel, k a function of the tensor's depth
  (ranges.k_at_depth: early layers have heavier tails);
- linear layers see independent input channels and ignore padding;
- the two operands of an Add are independent;
- pools, Pad and spatial means keep their input's moments.
"""
import dataclasses

import numpy as np
import tensorflow as tf

from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import split_input
from quantize_graph.graph.nodes import const_value
from quantize_graph.graph.patterns import ACTIVATION_CAPS
from quantize_graph.statistics.normal import clipped_moments

_SAME_MOMENTS = {"MaxPool", "AvgPool", "Pad", "PadV2", "MirrorPad", "Mean", "Identity",
                 "Reshape", "Squeeze", "ExpandDims"}
_LINEAR = {"Conv2D", "DepthwiseConv2dNative", "MatMul"}


@dataclasses.dataclass(frozen=True)
class TensorStats:
    """Per-channel (last axis) mean, variance and range; length-1 arrays describe every
    channel alike."""
    mean: np.ndarray
    var: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @property
    def channels(self):
        return len(self.mean)

    def range(self):
        return float(np.min(self.lo)), float(np.max(self.hi))

    def broadcast(self, channels):
        if self.channels == channels:
            return self
        if self.channels != 1:
            raise ValueError("%d channels do not broadcast to %d" % (self.channels, channels))
        return TensorStats(*(np.repeat(a, channels) for a in (self.mean, self.var, self.lo, self.hi)))

    def collapsed(self):
        """One set of moments for all channels (a reshape that mixes them)."""
        mean = float(np.mean(self.mean))
        var = float(np.mean(self.var + self.mean ** 2) - mean ** 2)
        return TensorStats(np.array([mean]), np.array([max(var, 0.0)]),
                           np.array([np.min(self.lo)]), np.array([np.max(self.hi)]))


def normal_stats(mean, var, k, lo=-np.inf, hi=np.inf):
    """Stats of a normal-like tensor: range mean +- k std per channel, within [lo, hi]."""
    mean = np.asarray(mean, np.float64).reshape(-1)
    var = np.maximum(np.asarray(var, np.float64).reshape(-1), 0.0)
    std = np.sqrt(var)
    return TensorStats(mean, var, np.clip(mean - k * std, lo, hi), np.clip(mean + k * std, lo, hi))


def uniform_stats(lo, hi):
    """The graph input: every value in [lo, hi], moments of a uniform spread over it."""
    return TensorStats(np.array([(lo + hi) / 2.0]), np.array([(hi - lo) ** 2 / 12.0]),
                       np.array([float(lo)]), np.array([float(hi)]))


def propagate(graph_def, bn_moments, input_stats, k, shapes=None):
    """{tensor name: TensorStats} for the port-0 outputs the rules reach.

    bn_moments: {node name: batch_norm.ChannelMoments}; input_stats: {input node name:
    TensorStats}; k: range half-width in standard deviations, a number or a function of the
    tensor's depth (conv/depthwise/matmul layers on the longest path from an input).
    shapes: static_shapes(graph_def), when the caller already has them.
    """
    return _Propagation(graph_def, bn_moments, input_stats, k, shapes).run()


class _Propagation:

    def __init__(self, graph_def, bn_moments, input_stats, k, shapes=None):
        self.index = GraphIndex(graph_def)
        self.bn = bn_moments
        self.k_at_depth = k if callable(k) else (lambda depth: k)
        self.k = None  # the current node's
        self.depth = {}
        self.stats = dict(input_stats)
        self.shapes = static_shapes(graph_def) if shapes is None else shapes

    def run(self):
        for name in self.index.topological_order():
            if name in self.stats:
                continue
            node = self.index.nodes[name]
            self.depth[name] = max([self.depth.get(split_input(i)[0], 0) for i in node.input] or [0]) \
                + (1 if node.op in _LINEAR else 0)
            self.k = self.k_at_depth(self.depth[name])
            try:
                st = self._rule(node)
            except ValueError:
                st = None  # shapes that do not line up: no stats rather than wrong ones
            if name in self.bn and (st is None or self._fits(name, self.bn[name].mean)):
                m = self.bn[name]
                st = normal_stats(m.mean, m.var, self.k)
            if st is not None:
                self.stats[name] = st
        return self.stats

    def _fits(self, name, vector):
        channels = self._channels(name)
        return channels is None or len(vector) in (1, channels)

    # ---- helpers ---------------------------------------------------------------------------

    def _channels(self, name):
        shape = self.shapes.get(name)
        return shape[-1] if shape else None

    def _data_inputs(self, node):
        return [i for i in node.input if not i.startswith("^")]

    def _input_stats(self, inp):
        name, port, _ = split_input(inp)
        return self.stats.get(name) if port == 0 else None

    def _const(self, inp):
        src = self.index.get(inp)
        if src is None or src.op != "Const":
            return None
        return const_value(src)

    def _per_channel(self, c, channels):
        """A constant operand as a per-channel vector, or None if it is not one."""
        c = np.asarray(c, np.float64)
        if c.size == 1:
            return c.reshape([1])
        if channels is not None and c.shape[-1] == channels and c.size == channels:
            return c.reshape([channels])
        return None

    # ---- rules -----------------------------------------------------------------------------

    def _rule(self, node):
        op = node.op
        data = self._data_inputs(node)
        if op in _LINEAR:
            return self._linear(node, data)
        if op == "BiasAdd":
            x, b = self._input_stats(data[0]), self._const(data[1])
            return None if x is None or b is None else self._shifted(node, x, b)
        if op in ACTIVATION_CAPS:
            x, cap = self._input_stats(data[0]), ACTIVATION_CAPS[op]
            return None if x is None else _clipped(x, 0.0, np.inf if cap is None else cap)
        if op in ("Add", "AddV2", "Sub", "Mul"):
            return self._binary(node, data)
        if op in ("Concat", "ConcatV2"):
            return self._concat(node, data)
        if op in _SAME_MOMENTS:
            x = self._input_stats(data[0])
            if x is None:
                return None
            if op == "Pad":  # zero padding: 0 joins the range
                x = TensorStats(x.mean, x.var, np.minimum(x.lo, 0.0), np.maximum(x.hi, 0.0))
            # A reshape or reduction that moves the channel axis mixes the channels.
            same_axis = self._channels(node.name) == self._channels(split_input(data[0])[0])
            return x if same_axis and self._channels(node.name) is not None else x.collapsed()
        return None

    def _linear(self, node, data):
        """E[y] = W E[x] (+ b), Var[y] = sum W^2 Var[x]; or, where a batch norm follows, its
        statistics less the bias (they describe the data; the linear estimate does not)."""
        w = self._const(data[1])
        if w is None:
            return None
        w = w.astype(np.float64)
        from_bn = self._from_following_batch_norm(node)
        if from_bn is not None:
            return from_bn
        x = self._input_stats(data[0])
        if x is None:
            return None
        if node.op == "Conv2D":
            x = x.broadcast(w.shape[2])
            mean = np.einsum("hwio,i->o", w, x.mean)
            var = np.einsum("hwio,i->o", w * w, x.var)
        elif node.op == "DepthwiseConv2dNative":
            x = x.broadcast(w.shape[2])
            mean = np.einsum("hwcm,c->cm", w, x.mean).reshape(-1)
            var = np.einsum("hwcm,c->cm", w * w, x.var).reshape(-1)
        else:
            if node.attr["transpose_a"].b:
                return None
            if node.attr["transpose_b"].b:
                w = w.T
            x = x.broadcast(w.shape[0])
            mean, var = x.mean @ w, x.var @ (w * w)
        return normal_stats(mean, var, self.k)

    def _from_following_batch_norm(self, node):
        readers = self.index.data_consumers(node.name)
        if len(readers) != 1:
            return None
        reader, position = readers[0]
        if reader.op != "BiasAdd" or position != 0 or reader.name not in self.bn:
            return None
        b = self._const(reader.input[1])
        if b is None:
            return None
        m = self.bn[reader.name]
        return normal_stats(m.mean - b.astype(np.float64).reshape(-1), m.var, self.k)

    def _shifted(self, node, x, c):
        c = self._per_channel(c, self._channels(node.name))
        if c is None:
            return None
        if c.size > 1:
            x = x.broadcast(c.size)
        return TensorStats(x.mean + c, x.var, x.lo + c, x.hi + c)

    def _binary(self, node, data):
        if len(data) != 2:
            return None
        a, b = self._input_stats(data[0]), self._input_stats(data[1])
        ca, cb = self._const(data[0]), self._const(data[1])
        if node.op == "Mul":
            x, c = (a, cb) if cb is not None else (b, ca)
            if x is None or c is None:
                return None
            c = self._per_channel(c, self._channels(node.name))
            if c is None:
                return None
            x = x.broadcast(c.size) if c.size > 1 else x
            lo, hi = np.minimum(x.lo * c, x.hi * c), np.maximum(x.lo * c, x.hi * c)
            return TensorStats(x.mean * c, x.var * c * c, lo, hi)
        if cb is not None and a is not None:
            return self._shifted(node, a, cb if node.op != "Sub" else -np.asarray(cb, np.float64))
        if ca is not None and b is not None:
            if node.op == "Sub":  # c - x
                neg = TensorStats(-b.mean, b.var, -b.hi, -b.lo)
                return self._shifted(node, neg, ca)
            return self._shifted(node, b, ca)
        if a is None or b is None:
            return None
        channels = max(a.channels, b.channels)
        a, b = a.broadcast(channels), b.broadcast(channels)
        if node.op == "Sub":
            b = TensorStats(-b.mean, b.var, -b.hi, -b.lo)
        # The operands are taken as independent: variances add.
        st = normal_stats(a.mean + b.mean, a.var + b.var, self.k)
        return TensorStats(st.mean, st.var, np.maximum(st.lo, a.lo + b.lo),
                           np.minimum(st.hi, a.hi + b.hi))

    def _concat(self, node, data):
        axis_in = data[-1] if node.op == "ConcatV2" else data[0]
        values = data[:-1] if node.op == "ConcatV2" else data[1:]
        axis = self._const(axis_in)
        parts = [self._input_stats(v) for v in values]
        if axis is None or any(p is None for p in parts):
            return None
        shape = self.shapes.get(node.name)
        rank = len(shape) if shape else None
        axis = int(axis)
        if rank is not None and axis in (-1, rank - 1):
            counts = [self._channels(split_input(v)[0]) for v in values]
            if any(c is None for c in counts):
                return None
            return _joined([p.broadcast(c) for p, c in zip(parts, counts)])
        # Joined along another axis: each channel is a mixture of the parts' channels.
        return _joined([p.collapsed() for p in parts]).collapsed()


def _joined(parts):
    """The parts' channels side by side."""
    return TensorStats(*(np.concatenate([getattr(p, f) for p in parts])
                         for f in ("mean", "var", "lo", "hi")))


def _clipped(x, lo, hi):
    """A Relu/Relu6 of x: clipped-normal moments, the range clipped."""
    mean, var = clipped_moments(x.mean, x.var, lo, hi)
    return TensorStats(mean, var, np.clip(x.lo, lo, hi), np.clip(x.hi, lo, hi))


def static_shapes(graph_def):
    """{node name: [dims] of output 0, None where unknown}, from TF's shape inference."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    shapes = {}
    for op in graph.get_operations():
        if op.outputs:
            shape = op.outputs[0].shape
            shapes[op.name] = shape.as_list() if shape.rank is not None else None
    return shapes
