"""float32 -> bfloat16 rounding of weights that keeps each output channel's error sum near 0.

Rounding each weight to the nearest bfloat16 moves an output channel by x * sum(errors) on
smooth inputs, the same for every photo: a systematic shift. After batch-norm folding some
channels are large weights that nearly cancel, so that shift is not small beside the signal
(MobileNet v1 0.25: top-1 agreement with float 0.937 from weight rounding alone on 300
photos). As `passes/weights.round_keeping_sums` does for 8-bit levels, some values go to the
other neighbour, those nearest the midpoint first, until the channel's sum of errors is as
small as it gets; each value still moves by less than one bfloat16 step.
"""
import numpy as np
import tensorflow as tf

BF16 = tf.bfloat16.as_numpy_dtype


def neighbours(values):
    """(nearest bfloat16, the bfloat16 on the other side of the value), as float32."""
    values = np.asarray(values, np.float32)
    nearest = values.astype(BF16).astype(np.float32)
    # The other neighbour: one bfloat16 step from `nearest` towards the value.
    bits = nearest.view(np.uint32).astype(np.int64)
    toward_zero = np.abs(values) < np.abs(nearest)
    step = np.where(toward_zero, -(1 << 16), 1 << 16)  # the low 16 bits are zero in bf16
    other = np.where(values == nearest, nearest,
                     (bits + step).astype(np.uint32).view(np.float32))
    # Crossing zero: the other side of 0 is 0 itself, not a huge magnitude.
    other = np.where(nearest == 0, 0.0, other).astype(np.float32)
    return nearest, other


def round_keeping_sums(values, axis):
    """`values` (float32) rounded to bfloat16 values, channel by channel along `axis`."""
    values = np.asarray(values, np.float32)
    nearest, other = neighbours(values)
    moved = [np.moveaxis(a, axis, -1).reshape(-1, values.shape[axis]).astype(np.float64)
             for a in (values, nearest, other)]
    v, near, alt = moved
    out = near.copy()
    for c in range(v.shape[1]):
        err = near[:, c] - v[:, c]
        total = err.sum()
        change = alt[:, c] - near[:, c]          # what flipping one value adds to the sum
        useful = np.flatnonzero(np.sign(change) == -np.sign(total))
        # Cheapest first: the values nearest the midpoint cost least extra error.
        order = useful[np.argsort(np.abs(alt[useful, c] - v[useful, c]), kind="stable")]
        steps = np.cumsum(change[order])
        # Flip the prefix that brings the sum nearest to zero.
        best = int(np.argmin(np.abs(np.concatenate([[total], total + steps]))))
        out[order[:best], c] = alt[order[:best], c]
    shaped = np.moveaxis(values, axis, -1).shape
    return np.moveaxis(out.reshape(shaped), -1, axis).astype(np.float32).astype(BF16)


def exact_bias_scales(bias):
    """Per-channel factors s (within 2^-9 of 1) that make bias * s a bfloat16 value.

    A folded batch norm leaves biases that nearly cancel a large conv result; a bias rounded to
    bfloat16 moves its channel by up to |b| * 2^-9 for every input alike. Scaling the whole
    channel (filter and bias) by s instead changes its gain by the same tiny relative amount,
    which is no larger than the filter's own rounding."""
    bias = np.asarray(bias, np.float32)
    target = bias.astype(BF16).astype(np.float64)
    safe = np.where(bias == 0, 1.0, bias.astype(np.float64))
    return np.where(bias == 0, 1.0, target / safe)
