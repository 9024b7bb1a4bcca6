"""The onednn target's building blocks for the emitters (ops/*.py): quint8 with zero at code 0
in, symmetric or [0, M] ranges out, Dequantize (SCALED) where a float op reads. The facts
they rest on: targets/onednn.py and docs/onednn_notes.md."""
import tensorflow as tf

from quantize_graph.graph.names import canonical_input, tensor_name
from quantize_graph.graph.nodes import create_node, set_attr_dtype, set_attr_string
from quantize_graph.graph.patterns import ACTIVATION_CAPS
from quantize_graph.lowering.context import Quantized
from quantize_graph.lowering.plan import SYMMETRIC, ZERO_AT_0, TensorSpec


def input_spec(state, inp):
    """How a float tensor enters a onednn op: quint8 with zero at code 0 over [0, M], as it was
    quantized before or is written by an int8 op; None if it can't (calibrated negative, or
    written as qint8)."""
    key = canonical_input(inp)
    if key in state.specs:
        spec = state.specs[key]
        return spec if spec.scheme == ZERO_AT_0 else None
    if not state.ctx.nonnegative(key):
        return None
    return state.record(key, TensorSpec(inp, ZERO_AT_0, 0.0, max(state.ctx.range_of(key)[1], 1e-6)))


def quantize(ctx, spec):
    """The Quantized form of a ZERO_AT_0 input spec: the int8 result or QuantizeV2 made before,
    else a new QuantizeV2 (SCALED, HALF_TO_EVEN)."""
    key = canonical_input(spec.tensor)
    if key in ctx.tensors:
        return ctx.tensors[key]
    base = key.replace(":", "_") + "/eightbit"
    lo = ctx.const(base + "_min", 0.0)
    hi = ctx.const(base + "_max", spec.hi)
    q = ctx.emit("QuantizeV2", base + "_quantize", [spec.tensor, lo, hi], {"T": tf.quint8})
    set_attr_string(q, "mode", b"SCALED")
    set_attr_string(q, "round_mode", b"HALF_TO_EVEN")
    result = Quantized(q.name, tensor_name(q.name, 1), tensor_name(q.name, 2), tf.quint8, spec.hi)
    ctx.tensors[key] = result
    return result


def output_spec(ctx, name, activation=None):
    """A result's frozen range: [0, M] (quint8) after Relu/Relu6 (M capped at 6 for Relu6),
    else [-M, M] (qint8)."""
    if activation is not None:
        return TensorSpec(name, ZERO_AT_0, 0.0, output_magnitude(ctx, name, ACTIVATION_CAPS[activation]))
    magnitude = output_magnitude(ctx, name)
    return TensorSpec(name, SYMMETRIC, -magnitude, magnitude)


DTYPES = {ZERO_AT_0: tf.quint8, SYMMETRIC: tf.qint8}


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
