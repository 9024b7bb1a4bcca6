"""The fused-pattern lowering shared by the onednn and kernels targets: match the groups
(graph/patterns.py), plan them (the target's residual Adds; per group, in topological order,
emit or keep float with the reason, and the specs of its tensors: ops/<pattern>.py plan_<target>
through the ops registry), then emit the planned groups in the same order (emit_<target>).
Float readers and graph outputs get the target's Dequantize of each 8-bit result.
"""
import dataclasses
from typing import Callable, Tuple

from quantize_graph.annotate import Decision
from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph import patterns
from quantize_graph.graph.edit import graph_with_nodes
from quantize_graph.lowering.context import EmitContext
from quantize_graph.lowering.plan import GroupPlan, PlanState, keep_float
from quantize_graph.ops.common import Lowering
from quantize_graph.ops.registry import handler

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
    """What a fused target does with each group, in the order the groups are emitted."""
    groups: Tuple[GroupPlan, ...]

    def float_reasons(self):
        return {m: p.float_reason for p in self.groups if not p.emitted for m in p.group.members}


def plan(ctx, target):
    """The target's Plan for the quantized nodes of ctx's graph: its groups (with the residual
    Adds it fuses), each planned at its place in topological order (its head, or its tail for
    a target that anchors there)."""
    convs = target.fuse_residuals(ctx, patterns.conv_groups(ctx.index, ctx.quantized_nodes, ctx.shapes))
    taken = {m for g in convs for m in g.members}
    singles = [patterns.single_group(ctx.index.nodes[n]) for n in sorted(ctx.quantized_nodes)
               if n not in taken]
    anchors = {(g.tail if target.anchor_at_tail else g.head): g for g in convs}
    anchors.update({g.node: g for g in singles})
    state = PlanState(ctx)
    plans = []
    for name in ctx.index.topological_order():
        if name in anchors:
            group = anchors[name]
            plans.append(_lowering(ctx, group, target).plan(state, group))
    return Plan(tuple(plans))


def lower_patterns(graph_def, decision, target, ranges, fallback_range=None, bias_corrections=None):
    """(the lowered GraphDef, the Decision with the nodes the target kept float and why)."""
    if not ranges and fallback_range is None:
        raise QuantizeGraphError(
            "the %s target freezes every range: give --calibration_data (or --ranges_in, "
            "or --quantized_fallback_min/max), or use --target=reference" % target.name)
    ctx = EmitContext(graph_def, decision.quantized, target.quantize_weights, ranges, fallback_range,
                      bias_corrections)
    lowering_plan = plan(ctx, target)
    for group_plan in lowering_plan.groups:
        if group_plan.emitted:
            _lowering(ctx, group_plan.group, target).emit(ctx, group_plan)
    for name in sorted(ctx.produced):
        target.dequantize(ctx, name, ctx.tensors[name])
    kept = [n for n in graph_def.node if n.name not in ctx.replaced]
    reasons = lowering_plan.float_reasons()
    float_reasons = dict(decision.float_reasons)
    float_reasons.update(reasons)
    return (graph_with_nodes(graph_def, kept + ctx.new_nodes),
            Decision(set(decision.quantized) - set(reasons), float_reasons))


_UNMATCHED = Lowering(lambda state, group: keep_float(group, ONLY_FUSED), None)


def _lowering(ctx, group, target):
    """The target's Lowering (plan, emit) of a group, from its pattern module (ops registry)."""
    if isinstance(group, patterns.Unmatched):
        return _UNMATCHED
    op = group.op if isinstance(group, patterns.ConvGroup) else ctx.index.nodes[group.node].op
    return handler(op).lower[target.name]
