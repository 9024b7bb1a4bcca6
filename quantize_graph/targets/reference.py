"""The `reference` target: the stock legacy quantized ops, as the original tool produced.

Every quantized op reads quint8 tensors made by QuantizeV2 (activations) or stored as
quint8 Consts (weights); int32 results are narrowed back to quint8 with
RequantizationRange + Requantize; every op ends in a Dequantize that carries the original
node's name, so float readers are unaffected. Dequantize -> QuantizeV2 pairs between two
quantized ops are removed afterwards by passes/strip_redundant.py.

Ranges, first that applies: a FakeQuant node next to the tensor (quantization-aware
training); calibrated ranges (frozen as constants); the fallback range; else measured at run
time (Min/Max reductions, RequantizationRange).
"""
import numpy as np
import tensorflow as tf

from quantize_graph.graph.edit import NameAllocator, graph_with_nodes
from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import canonical_input, split_input, tensor_name, unique_node_name_from_input
from quantize_graph.graph.nodes import (const_value, create_node, make_const, set_attr_bool,
                                        set_attr_dtype, set_attr_string)
from quantize_graph.graph.patterns import ACTIVATION_CAPS, kept_range
from quantize_graph.ops.registry import handler
from quantize_graph.weight_schemes import nudge_range, quantize_channel_scaled, quantize_nudged

_FAKE_QUANT = {"FakeQuantWithMinMaxVars", "FakeQuantWithMinMaxArgs"}
# The part of its input's range an activation keeps: (low, high or None for unbounded).
ACTIVATION_RANGES = {op: kept_range(op) for op in ACTIVATION_CAPS}
FALLBACK_NAMES = ("fallback_quantization_min_value", "fallback_quantization_max_value")


def fake_quant_range(node, index):
    """(min, max) of a FakeQuant node whose range is fixed, else None."""
    if node.op == "FakeQuantWithMinMaxArgs":
        return node.attr["min"].f, node.attr["max"].f
    if node.op == "FakeQuantWithMinMaxVars":
        lo, hi = index.get(node.input[1]), index.get(node.input[2])
        if lo is not None and hi is not None and lo.op == hi.op == "Const":
            return float(const_value(lo)), float(const_value(hi))
    return None


class ReferenceLowering:
    """Rewrites the nodes chosen by annotate into legacy quantized ops."""

    target = "reference"
    mode = "MIN_FIRST"

    def __init__(self, graph_def, fallback_range=None, ranges=None):
        self.graph_def = graph_def
        self.index = GraphIndex(graph_def)
        self.names = NameAllocator(graph_def)
        self.fallback_range = fallback_range
        self.ranges = ranges or {}
        self.new_nodes = []
        self._weights = {}  # float Const name -> (q, min, max) names, shared by readers
        self._fallback_consts = None

    def lower(self, quantize_names):
        """Returns the new GraphDef with every node in `quantize_names` lowered."""
        self.quantized = set(quantize_names)
        replaced = set()
        for node in self.graph_def.node:
            if node.name in quantize_names:
                handler(node.op).lower[self.target](self, node)
                replaced.add(node.name)
        kept = [n for n in self.graph_def.node if n.name not in replaced]
        return graph_with_nodes(self.graph_def, kept + self.new_nodes)

    # ---- building blocks used by the op modules ------------------------------------------

    def emit(self, op, node, suffix, inputs, types=None, name=None):
        """Adds a node named "<node>_eightbit_<suffix>" (unique) and returns it."""
        new = create_node(op, name or self.names("%s_eightbit_%s" % (node.name, suffix)), inputs)
        for attr, dtype in (types or {}).items():
            set_attr_dtype(new, attr, getattr(tf, dtype))
        self.new_nodes.append(new)
        return new

    def const(self, base, value, dtype=np.float32):
        node = make_const(self.names(base), np.asarray(value, dtype))
        self.new_nodes.append(node)
        return node.name

    def quantize_inputs(self, node, positions):
        """[(quint8 tensor, min tensor, max tensor)] for the given input positions."""
        return [self.quantize_input(node, node.input[p]) for p in positions]

    def quantize_input(self, node, inp):
        src = self.index.get(inp)
        if src.op == "Const" and split_input(inp)[1] == 0:
            return self._quantized_weight(src)
        tag = unique_node_name_from_input(inp)
        fixed = fake_quant_range(src, self.index) if src.op in _FAKE_QUANT else None
        if fixed is None:
            fixed = self.ranges.get(canonical_input(inp), self.fallback_range)
            fixed = clamp_range(fixed, ACTIVATION_RANGES.get(node.op))
        if fixed is not None:
            lo, hi = self._range_consts(nudge_range(*fixed), "%s_eightbit_%%s_%s" % (node.name, tag))
        else:
            lo, hi = self._measured_range(node, inp, tag)
            keep = ACTIVATION_RANGES.get(node.op)
            if keep is None:
                lo, hi = self._nudged(node, tag, lo, hi)
            else:
                lo, hi = self._clamped(node, tag, lo, hi, keep)
        q = self.emit("QuantizeV2", node, "quantize_" + tag, [inp, lo, hi], types={"T": "quint8"})
        set_attr_string(q, "mode", self.mode.encode())
        return q.name, tensor_name(q.name, 1), tensor_name(q.name, 2)

    def _range_consts(self, fixed, pattern):
        """(min, max) Const names for a fixed range; the fallback range itself is one shared
        pair named as the original tool named it (fallback_quantization_min/max_value)."""
        if self.fallback_range is not None and fixed == nudge_range(*self.fallback_range):
            if self._fallback_consts is None:
                self._fallback_consts = (self.const(FALLBACK_NAMES[0], fixed[0]),
                                         self.const(FALLBACK_NAMES[1], fixed[1]))
            return self._fallback_consts
        return self.const(pattern % "min", fixed[0]), self.const(pattern % "max", fixed[1])

    def _nudged(self, node, tag, lo, hi):
        """Run-time version of nudge_range: four scalar ops on the measured range."""
        zero = self.const("%s_eightbit_zero_%s" % (node.name, tag), 0.0)
        levels = self.const("%s_eightbit_levels_%s" % (node.name, tag), 255.0)
        lo = self._binary("Minimum", node, tag + "_with_zero", lo, zero)
        step = self._binary("RealDiv", node, tag + "_step",
                            self._binary("Sub", node, tag + "_span", hi, lo), levels)
        codes = self.emit("Round", node, tag + "_zero_code",
                          [self._binary("RealDiv", node, tag + "_lo_steps", lo, step)])
        set_attr_dtype(codes, "T", tf.float32)
        lo = self._binary("Mul", node, tag + "_nudged_min", codes.name, step)
        hi = self._binary("Add", node, tag + "_nudged_max", lo,
                          self._binary("Mul", node, tag + "_nudged_span", step, levels))
        return lo, hi

    def _measured_range(self, node, inp, tag):
        """Min and Max of the flattened tensor, computed at run time."""
        shape = self.const("%s_eightbit_reshape_dims_%s" % (node.name, tag), [-1], np.int32)
        flat = self.emit("Reshape", node, "reshape_" + tag, [inp, shape])
        set_attr_dtype(flat, "T", tf.float32)
        axis = self.const("%s_eightbit_reduction_dims_%s" % (node.name, tag), [0], np.int32)
        ends = []
        for op in ("Min", "Max"):
            r = self.emit(op, node, op.lower() + "_" + tag, [flat.name, axis])
            set_attr_dtype(r, "T", tf.float32)
            set_attr_bool(r, "keep_dims", False)
            ends.append(r.name)
        return ends

    def quantize_weights(self, node, axis):
        """(quint8 weights, min, max, per-channel rescale or None) for input 1 of a conv/matmul.

        When every reader of the node's result is float, the int32 result is turned to float
        exactly, so each output channel can be rescaled there: the weights are divided by
        their channel's largest magnitude before the one per-tensor 8-bit range is chosen,
        and the channel scales are multiplied back in float. After batch-norm folding channel
        scales differ by 100x and plain per-tensor weights lose the small channels (MobileNet
        v1 reference: grace_hopper's top 5 lost "military uniform" on a one-step rounding
        change).
        """
        src = self.index.get(node.input[1])
        if (src is None or src.op != "Const" or split_input(node.input[1])[1] != 0
                or not self._exact_float_result(node)):
            return self.quantize_input(node, node.input[1]) + (None,)
        q, qmin, qmax, scale = quantize_channel_scaled(const_value(src), axis)
        base = src.name + "_equalized_quint8"
        q_node = make_const(self.names(base + "_const"), q, tf.quint8)
        self.new_nodes.append(q_node)
        return (q_node.name, self.const(base + "_min", qmin), self.const(base + "_max", qmax),
                self.const(base + "_channel_scale", scale))

    def _exact_float_result(self, node):
        """Whether the int32 result is dequantized exactly: every reader is float and none is
        a FakeQuant with a fixed range, whose range the result is narrowed to instead (as the
        original tool did: QAT graphs then end in one Dequantize)."""
        readers = self.index.data_consumers(node.name)
        fixed = any(r.op in _FAKE_QUANT and fake_quant_range(r, self.index) is not None
                    for r, _ in readers)
        return self._readers_are_float(node) and not fixed

    def _readers_are_float(self, node):
        readers = self.index.data_consumers(node.name)
        return bool(readers) and not any(r.name in self.quantized for r, _ in readers)

    def _quantized_weight(self, const_node):
        if const_node.name not in self._weights:
            q, qmin, qmax = quantize_nudged(const_value(const_node).astype(np.float32))
            base = const_node.name + "_quint8"
            q_node = make_const(self.names(base + "_const"), q, tf.quint8)
            self.new_nodes.append(q_node)
            self._weights[const_node.name] = (q_node.name, self.const(base + "_min", qmin),
                                              self.const(base + "_max", qmax))
        return self._weights[const_node.name]

    def finish_int32(self, node, result, channel_scale=None):
        """Narrows a qint32 result to quint8, then dequantizes it under the node's name.

        If no reader is quantized, the int32 result is dequantized directly (exactly)
        instead: narrowing would only add error.
        """
        lo_in, hi_in = tensor_name(result, 1), tensor_name(result, 2)
        if self._exact_float_result(node):
            self._int32_to_float(node, result, hi_in, channel_scale)
            return
        assert channel_scale is None, "rescaled weights need a float result"
        fixed = self._output_range(node)
        if fixed is not None:
            fixed = nudge_range(*clamp_range(fixed, self._reader_activation_range(node)))
            lo, hi = self._range_consts(fixed, node.name + "_eightbit_requant_%s")
        else:
            rr = self.emit("RequantizationRange", node, "requant_range", [result, lo_in, hi_in],
                           types={"Tinput": "qint32"})
            lo, hi = self._clamped(node, "output", rr.name, tensor_name(rr.name, 1),
                                   self._reader_activation_range(node))
        req = self.emit("Requantize", node, "requantize", [result, lo_in, hi_in, lo, hi],
                        types={"Tinput": "qint32", "out_type": "quint8"})
        self.finish_quint8(node, req.name)

    def _int32_to_float(self, node, result, hi, channel_scale=None):
        """value = q * max / (2^31 - 1): the legacy ops' int32 results are symmetric around 0.

        Plain Bitcast/Cast/Mul rather than Dequantize(qint32), which oneDNN builds of TF
        rewrite to a kernel that has no qint32 variant.
        """
        bits = self.emit("Bitcast", node, "int32", [result], types={"T": "qint32", "type": "int32"})
        as_float = self.emit("Cast", node, "float", [bits.name], types={"SrcT": "int32", "DstT": "float32"})
        top = self.const(node.name + "_eightbit_int32_top", 2147483647.0)
        scale = self._binary("RealDiv", node, "int32_scale", hi, top)
        if channel_scale is not None:  # a vector: broadcasts along the last (channel) axis
            scale = self._binary("Mul", node, "int32_channel_scale", scale, channel_scale)
        out = create_node("Mul", node.name, [as_float.name, scale])
        set_attr_dtype(out, "T", tf.float32)
        self.new_nodes.append(out)

    def finish_quint8(self, node, result):
        dq = create_node("Dequantize", node.name,
                         [result, tensor_name(result, 1), tensor_name(result, 2)])
        set_attr_dtype(dq, "T", tf.quint8)
        set_attr_string(dq, "mode", self.mode.encode())
        self.new_nodes.append(dq)

    def _reader_activation_range(self, node):
        """The range a Relu/Relu6 keeps, when it is the only reader of the node's result."""
        readers = self.index.data_consumers(node.name)
        if len(readers) == 1 and readers[0][1] == 0:
            return ACTIVATION_RANGES.get(readers[0][0].op)
        return None

    def _clamped(self, node, tag, lo, hi, keep):
        """Narrows a measured range to what a following Relu/Relu6 keeps.

        Folded batch norms leave pre-activation tensors with long negative tails (dead
        channels); spending the 8 bits on values the activation zeroes anyway ruins the
        resolution of the values it keeps. Saturating at the bounds is exactly the activation.
        """
        if keep is None:
            return lo, hi
        upper = hi
        if keep[1] is not None:
            cap = self.const("%s_eightbit_%s_act_max" % (node.name, tag), keep[1])
            upper = self._binary("Minimum", node, tag + "_act_cap", hi, cap)
        # Never an empty range, even if every value is negative (the activation outputs zeros).
        floor = self.const("%s_eightbit_%s_act_floor" % (node.name, tag), 1e-3)
        upper = self._binary("Maximum", node, tag + "_act_floor", upper, floor)
        return self.const("%s_eightbit_%s_act_min" % (node.name, tag), 0.0), upper

    def _binary(self, op, node, suffix, a, b):
        n = self.emit(op, node, suffix, [a, b])
        set_attr_dtype(n, "T", tf.float32)
        return n.name

    def _output_range(self, node):
        """A fixed range for the node's result: a FakeQuant reading it, else the calibrated
        range, else the fallback."""
        readers = self.index.data_consumers(node.name)
        if len(readers) == 1 and readers[0][0].op in _FAKE_QUANT and readers[0][1] == 0:
            fixed = fake_quant_range(readers[0][0], self.index)
            if fixed is not None:
                return fixed
        return self.ranges.get(node.name, self.fallback_range)


def refine_reference(graph_def, decision):
    """Keeps float every BiasAdd that reads a quantized Conv2D/MatMul.

    QuantizedBiasAdd only takes quint8, so the conv's int32 result would first be narrowed
    to 8 bits over one range for all channels; after batch-norm folding, channel scales
    differ by 100x and the small channels are lost (MobileNet v1: top-1 agreement 4%).
    Dequantizing the int32 result exactly and adding the bias in float keeps them; the
    Relu after it is quantized again over the range it keeps.
    """
    index = GraphIndex(graph_def)
    for name in sorted(decision.quantized):
        node = index.nodes[name]
        if node.op in ("BiasAdd", "BiasAddV1"):
            src = index.get(node.input[0])
            if src is not None and src.name in decision.quantized and src.op in ("Conv2D", "MatMul"):
                decision.quantized.discard(name)
                decision.float_reasons[name] = (
                    "reads a quantized %s; its int32 result is dequantized exactly instead of "
                    "narrowed per tensor for QuantizedBiasAdd" % src.op)
    return decision


def clamp_range(rng, keep):
    """`rng` narrowed to what an activation keeps ((0, None) for Relu, (0, 6) for Relu6)."""
    if rng is None or keep is None:
        return rng
    hi = rng[1] if keep[1] is None else min(rng[1], keep[1])
    return keep[0], max(hi, 1e-3)


def lower_reference(graph_def, decision, fallback_range=None, ranges=None):
    """(lowered graph, `decision`): every node annotate chose is lowered."""
    return ReferenceLowering(graph_def, fallback_range, ranges).lower(decision.quantized), decision

