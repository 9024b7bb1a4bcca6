"""The `kernels` target: the project's own Qg op library (kernels/, contract in kernels/OPS.md).

It lowers the same patterns as the onednn target and reuses its driver (fusion groups, where
data enters and leaves 8 bits), with three differences that the Qg ops allow:
- activations are quint8 with a zero point (affine), so signed tensors (the image entering the
  first conv, a conv without activation, residual sums) stay in 8 bits too;
- weights are qint8 symmetric per output channel, conv, depthwise and MatMul alike; conv and
  MatMul codes keep every same-sign pair along K within 128 (onednn's pair_limit), so that the
  AVX2 byte kernel (vpmaddubsw, twice the int16 kernel's multiply rate) can run exactly; any
  codes would still be exact on the int16 path (kernels/OPS.md, "CPU paths");
- a residual Add after conv + BiasAdd is fused as the conv's summand, with or without an
  activation after it.
A MatMul that only float ops read returns float (logits keep full precision).
"""
import numpy as np
import tensorflow as tf

from quantize_graph.graph.names import canonical_input, split_input, tensor_name
from quantize_graph.graph.nodes import (const_value, copy_attr, create_node, set_attr_bool,
                                        set_attr_dtype, set_attr_int, set_attr_string)
from quantize_graph.passes.fold_batch_norms import out_channels
from quantize_graph.targets import onednn_pad
from quantize_graph.weight_schemes import kernels_codes
from quantize_graph.targets.onednn import ACTIVATIONS, OneDnnLowering, Quantized
from quantize_graph.targets.onednn_residual import ADD_OPS



def affine_range(lo, hi):
    """(min, max) widened to hold 0 and nudged so that 0.0 is an exact quint8 code."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-6:
        hi = lo + 1e-6
    scale = (hi - lo) / 255.0
    zero_point = int(np.clip(np.rint(-lo / scale), 0, 255))
    lo = -zero_point * scale
    return lo, lo + 255.0 * scale


class KernelsLowering(OneDnnLowering):

    def _anchor(self, group):
        # At its last member, so a residual summand produced by another branch is already
        # 8-bit when its Add is fused.
        return group[-1]

    # ---- fusion: conv [+ BiasAdd] [+ residual Add] [+ Relu/Relu6] ---------------------------

    def _extend_groups(self, groups):
        """conv [+ BiasAdd] groups that end in an Add's operand take the Add (the other operand
        becomes the summand) and the Relu/Relu6 after it. An Add of two such groups (a
        projection shortcut) goes to the first; the other is lowered alone, as the summand."""
        claimed = set()
        for head_name in sorted(groups):   # sorted: the same graph always fuses the same way
            members = groups[head_name]
            head, tail = self.index.nodes[head_name], self.index.nodes[members[-1]]
            if head.op != "Conv2D" or tail.op in ACTIVATIONS:
                continue
            add = self._reader_of(tail)
            if add is None or add.op not in ADD_OPS or add.name in claimed or not self._summand_of(add, tail):
                continue
            claimed.add(add.name)
            members.append(add.name)
            act = self._sole_reader(add)
            if act is not None and act.op in ACTIVATIONS:
                members.append(act.name)

    def _reader_of(self, node):
        """The one quantized reader of `node` (at any input position: an Add may read it second)."""
        readers = self.index.consumers.get(node.name, [])
        if len(readers) != 1 or readers[0][0].name not in self.decision.quantized:
            return None
        reader, position = readers[0]
        return reader if split_input(reader.input[position])[1] == 0 else None

    def _summand_of(self, add, tail):
        """The other input of a residual `add` whose one input is `tail`, or None."""
        ins = [i for i in add.input if not i.startswith("^")]
        if len(ins) != 2 or canonical_input(ins[0]) == canonical_input(ins[1]):
            return None
        mine = [i for i in ins if canonical_input(i) == canonical_input(tail.name)]
        if len(mine) != 1:
            return None
        other = ins[1] if mine[0] == ins[0] else ins[0]
        src = self.index.get(other)
        return other if src is not None and src.op != "Const" else None

    # ---- data entering and leaving 8 bits ---------------------------------------------------

    def _input(self, inp):
        key = canonical_input(inp)
        if key in self.quantized:
            return self.quantized[key]
        rng = self.ranges.get(key, self.fallback_range)
        if rng is None:
            return None
        lo, hi = affine_range(*rng)
        base = key.replace(":", "_") + "/eightbit"
        q = self._emit("QgQuantize", base + "_quantize",
                       [inp, self._const(base + "_min", lo), self._const(base + "_max", hi)])
        result = Quantized(q.name, tensor_name(q.name, 1), tensor_name(q.name, 2), tf.quint8, hi)
        self.quantized[key] = result
        return result

    def _output_range(self, name, activation=None):
        lo, hi = self._calibrated_range(name)
        if activation is not None:          # what Relu/Relu6 can output
            lo = max(lo, 0.0)
            if ACTIVATIONS[activation] is not None:
                hi = min(hi, ACTIVATIONS[activation])
        return affine_range(lo, hi)

    def _dequantize_outputs(self):
        for name in sorted(self.produced):
            q = self.quantized[name]
            self.new_nodes.append(create_node("QgDequantize", name, [q.tensor, q.min, q.max]))

    # ---- conv / depthwise / matmul ----------------------------------------------------------

    def _lower_group(self, members):
        nodes = [self.index.nodes[m] for m in members]
        head, last = nodes[0], nodes[-1]
        bias_node = next((n for n in nodes if n.op in ("BiasAdd", "BiasAddV1")), None)
        add = next((n for n in nodes if n.op in ADD_OPS), None)
        act = next((n for n in nodes if n.op in ACTIVATIONS), None)
        self._why = None
        # A zero Pad before a VALID conv equal to SAME padding (Keras' stride-2 convs) folds
        # into the conv, as in onednn: the kernels pad with the zero point, real 0. Else the
        # Pad ran float between a QgDequantize and a QgQuantize (MobileNet-v2: 4 of each).
        folded = onednn_pad.folded_pad_input(self, head)
        x = self._input(folded) if folded is not None else None
        if x is None:
            folded = None
            x = self._input(head.input[0])
        if x is None:
            self._why = "no range for its input"
            return False
        summand = None
        if add is not None:
            tail = bias_node or head
            summand = self._input(self._summand_of(add, tail))
            if summand is None:
                self._why = "no range for the residual summand"
                return False
        weights = const_value(self.index.node(head.input[1])).astype(np.float32)
        channels = out_channels(head, weights)
        bias = (const_value(self.index.node(bias_node.input[1])).astype(np.float32)
                if bias_node is not None else np.zeros([channels], np.float32))
        base = last.name + "/eightbit"
        bias = self._corrected(head.name, bias)
        if head.op == "MatMul" and head.attr["transpose_a"].b:
            self._why = "transpose_a is not supported by the int8 MatMul"
            return False
        codes, scales = kernels_codes(head.op, weights,
                                          head.op == "MatMul" and head.attr["transpose_b"].b)
        op = {"MatMul": "QgQuantizedMatMul", "Conv2D": "QgQuantizedConv2D",
              "DepthwiseConv2dNative": "QgQuantizedDepthwiseConv2D"}[head.op]
        float_out = head.op == "MatMul" and act is None and add is None and self._only_float_readers(last)
        lo, hi = (0.0, 1.0) if float_out else self._output_range(last.name, act.op if act else None)
        concat = None if float_out else self._sole_concat_reader(last)
        if concat is not None:
            lo, hi = self._output_range(concat.name)
        inputs = [x.tensor, self._const(base + "_weights", codes, tf.qint8),
                  self._const(base + "_weight_scale", scales),
                  self._const(base + "_bias", bias), x.min, x.max,
                  self._const(base + "_min_output", lo), self._const(base + "_max_output", hi)]
        if op != "QgQuantizedDepthwiseConv2D":
            inputs += [summand.tensor] if summand else []
            inputs += [summand.min, summand.max] if summand else []
        node = create_node(op, last.name if float_out else self.names(base), inputs)
        set_attr_string(node, "activation", (act.op.lower() if act is not None else "none").encode())
        set_attr_dtype(node, "out_type", tf.float32 if float_out else tf.quint8)
        if op != "QgQuantizedDepthwiseConv2D":
            set_attr_int(node, "num_summand", 1 if summand else 0)
        set_attr_bool(node, "constant_weights", True)   # a Const: prepared once
        if head.op != "MatMul":
            for attr in ("strides", "padding", "dilations"):
                if attr in head.attr:
                    copy_attr(node, attr, head.attr[attr])
            if folded is not None:
                set_attr_string(node, "padding", b"SAME")
        self.new_nodes.append(node)
        self._replace(members)
        if not float_out:
            self._produce(last.name, node, tf.quint8, hi)
        return True

    def _sole_concat_reader(self, node):
        """The 8-bit concat that is the only reader of `node`, or None.

        Such a producer requantizes straight to the concat's range (as TFLite does), so the
        concat's table for this input is the identity and the kernel copies bytes. The concat's
        range holds every input's (it is their union), so nothing is clipped; a branch with a
        smaller range than its siblings loses a little resolution."""
        reader = self._reader_of(node)
        return reader if reader is not None and reader.op in ("ConcatV2", "Concat") else None

    # ---- pools, concat, reshape -------------------------------------------------------------

    def _pool(self, node, x):
        return self._emit("QgQuantized" + node.op, node.name + "/eightbit", [x.tensor, x.min, x.max])

    def _reshape(self, node, x):
        # Stock Reshape on the codes: the range travels with the producer's min/max.
        r = self._emit("Reshape", node.name + "/eightbit", [x.tensor, node.input[1]], {"T": tf.quint8})
        copy_attr(r, "Tshape", node.attr["Tshape"])
        return Quantized(r.name, x.min, x.max, tf.quint8, x.magnitude)

    def _lower_concat(self, node):
        inputs = [i for i in node.input if not i.startswith("^")]
        axis, values = (inputs[0], inputs[1:]) if node.op == "Concat" else (inputs[-1], inputs[:-1])
        src = self.index.get(axis)
        if src is None or src.op != "Const":
            self._why = "the concat axis is not a constant"
            return False
        qs = [self._input(v) for v in values]
        if any(q is None for q in qs):
            return False
        lo, hi = self._output_range(node.name)
        concat = self._emit("QgQuantizedConcat", node.name + "/eightbit",
                            [q.tensor for q in qs] + [q.min for q in qs] + [q.max for q in qs]
                            + [self._const(node.name + "/eightbit_min_output", lo),
                               self._const(node.name + "/eightbit_max_output", hi)])
        set_attr_int(concat, "N", len(qs))
        set_attr_int(concat, "axis", int(const_value(src)))
        self._replace([node.name])
        self._produce(node.name, concat, tf.quint8, hi)
        return True


def lower_kernels(graph_def, decision, fallback_range=None, ranges=None, bias_corrections=None):
    return KernelsLowering(graph_def, decision, ranges, fallback_range, bias_corrections).lower()
