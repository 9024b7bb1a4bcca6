"""Maps an op type to the module that knows how to quantize it.

Each op family lives in its own module (conv.py, matmul.py, ...) and registers an OpHandler
per op type: `supports(node)` says whether the node can run in 8 bits (attributes a target
cannot handle keep it float), and `lower[target](ctx, node)` emits the quantized nodes.
"""
import collections

OpHandler = collections.namedtuple("OpHandler", ["supports", "lower"])

# Lowerings that are not per-node functions. A target that fuses ops (onednn) lowers whole
# patterns in its own module; its entries here only say that the op may be quantized there.
LOWERED_BY_TARGET = "lowered by the target module, alone or as the head of a fused pattern"
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
    from quantize_graph.ops import activation, add, bias_add, concat, conv, depthwise, matmul, pool, reshape  # noqa: F401
