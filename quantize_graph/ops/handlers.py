"""The table the op modules fill: op type -> OpHandler (registry.py reads it).

`supports(node)` says whether the node can run in 8 bits (attributes a target cannot handle
keep it float), and `lower[target](ctx, node)` emits the quantized nodes. Kept apart from
registry.py, which imports every op module, so that no op module imports its importer.
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
