"""Maps an op type to the module that knows how to quantize it.

Each pattern lives in its own module (conv.py, matmul.py, pool.py, ...) and registers an
OpHandler per op type: `supports(node)` says whether the node can run in 8 bits (attributes a
target cannot handle keep it float), and `lower[target]` is the target's emitter: for
`reference` a per-node function (ctx: targets/reference.ReferenceLowering, node), for the
fused targets (onednn, kernels) a per-group function (ctx: lowering/context.EmitContext, a
graph/patterns group; the group's head op selects it) returning None when emitted, else why
the group stays float.
"""
import collections

OpHandler = collections.namedtuple("OpHandler", ["supports", "lower"])

# For the fused targets, BiasAdd, Relu/Relu6 and Add have no emitter of their own: they may be
# quantized, as members of the ConvGroup that the conv/matmul emitter lowers.
FUSED_INTO_PRODUCER = "quantized only when fused into the conv/matmul that produces its input"

HANDLERS = {}


def register(op_types, supports, **lowerings):
    for op in op_types:
        HANDLERS[op] = OpHandler(supports, dict(lowerings))


def handler(op):
    _load_all()
    return HANDLERS.get(op)


def _load_all():
    # Importing the modules fills HANDLERS; kept lazy so the registry has no import cycle.
    from quantize_graph.ops import activation, add, bias_add, concat, conv, matmul, pool, reshape  # noqa: F401
