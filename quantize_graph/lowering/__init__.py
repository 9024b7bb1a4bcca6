"""Lowering of the fused targets (onednn, kernels): match -> plan -> emit.

graph/patterns.py finds the groups; each target's plan (targets/<target>.py) picks the
residual Adds it fuses and where each group is lowered; driver.py walks the plan in
topological order and calls the group's emitter (ops/<pattern>.py, through the ops registry)
on an EmitContext (context.py)."""
