"""Maps an op type to the module that knows how to quantize it.

Each op family lives in its own module (conv.py, matmul.py, ...) and registers an OpHandler
per op type: `supports(node)` says whether the node can run in 8 bits (attributes a target
cannot handle keep it float), and `lower[target](ctx, node)` emits the quantized nodes.
"""
import collections

OpHandler = collections.namedtuple("OpHandler", ["supports", "lower"])

HANDLERS = {}


def register(op_types, supports, **lowerings):
    for op in op_types:
        HANDLERS[op] = OpHandler(supports, dict(lowerings))


def handler(op):
    _load_all()
    return HANDLERS.get(op)


def _load_all():
    # Importing the modules fills HANDLERS; kept lazy so the registry has no import cycle.
    from quantize_graph.ops import activation, bias_add, concat, conv, matmul, pool, reshape  # noqa: F401
