"""Maps an op type to the module that knows how to quantize it.

Each pattern lives in its own module (conv.py, matmul.py, pool.py, ...), whose HANDLERS hold
an OpHandler per op type (common.handlers): `supports(node)` says whether the node can run in
8 bits (attributes a target cannot handle keep it float), and `lower[target]` is the target's
emitter: for
`reference` a per-node function (ctx: targets/reference.ReferenceLowering, node), for the
fused targets (onednn, kernels) a per-group function (ctx: lowering/context.EmitContext, a
graph/patterns group; the group's head op selects it) returning None when emitted, else why
the group stays float.
"""
from quantize_graph.ops import activation, add, bias_add, concat, conv, matmul, pool, reshape

HANDLERS = {**activation.HANDLERS, **add.HANDLERS, **bias_add.HANDLERS, **concat.HANDLERS,
            **conv.HANDLERS, **matmul.HANDLERS, **pool.HANDLERS, **reshape.HANDLERS}


def handler(op):
    """The OpHandler of an op type, None if no module handles it."""
    return HANDLERS.get(op)
