"""Lowering of the fused targets (onednn, kernels): match -> plan -> emit.

graph/patterns.py finds the groups; driver.py plans them (the target's residual Adds, then per
group, in topological order, ops/<pattern>.py plan_<target>: an immutable plan.py GroupPlan)
and emits the planned groups (emit_<target>) on an EmitContext (context.py), with the target's
building blocks (onednn.py, kernels.py, onednn_residual.py, onednn_signed_input.py)."""
