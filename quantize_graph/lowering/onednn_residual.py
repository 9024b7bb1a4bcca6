"""Residual adds in the onednn target: Conv2D (+ BiasAdd) + Add(summand) + Relu/Relu6 as one
QuantizedConv2DWithBiasSumAndReluAndRequantize.

Facts (docs/onednn_notes.md, section 2): the op computes
`relu(acc * s_x * s_w + bias + summand)` with a quint8 summand over its own range (0, M_s),
requantized to a frozen quint8 output range: exact. The kernel writes its result into the
summand's buffer in place, so the summand must be produced in-graph and read by nobody that
may run after the fused conv. Readers the conv depends on are safe (a ResNet identity block's
input is read by the block's first conv, which the fused last conv waits for); for any other
reader a copy is inserted (`QuantizedMaxPool` with a 1x1 window: a plain int8 copy; ~0.3 ms
each at batch 1 on ResNet-50's 56x56x256 .. 7x7x2048 block inputs).

Only the pattern whose Add is followed by Relu/Relu6 fuses (there is no stock int8 conv+sum
without an activation that works: SignedSum saturates, see the notes), and only when the
summand is quint8 (calibrated non-negative: a ReLU output, as in ResNet's identity blocks).
An Add that does not fuse stays float between Dequantize and QuantizeV2: correct, slower.
"""
import tensorflow as tf

from quantize_graph.graph import patterns
from quantize_graph.graph.names import canonical_input, split_input

SUM_OP = "QuantizedConv2DWithBiasSumAndReluAndRequantize"
# Without the copy the in-place write corrupts or crashes a reader that runs after the fused
# conv (docs/onednn_notes.md). Switchable only to measure what the copies cost.
COPY_SHARED_SUMMAND = True


def fuse_residuals(ctx, groups):
    """The onednn plan's residual Adds: each Conv2D group whose Add candidate
    (patterns.residual_candidate) has a Relu/Relu6 after it and a non-negative summand lowered
    before the conv (the conv is lowered at its head's place in topological order, and reads
    the summand's int8 form) takes the Add and the activation."""
    order = {name: i for i, name in enumerate(ctx.index.topological_order())}
    out = []
    for group in groups:
        fused = patterns.residual_candidate(ctx.index, ctx.quantized_nodes, group)
        if fused is not None and fused.activation is not None:
            summand = canonical_input(fused.summand)
            source = ctx.index.get(summand)
            if (source is not None and order.get(source.name, -1) <= order[group.head]
                    and ctx.nonnegative(summand)):
                group = fused
        out.append(group)
    return out


def summand_inputs(ctx, group, q):
    """The extra inputs (summand, min_summand, max_summand) of the fused conv of `group`, whose
    summand's quint8 form is `q`: a private copy where other nodes read it too."""
    summand = canonical_input(group.summand)
    name, port, _ = split_input(summand)
    # Readers the conv depends on have finished before it runs and overwrites the buffer;
    # any other reader (or a Dequantize for a float one) could see the sum instead.
    head_ancestors = _ancestors(ctx.index, group.head)
    others = [r for r, _ in ctx.index.data_consumers(name, port)
              if r.name != group.residual_add and r.name not in head_ancestors]
    # A fed summand is not produced in-graph (and --quantized_input may later feed its codes).
    fed = ctx.index.node(summand).op == "Placeholder"
    if COPY_SHARED_SUMMAND and (others or fed):
        copy = ctx.emit("QuantizedMaxPool", summand.replace(":", "_") + "/eightbit_summand_copy",
                        [q.tensor, q.min, q.max], {"T": tf.quint8})
        copy.attr["ksize"].list.i.extend([1, 1, 1, 1])
        copy.attr["strides"].list.i.extend([1, 1, 1, 1])
        copy.attr["padding"].s = b"VALID"
        q = q._replace(tensor=copy.name)
    # The summand's declared range is (0, M): emitted as Consts, like the other ranges.
    base = group.tail + "/eightbit"
    return [q.tensor, ctx.const(base + "_min_summand", 0.0),
            ctx.const(base + "_max_summand", q.magnitude)]


def _ancestors(index, name):
    seen, pending = set(), [name]
    while pending:
        for inp in index.nodes[pending.pop()].input:
            src = split_input(inp)[0]
            if src not in seen:
                seen.add(src)
                pending.append(src)
    return seen
