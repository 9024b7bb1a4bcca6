"""The `onednn` target: stock TensorFlow's fused oneDNN int8 kernels, with frozen ranges.

Facts this rests on are measured in docs/onednn_notes.md. In short:
- activations are quint8 with zero at 0 and scale max/255 (the kernels take no offset), so
  only tensors that calibration found non-negative (after Relu/Relu6, pools and concats of
  those) are quantized; an op whose input can be negative stays float;
- conv weights are qint8 symmetric per output channel, scaled so that adjacent input-channel
  pairs never overflow: on CPUs without VNNI oneDNN sums such pairs in saturating int16
  (weight_schemes.pair_limit); depthwise weights use plain 8 bits; MatMul weights are per tensor (the kernel
  rejects per-channel ranges), with the same pair limit;
- Conv2D + BiasAdd + Relu/Relu6 -> QuantizedConv2DWithBiasAndReluAndRequantize (Relu6 by
  saturating at an output range of 6); without an activation QuantizedConv2DWithBiasAnd-
  Requantize (qint8 out); depthwise only with an activation; MatMul + BiasAdd + Relu ->
  QuantizedMatMulWithBiasAndReluAndRequantize, and without one
  QuantizedMatMulWithBiasAndDequantize (float out, for logits);
- MaxPool, AvgPool, Concat/ConcatV2 (QuantizedConcatV2 unifies input ranges), Reshape stay 8-bit;
- QuantizeV2 (SCALED, HALF_TO_EVEN) where data enters, Dequantize (SCALED) where a float op reads.
"""
import collections

import numpy as np
import tensorflow as tf

from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph.edit import NameAllocator, graph_with_nodes
from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import canonical_input, split_input, tensor_name
from quantize_graph.graph.nodes import (const_value, copy_attr, create_node, make_const,
                                        set_attr_bool, set_attr_dtype, set_attr_int, set_attr_string)
from quantize_graph.passes.fold_batch_norms import out_channels
from quantize_graph.weight_schemes import onednn_conv_codes, onednn_matmul_codes
from quantize_graph.targets import onednn_pad, onednn_residual, onednn_signed_input, zero_at_zero

# A quantized tensor: its codes, the tensors holding its (min, max), its type, and the largest
# magnitude M it represents (scale M/255 for quint8, M/127 for qint8).
Quantized = collections.namedtuple("Quantized", ["tensor", "min", "max", "dtype", "magnitude"])

ACTIVATIONS = {"Relu": None, "Relu6": 6.0}
HEADS = ("Conv2D", "DepthwiseConv2dNative", "MatMul")


class OneDnnLowering:

    def __init__(self, graph_def, decision, ranges, fallback_range=None, bias_corrections=None):
        if not ranges and fallback_range is None:
            raise QuantizeGraphError(
                "the onednn target freezes every range: give --calibration_data (or --ranges_in, "
                "or --quantized_fallback_min/max), or use --target=reference")
        self.graph_def = graph_def
        self.decision = decision
        self.ranges = ranges or {}
        self.fallback_range = fallback_range
        self.bias_corrections = bias_corrections or {}  # layer -> subtracted from its bias
        self.index = GraphIndex(graph_def)
        self.names = NameAllocator(graph_def)
        self.new_nodes = []
        self.quantized = {}      # float tensor name -> Quantized
        self.produced = set()    # float tensor names whose value now comes from an int8 op
        self.replaced = set()    # original node names not copied to the output graph

    # ---- driver ------------------------------------------------------------------------

    def lower(self):
        groups = self._fusion_groups()
        absorbed = {n for g in groups.values() for n in g[1:]}
        anchors = {self._anchor(g): g for g in groups.values()}
        for name in self.index.topological_order():
            group = anchors.get(name)
            if group is None and (name in absorbed or name in groups
                                  or name not in self.decision.quantized):
                continue
            ok = self._lower_group(group) if group else self._lower_single(self.index.nodes[name])
            if not ok:
                for member in group or [name]:
                    self._keep_float(member, self._why or "an input can be negative")
        for name in absorbed:
            if name not in self.replaced:
                self._keep_float(name, "not fused into a quantized conv/matmul")
        self._dequantize_outputs()
        kept = [n for n in self.graph_def.node if n.name not in self.replaced]
        return graph_with_nodes(self.graph_def, kept + self.new_nodes)

    _why = None

    def _anchor(self, group):
        """The member at whose place in topological order a fused group is lowered."""
        return group[0]

    def _keep_float(self, name, why):
        if name in self.decision.quantized:
            self.decision.quantized.discard(name)
            self.decision.float_reasons[name] = why

    # ---- fusion --------------------------------------------------------------------------

    def _fusion_groups(self):
        """{head name: [head, BiasAdd?, activation?]} for conv/matmul nodes with Const weights."""
        groups = {}
        for name in self.decision.quantized:
            node = self.index.nodes[name]
            if node.op not in HEADS or not self._is_const(node.input[1]):
                continue
            members, tail = [name], node
            nxt = self._sole_reader(tail)
            if nxt is not None and nxt.op in ("BiasAdd", "BiasAddV1") and self._is_const(nxt.input[1]):
                members.append(nxt.name)
                tail = nxt
                nxt = self._sole_reader(tail)
            if nxt is not None and nxt.op in ACTIVATIONS:
                members.append(nxt.name)
            groups[name] = members
        self._extend_groups(groups)
        return groups

    def _extend_groups(self, groups):
        onednn_residual.extend_with_residual(self, groups)  # + Add(summand) + Relu

    def _sole_reader(self, node):
        readers = self.index.consumers.get(node.name, [])
        if len(readers) != 1 or readers[0][0].name not in self.decision.quantized:
            return None
        reader, position = readers[0]
        return reader if split_input(reader.input[position])[1] == 0 and position == 0 else None

    def _is_const(self, inp):
        src = self.index.get(inp)
        return src is not None and src.op == "Const"

    # ---- quantized inputs and outputs ------------------------------------------------------

    def _input(self, inp):
        """The quint8 form of a float tensor, quantizing it if needed; None if it can't be."""
        key = canonical_input(inp)
        if key in self.quantized:
            q = self.quantized[key]
            return q if q.dtype == tf.quint8 else None
        rng = self.ranges.get(key, self.fallback_range)
        if not zero_at_zero.holds(rng):
            return None
        magnitude = max(rng[1], 1e-6)
        base = key.replace(":", "_") + "/eightbit"
        lo = self._const(base + "_min", 0.0)
        hi = self._const(base + "_max", magnitude)
        q = self._emit("QuantizeV2", base + "_quantize", [inp, lo, hi], {"T": tf.quint8})
        set_attr_string(q, "mode", b"SCALED")
        set_attr_string(q, "round_mode", b"HALF_TO_EVEN")
        result = Quantized(q.name, tensor_name(q.name, 1), tensor_name(q.name, 2), tf.quint8, magnitude)
        self.quantized[key] = result
        return result

    def _only_float_readers(self, node):
        """True if no reader of `node` can run in 8 bits (e.g. a classifier's logits read by
        Squeeze/Softmax), so an int8 result would be dequantized right away."""
        readers = self.index.consumers.get(node.name, [])
        return all(r.name not in self.decision.quantized for r, _ in readers)

    def _already_int8(self, inp):
        """True if an int8 op already produces this tensor (no QuantizeV2 needed): a reshape
        of a float tensor (say, the probabilities after Softmax) would only round it."""
        return canonical_input(inp) in self.produced

    def _calibrated_range(self, name):
        """(min, max) of a tensor the lowering must freeze a range for."""
        rng = self.ranges.get(name, self.fallback_range)
        if rng is None:
            raise QuantizeGraphError("no calibrated range for tensor '%s'" % name)
        return rng

    def _output_magnitude(self, name, cap=None):
        rng = self._calibrated_range(name)
        top = max(abs(rng[0]), abs(rng[1]))
        if cap is not None:
            top = min(top, cap)
        return max(top, 1e-6)

    def _produce(self, name, node, dtype, magnitude):
        """Records that float tensor `name` is now node's int8 output (codes, min, max)."""
        self.quantized[name] = Quantized(node.name, tensor_name(node.name, 1),
                                         tensor_name(node.name, 2), dtype, magnitude)
        self.produced.add(name)

    def _dequantize_outputs(self):
        """A Dequantize named like each replaced tensor, for float readers and graph outputs;
        the final prune drops those nobody reads."""
        for name in sorted(self.produced):
            q = self.quantized[name]
            dq = create_node("Dequantize", name, [q.tensor, q.min, q.max])
            set_attr_dtype(dq, "T", q.dtype)
            set_attr_string(dq, "mode", b"SCALED")
            self.new_nodes.append(dq)

    # ---- emitting --------------------------------------------------------------------------

    def _emit(self, op, name, inputs, types=None):
        node = create_node(op, self.names(name), inputs)
        for attr, dtype in (types or {}).items():
            set_attr_dtype(node, attr, dtype)
        self.new_nodes.append(node)
        return node

    def _const(self, name, value, dtype=tf.float32):
        node = make_const(self.names(name), np.asarray(value, dtype.as_numpy_dtype
                                                       if dtype not in (tf.qint8, tf.quint8) else None), dtype)
        self.new_nodes.append(node)
        return node.name

    def _replace(self, names):
        self.replaced.update(names)

    # ---- conv / depthwise / matmul groups -------------------------------------------------

    def _lower_group(self, members):
        nodes = [self.index.nodes[m] for m in members]
        head, last = nodes[0], nodes[-1]
        bias_node = next((n for n in nodes if n.op in ("BiasAdd", "BiasAddV1")), None)
        act = next((n for n in nodes if n.op in ACTIVATIONS), None)
        self._why = None
        if head.op == "DepthwiseConv2dNative" and act is None:
            self._why = "no fused int8 depthwise conv without an activation"
            return False
        if head.op == "Conv2D" and act is None and self._only_float_readers(last):
            self._why = ("no activation and only float ops read it: its qint8 result (127 levels "
                         "over +-max, e.g. logits) would only lose precision")
            return False
        # A Pad before a VALID conv that equals SAME padding is folded into the conv.
        folded = onednn_pad.folded_pad_input(self, head)
        x = self._input(folded) if folded is not None else None
        if x is None:
            folded = None
            x = self._input(head.input[0])
        offset = 0.0
        if x is None:  # signed: codes with an offset, undone in the bias (1x1 / VALID convs)
            x, offset = onednn_signed_input.offset_input(self, head)
        if x is None:
            self._why = "its input can be negative (quint8 holds no negatives)"
            return False
        weights = const_value(self.index.node(head.input[1])).astype(np.float32)
        if head.op == "DepthwiseConv2dNative" and weights.shape[3] != 1:
            self._why = "depthwise channel multiplier > 1"
            return False
        channels = out_channels(head, weights)
        bias = (const_value(self.index.node(bias_node.input[1])).astype(np.float32)
                if bias_node is not None else np.zeros([channels], np.float32))
        bias = self._corrected(head.name, bias)
        base = last.name + "/eightbit"
        if head.op == "MatMul":
            return self._lower_matmul(head, last, act, x, weights, bias, base, members)
        q_w, w_max = onednn_conv_codes(weights, head.op)
        filt = self._const(base + "_weights", q_w, tf.qint8)
        if offset:
            bias = bias + onednn_signed_input.offset_bias(q_w, w_max, offset)
        if act is not None:
            magnitude = self._output_magnitude(last.name, ACTIVATIONS[act.op])
            out_type, lo = tf.quint8, 0.0
            op = ("QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize"
                  if head.op == "DepthwiseConv2dNative" else "QuantizedConv2DWithBiasAndReluAndRequantize")
        else:
            magnitude = self._output_magnitude(last.name)
            out_type, lo = tf.qint8, -magnitude
            op = "QuantizedConv2DWithBiasAndRequantize"
        summand = onednn_residual.sum_inputs(self, head, members)
        if summand is None:
            self._why = "the residual summand can be negative (quint8 holds no negatives)"
            return False
        if summand:
            op = onednn_residual.SUM_OP
        inputs = [x.tensor, filt, self._const(base + "_bias", bias), x.min, x.max,
                  self._const(base + "_min_filter", -w_max), self._const(base + "_max_filter", w_max),
                  self._const(base + "_min_output", lo), self._const(base + "_max_output", magnitude)]
        conv = self._emit(op, base, inputs + summand, {"Tinput": tf.quint8, "Tfilter": tf.qint8,
                                                       "Tbias": tf.float32, "out_type": out_type})
        if summand:
            set_attr_dtype(conv, "Tsummand", tf.quint8)
        for attr in ("strides", "padding", "dilations"):
            if attr in head.attr:
                copy_attr(conv, attr, head.attr[attr])
        if folded is not None:
            set_attr_string(conv, "padding", b"SAME")
        self._replace(members)
        self._produce(last.name, conv, out_type, magnitude)
        return True

    def _lower_matmul(self, head, last, act, a, weights, bias, base, members):
        if head.attr["transpose_a"].b:
            self._why = "transpose_a is not supported by the int8 MatMul"
            return False
        q_b, b_max = onednn_matmul_codes(weights, head.attr["transpose_b"].b)
        b = self._const(base + "_weights", q_b, tf.qint8)
        if act is not None:
            magnitude = self._output_magnitude(last.name, ACTIVATIONS[act.op])
            op, out_type, lo = "QuantizedMatMulWithBiasAndReluAndRequantize", tf.quint8, 0.0
        else:
            magnitude, op, out_type, lo = 1.0, "QuantizedMatMulWithBiasAndDequantize", tf.float32, 0.0
        inputs = [a.tensor, b, self._const(base + "_bias", bias), a.min, a.max,
                  self._const(base + "_min_b", -b_max), self._const(base + "_max_b", b_max),
                  self._const(base + "_min_output", lo), self._const(base + "_max_output", magnitude)]
        # A float result takes the replaced node's name, as a Dequantize would.
        mm = create_node(op, last.name if out_type == tf.float32 else self.names(base), inputs)
        for attr, dtype in (("T1", tf.quint8), ("T2", tf.qint8), ("Tbias", tf.float32), ("Toutput", out_type)):
            set_attr_dtype(mm, attr, dtype)
        set_attr_bool(mm, "transpose_a", False)
        set_attr_bool(mm, "transpose_b", head.attr["transpose_b"].b)
        set_attr_string(mm, "input_quant_mode", b"SCALED")
        self.new_nodes.append(mm)
        self._replace(members)
        if out_type != tf.float32:
            self._produce(last.name, mm, out_type, magnitude)
        return True

    def _corrected(self, layer, bias):
        """The bias minus the layer's bias correction (passes/bias_correction.py), if any."""
        if layer not in self.bias_corrections:
            return bias
        return (bias - self.bias_corrections[layer]).astype(np.float32)

    # ---- pools, concat, reshape ----------------------------------------------------------

    def _lower_single(self, node):
        self._why = None
        if node.op in ("MaxPool", "AvgPool"):
            x = self._input(node.input[0])
            if x is None:
                return False
            pool = self._pool(node, x)
            for attr in ("ksize", "strides", "padding"):
                copy_attr(pool, attr, node.attr[attr])
            self._replace([node.name])
            self._produce(node.name, pool, tf.quint8, x.magnitude)
            return True
        if node.op in ("Concat", "ConcatV2"):
            return self._lower_concat(node)
        if node.op == "Reshape":
            if not self._already_int8(node.input[0]):
                self._why = "its input is float: quantizing only to reshape would lose precision"
                return False
            x = self._input(node.input[0])
            if x is None:
                return False
            self._replace([node.name])
            self.quantized[node.name] = self._reshape(node, x)
            self.produced.add(node.name)
            return True
        self._why = "only fused into a quantized conv/matmul"
        return False

    def _pool(self, node, x):
        """The int8 MaxPool/AvgPool node for `node` on quantized input `x` (attrs copied after)."""
        return self._emit("Quantized" + node.op, node.name + "/eightbit", [x.tensor, x.min, x.max],
                          {"T": tf.quint8})

    def _reshape(self, node, x):
        """The Quantized result of reshaping `x` as Reshape `node` does."""
        r = self._emit("QuantizedReshape", node.name + "/eightbit",
                       [x.tensor, node.input[1], x.min, x.max], {"T": tf.quint8})
        copy_attr(r, "Tshape", node.attr["Tshape"])
        return Quantized(r.name, tensor_name(r.name, 1), tensor_name(r.name, 2), tf.quint8, x.magnitude)

    def _lower_concat(self, node):
        inputs = [i for i in node.input if not i.startswith("^")]
        axis, values = (inputs[0], inputs[1:]) if node.op == "Concat" else (inputs[-1], inputs[:-1])
        qs = [self._input(v) for v in values]
        if any(q is None for q in qs):
            return False
        axis = self._nonnegative_axis(node, axis, qs[0].tensor)
        concat = self._emit("QuantizedConcatV2", node.name + "/eightbit",
                            [q.tensor for q in qs] + [axis] + [q.min for q in qs] + [q.max for q in qs],
                            {"T": tf.quint8, "Tidx": tf.int32})
        set_attr_int(concat, "N", len(qs))
        self._replace([node.name])
        self._produce(node.name, concat, tf.quint8, max(q.magnitude for q in qs))
        return True

    def _nonnegative_axis(self, node, axis, first_value):
        src = self.index.get(axis)
        if src is not None and src.op == "Const" and int(const_value(src)) >= 0:
            return axis
        rank = self._emit("Rank", node.name + "/eightbit_rank", [first_value], {"T": tf.quint8})
        return self._emit("FloorMod", node.name + "/eightbit_axis", [axis, rank.name], {"T": tf.int32}).name


def lower_onednn(graph_def, decision, fallback_range=None, ranges=None, bias_corrections=None):
    return OneDnnLowering(graph_def, decision, ranges, fallback_range, bias_corrections).lower()
