"""float32 -> bfloat16 rounding of weights that keeps each output channel's mean output.

Rounding each weight to the nearest bfloat16 moves an output channel by x * sum(errors) on
smooth inputs, the same for every photo: a systematic shift. After batch-norm folding some
channels are large weights that nearly cancel, so that shift is not small beside the signal
(MobileNet v1 0.25: top-1 agreement with float 0.937 from weight rounding alone on 300
photos). As `passes/weights.round_keeping_sums` does for 8-bit levels, some values go to the
other neighbour, those nearest the midpoint first, until the channel's sum of errors is as
small as it gets; each value still moves by less than one bfloat16 step.

That sum stands for the shift only if every input channel has the same mean. Where the batch
norms give each input channel's E[x] and Var[x], `round_keeping_means` weighs each error by
its input's mean, rounds the bias in the same sum, and stops where the noise the moved weights
add outweighs the shift they remove (`passes/bfloat16_means.py` drives it layer by layer).
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
    """Per-channel factors s (within 2^-8 of 1: half a bfloat16 step) that make bias * s a
    bfloat16 value.

    A folded batch norm leaves biases that nearly cancel a large conv result; a bias rounded to
    bfloat16 moves its channel by up to |b| * 2^-8 for every input alike. Scaling the whole
    channel (filter and bias) by s instead changes its gain by the same tiny relative amount,
    which is no larger than the filter's own rounding."""
    bias = np.asarray(bias, np.float32)
    target = bias.astype(BF16).astype(np.float64)
    safe = np.where(bias == 0, 1.0, bias.astype(np.float64))
    return np.where(bias == 0, 1.0, target / safe)


# The channel scales tried by `round_keeping_means` besides 1 and the one that makes the bias
# exact (within 2^-8 of 1): these within 2^-9. Tried for filters of at most SEARCH_ROWS
# values per channel (depthwise 3x3: 9; 1x1 convs of up to 64 channels), where flips alone
# cancel a shift less cheaply.
SCALE_CANDIDATES = 1.0 + np.linspace(-1.0, 1.0, 33) * 2.0 ** -9
SEARCH_ROWS = 64


def round_keeping_means(w, bias, means, variances=None, search=True, clipped=None):
    """(w * s, bias * s, s) rounded to bfloat16 values (as float32) for one s per channel.

    w: [rows, channels] (a filter with its output channels last); bias: [channels]; means and
    variances: E[x] and Var[x] of the input each weight multiplies, broadcastable to w. With
    independent inputs, rounding adds to channel c's output a squared error of
        (sum_r err[r, c] * means[r, c] + bias err[c])^2 + sum_r err[r, c]^2 * variances[r, c]:
    a shift, the same on every input (a folded batch norm's bias nearly cancels the conv result,
    so it is large beside the signal), and noise. Weights go to their other bfloat16 neighbour,
    least added noise per shift removed first, while that sum falls. s: the one that makes the
    bias exact (`exact_bias_scales`), 1, or for short filters whichever of SCALE_CANDIDATES
    leaves the least error (`search=False`: the first only). Without variances the noise is
    counted as if every input had variance 1.

    clipped: (p_linear, bound * p_bound) per channel, where a Relu6 reads the channel: the layer
    after divides s out, so the bound is seen at 6/s and a channel at its bound p_bound of the
    time moves by 6 (1/s - 1) on average; a shift before the Relu6 passes p_linear of the time.
    The two are weighed together so that the Relu6's mean output is what is kept.
    """
    w, bias = np.asarray(w, np.float64), np.asarray(bias, np.float64)
    means = np.broadcast_to(np.asarray(means, np.float64), w.shape)
    variances = np.broadcast_to(np.asarray(1.0 if variances is None else variances, np.float64), w.shape)
    exact = exact_bias_scales(bias.astype(np.float32)).astype(np.float64)
    candidates = [exact, np.ones(w.shape[1])] if search else [exact]
    if search and w.shape[0] <= SEARCH_ROWS:
        candidates += [np.full(w.shape[1], s) for s in SCALE_CANDIDATES]
    linear, at_bound = (np.ones(w.shape[1]), np.zeros(w.shape[1])) if clipped is None else clipped
    linear = np.maximum(linear, 1e-3)
    best = None
    for scale in candidates:
        # The bound's move, in units before the Relu6 (times s): what the flips aim to offset.
        bound_shift = at_bound * (1.0 - scale) / linear
        q, error = _flipped(w * scale, bias * scale, means, variances, bound_shift)
        error = error * (linear / scale) ** 2
        if best is None:
            best = [q, error, scale]
            continue
        better = error < best[1]
        best[0][:, better], best[1][better], best[2][better] = q[:, better], error[better], scale[better]
    q, _, scale = best
    return q.astype(np.float32), _bf16(bias * scale).astype(np.float32), scale


def _flipped(ws, bs, means, variances, offset=0.0):
    """(ws rounded to bfloat16, the squared error per channel: (shift + offset)^2 + noise)."""
    nearest, other = (a.astype(np.float64) for a in neighbours(ws))
    total = ((nearest - ws) * means).sum(axis=0) + _bf16(bs) - bs + offset
    noise = ((nearest - ws) ** 2 * variances).sum(axis=0)
    change = (other - nearest) * means  # what flipping one value adds to the shift
    more_noise = ((other - ws) ** 2 - (nearest - ws) ** 2) * variances
    useful = (np.sign(change) == -np.sign(total)) & (change != 0)
    cost = np.where(useful, more_noise / np.where(useful, np.abs(change), 1.0), np.inf)
    order = np.argsort(cost, axis=0, kind="stable")
    pick = lambda a: np.take_along_axis(np.where(useful, a, 0.0), order, axis=0)
    shifts = np.concatenate([total[None, :], total + np.cumsum(pick(change), axis=0)])
    noises = np.concatenate([noise[None, :], noise + np.cumsum(pick(more_noise), axis=0)])
    errors = shifts ** 2 + noises
    flips = np.argmin(errors, axis=0)  # how many of each channel's order to flip
    flip = np.zeros(ws.shape, bool)
    np.put_along_axis(flip, order, np.arange(ws.shape[0])[:, None] < flips[None, :], axis=0)
    return np.where(flip, other, nearest), np.take_along_axis(errors, flips[None, :], axis=0)[0]


def _bf16(values):
    return np.asarray(values, np.float32).astype(BF16).astype(np.float64)
