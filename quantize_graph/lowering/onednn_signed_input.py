"""Signed inputs to convolutions whose windows never reach padding (1x1, or VALID), in the
onednn target.

The fused int8 convs take quint8 input with zero at code 0, so a tensor that calibration
saw negative (MobileNet-v2's linear bottlenecks and residual sums, read by the next 1x1
expand conv) would keep its reader float. Instead it is quantized with an offset:
`QuantizeV2(MIN_FIRST)` over the calibrated [lo, hi] gives codes u = round((x - lo) * 255 /
(hi - lo)) (measured exact and rewritten to oneDNN; docs/onednn_notes.md), the conv is told
its input range is [0, hi - lo], so it computes conv(x - lo), and since no window reads
padding, conv(x) = conv(x - lo) + lo * sum of each output channel's weights: that constant
goes into the bias, computed from the quantized weights so it cancels exactly.
"""
import collections

import numpy as np
import tensorflow as tf

from quantize_graph.graph.names import canonical_input, tensor_name
from quantize_graph.graph.nodes import set_attr_string
from quantize_graph.lowering.plan import OFFSET, SYMMETRIC, TensorSpec
from quantize_graph.weight_schemes import onednn_values

# A Quantized (lowering/context.py) whose codes q mean q * magnitude / 255 + offset_lo.
OffsetQuantized = collections.namedtuple(
    "OffsetQuantized", ["tensor", "min", "max", "dtype", "magnitude", "offset_lo"])


def offset_spec(state, head):
    """The OFFSET spec of the signed input of `head` over its calibrated [lo, hi], or None
    when it cannot be used (not a Conv2D whose windows avoid padding, or no range). One per
    tensor, kept apart from its other forms (the same tensor may also be read as ZERO_AT_0)."""
    if head.op != "Conv2D" or not _no_padding(state.ctx, head):
        return None
    key = canonical_input(head.input[0])
    if key in state.offset_specs:
        return state.offset_specs[key]
    # A qint8 result (conv without activation) is requantized from its float form (the
    # Dequantize named like it): the fused convs take no qint8 input that is exact.
    rng = _qint8_grid(state.specs.get(key)) or state.ctx.range_of(key)
    if rng is None or not rng[1] > rng[0]:
        return None
    state.offset_specs[key] = TensorSpec(head.input[0], OFFSET, float(rng[0]), float(rng[1]))
    return state.offset_specs[key]


def offset_input(ctx, spec):
    """The OffsetQuantized form of an OFFSET spec (QuantizeV2 MIN_FIRST over [lo, hi], declared
    to the conv as [0, hi - lo]), made once per tensor (ctx.offset_tensors)."""
    key = canonical_input(spec.tensor)
    if key in ctx.offset_tensors:
        return ctx.offset_tensors[key]
    lo, hi = spec.lo, spec.hi
    base = key.replace(":", "_") + "/eightbit_offset"
    q = ctx.emit("QuantizeV2", base + "_quantize",
                 [spec.tensor, ctx.const(base + "_min", lo), ctx.const(base + "_max", hi)],
                 {"T": tf.quint8})
    set_attr_string(q, "mode", b"MIN_FIRST")
    result = OffsetQuantized(tensor_name(q.name, 0), ctx.const(base + "_range_min", 0.0),
                             ctx.const(base + "_range_max", hi - lo), tf.quint8, hi - lo, lo)
    ctx.offset_tensors[key] = result
    return result


def _qint8_grid(spec):
    """[lo, hi] whose 256 codes are the qint8 result's own grid shifted by 128 codes, when the
    input is a qint8 result over +-M: then each code c becomes c + 128 exactly. Another range
    puts a second grid over the first: with the calibrated [-M, M], every code near 0 sits on
    a rounding tie and moves half a step away from 0 (MobileNet-v2's linear bottlenecks: the
    error added at each expand conv's input 3x plain rounding's)."""
    if spec is None or spec.scheme != SYMMETRIC:
        return None
    step = float(spec.hi) / 127.0
    return (-128.0 * step, 127.0 * step)


def offset_bias(codes, w_max, lo):
    """lo * sum over taps and input channels of the dequantized weights, per output channel."""
    return (lo * onednn_values(codes, w_max).sum(axis=(0, 1, 2))).astype(np.float32)


def _no_padding(ctx, head):
    if head.attr["padding"].s == b"VALID":
        return True
    kernel = ctx.index.node(head.input[1]).attr["value"].tensor.tensor_shape.dim
    return len(kernel) == 4 and kernel[0].size == 1 and kernel[1].size == 1
