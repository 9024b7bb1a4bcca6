"""Maps an op type to the module that knows how to quantize it.

Each op family lives in its own module (conv.py, matmul.py, ...) and registers an OpHandler
per op type in handlers.py; importing them all here fills the table.
"""
from quantize_graph.ops import activation, add, bias_add, concat, conv, depthwise, matmul, pool, reshape  # noqa: F401
from quantize_graph.ops.handlers import (FUSED_INTO_PRODUCER, HANDLERS, LOWERED_BY_TARGET,  # noqa: F401
                                         OpHandler, register)


def handler(op):
    return HANDLERS.get(op)
