"""The fused-pattern lowering shared by the onednn and kernels targets: match the groups
(graph/patterns.py), let the target plan them (which residual Adds it fuses, where each group
is lowered), then emit each group at its place in topological order with the target's emitter
(ops/<pattern>.py, through the ops registry). A group whose emitter declines stays float, with
the reason; float readers and graph outputs get the target's Dequantize of each 8-bit result.
"""
import dataclasses
import types
from typing import Callable, Mapping, Tuple

from quantize_graph.annotate import Decision
from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph import patterns
from quantize_graph.graph.edit import graph_with_nodes
from quantize_graph.lowering.context import EmitContext
from quantize_graph.ops.registry import handler

NOT_FUSED = "not fused into a quantized conv/matmul"
ONLY_FUSED = "only fused into a quantized conv/matmul"


@dataclasses.dataclass(frozen=True)
class FusedTarget:
    """What the driver needs from a target (targets/onednn.py, targets/kernels.py)."""
    name: str                   # the ops registry's key for its emitters
    fuse_residuals: Callable    # (ctx, [ConvGroup]) -> [ConvGroup]: the residual Adds it fuses
    dequantize: Callable        # (ctx, float tensor name, Quantized): the float value again
    quantize_weights: Callable  # (op, float weights, transpose_b) -> what its int8 op takes
    anchor_at_tail: bool        # lower a group at its last member (else at its head)


@dataclasses.dataclass(frozen=True)
class Plan:
    groups: Tuple[object, ...]            # every group to lower
    anchors: Mapping[str, object]         # node name -> the group lowered at its place
    absorbed: frozenset                   # members of ConvGroups other than their heads


def plan(ctx, target):
    """The target's Plan for the quantized nodes of ctx's graph."""
    convs = target.fuse_residuals(ctx, patterns.conv_groups(ctx.index, ctx.quantized_nodes, ctx.shapes))
    taken = {m for g in convs for m in g.members}
    singles = [patterns.single_group(ctx.index.nodes[n]) for n in sorted(ctx.quantized_nodes)
               if n not in taken]
    anchors = {(g.tail if target.anchor_at_tail else g.head): g for g in convs}
    anchors.update({g.node: g for g in singles})
    return Plan(tuple(convs) + tuple(singles), types.MappingProxyType(anchors),
                frozenset(m for g in convs for m in g.members[1:]))


def lower_patterns(graph_def, decision, target, ranges, fallback_range=None, bias_corrections=None):
    """(the lowered GraphDef, the Decision with the nodes the target kept float and why)."""
    if not ranges and fallback_range is None:
        raise QuantizeGraphError(
            "the %s target freezes every range: give --calibration_data (or --ranges_in, "
            "or --quantized_fallback_min/max), or use --target=reference" % target.name)
    ctx = EmitContext(graph_def, decision.quantized, target.quantize_weights, ranges, fallback_range,
                      bias_corrections)
    lowering_plan = plan(ctx, target)
    reasons = {}
    for name in ctx.index.topological_order():
        group = lowering_plan.anchors.get(name)
        if group is None:
            continue
        why = _emitter(ctx, group, target)(ctx, group)
        if why is not None:
            for member in group.members:
                reasons.setdefault(member, why)
    for name in lowering_plan.absorbed - ctx.replaced:
        reasons.setdefault(name, NOT_FUSED)
    for name in sorted(ctx.produced):
        target.dequantize(ctx, name, ctx.tensors[name])
    kept = [n for n in graph_def.node if n.name not in ctx.replaced]
    float_reasons = dict(decision.float_reasons)
    float_reasons.update(reasons)
    return (graph_with_nodes(graph_def, kept + ctx.new_nodes),
            Decision(set(decision.quantized) - set(reasons), float_reasons))


def _emitter(ctx, group, target):
    """The target's emitter for a group: (ctx, group) -> None when emitted, else why not."""
    if isinstance(group, patterns.Unmatched):
        return lambda ctx, group: ONLY_FUSED
    op = group.op if isinstance(group, patterns.ConvGroup) else ctx.index.nodes[group.node].op
    return handler(op).lower[target.name]
