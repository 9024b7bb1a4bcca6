"""The onednn target's building blocks for the emitters (ops/*.py): quint8 with zero at code 0
in, symmetric or [0, M] ranges out, Dequantize (SCALED) where a float op reads. The facts
they rest on: targets/onednn.py and docs/onednn_notes.md."""
import tensorflow as tf

from quantize_graph.graph.names import canonical_input, tensor_name
from quantize_graph.graph.nodes import create_node, set_attr_dtype, set_attr_string
from quantize_graph.lowering.context import Quantized


def quantize_input(ctx, inp):
    """The quint8 form (zero at code 0) of a float tensor, quantizing it if needed; None if it
    can't be (calibrated negative, or already int8 as qint8)."""
    key = canonical_input(inp)
    if key in ctx.tensors:
        q = ctx.tensors[key]
        return q if q.dtype == tf.quint8 else None
    if not ctx.nonnegative(key):
        return None
    magnitude = max(ctx.range_of(key)[1], 1e-6)
    base = key.replace(":", "_") + "/eightbit"
    lo = ctx.const(base + "_min", 0.0)
    hi = ctx.const(base + "_max", magnitude)
    q = ctx.emit("QuantizeV2", base + "_quantize", [inp, lo, hi], {"T": tf.quint8})
    set_attr_string(q, "mode", b"SCALED")
    set_attr_string(q, "round_mode", b"HALF_TO_EVEN")
    result = Quantized(q.name, tensor_name(q.name, 1), tensor_name(q.name, 2), tf.quint8, magnitude)
    ctx.tensors[key] = result
    return result


def output_magnitude(ctx, name, cap=None):
    """The largest magnitude of a result's frozen symmetric (qint8) or [0, M] (quint8) range."""
    rng = ctx.calibrated_range(name)
    top = max(abs(rng[0]), abs(rng[1]))
    if cap is not None:
        top = min(top, cap)
    return max(top, 1e-6)


def dequantize(ctx, name, q):
    """A Dequantize named like each replaced tensor, for float readers and graph outputs; the
    final prune drops those nobody reads."""
    dq = create_node("Dequantize", name, [q.tensor, q.min, q.max])
    set_attr_dtype(dq, "T", q.dtype)
    set_attr_string(dq, "mode", b"SCALED")
    ctx.add(dq)
