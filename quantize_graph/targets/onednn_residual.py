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

from quantize_graph.graph.names import canonical_input, split_input
from quantize_graph.targets import zero_at_zero

ADD_OPS = ("Add", "AddV2")
ACTIVATIONS = {"Relu": None, "Relu6": 6.0}
SUM_OP = "QuantizedConv2DWithBiasSumAndReluAndRequantize"
# Without the copy the in-place write corrupts or crashes a reader that runs after the fused
# conv (docs/onednn_notes.md). Switchable only to measure what the copies cost.
COPY_SHARED_SUMMAND = True


def extend_with_residual(lowering, groups):
    """Adds [Add, Relu] to each Conv2D group that ends without an activation and whose result
    is one operand of an Add read only by a Relu/Relu6; records the other operand (the
    summand) in lowering.summands {head name: summand tensor}."""
    index, quantized = lowering.index, lowering.decision.quantized
    order = {name: i for i, name in enumerate(index.topological_order())}
    lowering.summands = {}
    lowering.groups_by_head = {}
    for head_name, members in groups.items():
        head = index.nodes[head_name]
        tail = index.nodes[members[-1]]
        if head.op != "Conv2D" or tail.op in ACTIVATIONS:
            continue
        add = _sole_data_reader(index, tail)
        if add is None or add.op not in ADD_OPS or add.name not in quantized:
            continue
        operands = [canonical_input(i) for i in add.input if not i.startswith("^")]
        if len(operands) != 2 or operands.count(tail.name) != 1:
            continue
        summand = operands[1 - operands.index(tail.name)]
        act = _sole_data_reader(index, add)
        if act is None or act.op not in ACTIVATIONS or act.name not in quantized:
            continue
        # The summand must be lowered before the conv (the conv is lowered at its own place
        # in topological order, and reads the summand's int8 form).
        source = index.get(summand)
        if source is None or order.get(source.name, -1) > order[head_name]:
            continue
        if not _nonnegative(lowering, summand):
            continue
        members.extend([add.name, act.name])
        lowering.summands[head_name] = summand
        lowering.groups_by_head[head_name] = members


def _ancestors(index, name):
    seen, pending = set(), [name]
    while pending:
        for inp in index.nodes[pending.pop()].input:
            src = split_input(inp)[0]
            if src not in seen:
                seen.add(src)
                pending.append(src)
    return seen


def _nonnegative(lowering, tensor):
    return zero_at_zero.holds(lowering.ranges.get(tensor, lowering.fallback_range))


def _sole_data_reader(index, node):
    readers = [(r, i) for r, i in index.consumers.get(node.name, [])
               if not r.input[i].startswith("^")]
    if len(readers) != 1 or split_input(readers[0][0].input[readers[0][1]])[1] != 0:
        return None
    return readers[0][0]


def summand_input(lowering, head_name):
    """The quint8 summand for the fused conv at `head_name` (a private copy where other
    nodes read it too), or None when it cannot be quint8."""
    summand = lowering.summands[head_name]
    q = lowering._input(summand)
    if q is None:
        return None
    name, port, _ = split_input(summand)
    # Readers the conv depends on have finished before it runs and overwrites the buffer;
    # any other reader (or a Dequantize for a float one) could see the sum instead.
    head_ancestors = _ancestors(lowering.index, head_name)
    add = lowering.index.nodes[lowering.groups_by_head[head_name][-2]]
    others = [r for r, _ in lowering.index.data_consumers(name, port)
              if r.name != add.name and r.name not in head_ancestors]
    # A fed summand is not produced in-graph (and --quantized_input may later feed its codes).
    fed = lowering.index.node(summand).op == "Placeholder"
    if COPY_SHARED_SUMMAND and (others or fed):
        copy = lowering._emit("QuantizedMaxPool", summand.replace(":", "_") + "/eightbit_summand_copy",
                              [q.tensor, q.min, q.max], {"T": tf.quint8})
        copy.attr["ksize"].list.i.extend([1, 1, 1, 1])
        copy.attr["strides"].list.i.extend([1, 1, 1, 1])
        copy.attr["padding"].s = b"VALID"
        q = q._replace(tensor=copy.name)
    return q


def sum_inputs(lowering, head, members):
    """The extra inputs (summand, min_summand, max_summand) of the fused conv for a group
    that holds an Add, [] for one that does not, None when the summand cannot be quint8."""
    if not any(lowering.index.nodes[m].op in ADD_OPS for m in members):
        return []
    q = summand_input(lowering, head.name)
    if q is None:
        return None
    # The summand's declared range is (0, M): emit it as Consts, like the other ranges.
    base = members[-1] + "/eightbit"
    return [q.tensor, lowering._const(base + "_min_summand", 0.0),
            lowering._const(base + "_max_summand", q.magnitude)]
