"""Every Qg op (kernels/OPS.md) against the NumPy reference: integer accumulators and 8-bit
outputs exact, float outputs to float32 rounding; random shapes, strides, dilations, padding."""
import numpy as np
import pytest

from quantize_graph.kernels import numpy_reference as R
from tests.kernels_helpers import (POOL_CASES, concat_cases, load_or_skip, nhwc, np_out,
                                   pool_input, s8, u8)

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def qg():
    return load_or_skip()


def _rand_range(rng):
    """A valid activation range, zero inside, zero point anywhere in [0, 255]."""
    lo = float(rng.uniform(-4, 0))
    hi = float(rng.uniform(0.5, 6))
    return lo, hi


def _conv_case(rng, depthwise=False, wmax=127):
    n = int(rng.integers(1, 3))
    h, w = (int(v) for v in rng.integers(1, 14, 2))
    c = int(rng.integers(1, 21))
    kh, kw = (int(v) for v in rng.integers(1, 4, 2))
    cout = int(rng.integers(1, 3)) if depthwise else int(rng.integers(1, 40))
    return dict(
        x=rng.integers(0, 256, (n, h, w, c), dtype=np.uint8),
        w=rng.integers(-wmax, wmax + 1, (kh, kw, c, cout), dtype=np.int8),
        strides=tuple(int(v) for v in rng.integers(1, 4, 2)),
        dilations=tuple(int(v) for v in rng.integers(1, 3, 2)),
        padding=str(rng.choice(["SAME", "VALID"])),
    )


def _exact_acc(qg, fn, case, zp):
    """int32 accumulators through the float output: input scale 1, filter scale 1, bias 0."""
    depthwise = fn is qg.qg_quantized_depthwise_conv2d
    cout = case["w"].shape[3] * (case["w"].shape[2] if depthwise else 1)
    ones, zeros = np.ones(cout, np.float32), np.zeros(cout, np.float32)
    summand = () if depthwise else ([], [], [])
    out = fn(u8(case["x"]), s8(case["w"]), ones, zeros, float(-zp), float(255 - zp), 0.0, 1.0,
             *summand, strides=nhwc(case["strides"]), padding=case["padding"],
             dilations=nhwc(case["dilations"]), out_type=tf.float32)[0]
    return out.numpy()


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("wmax", [127, 64])
def test_conv2d_accumulators_exact(qg, seed, wmax):
    """wmax 64: every weight pair fits the AVX2 byte kernel (|w0| + |w1| <= 128), which then
    runs instead of the int16 one; both must be exact."""
    rng = np.random.default_rng(seed)
    case = _conv_case(rng, wmax=wmax)
    zp = int(rng.integers(0, 256))
    got = _exact_acc(qg, qg.qg_quantized_conv2d, case, zp)
    want = R.conv2d_acc(case["x"], zp, case["w"], case["strides"], case["padding"],
                        case["dilations"])
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want.astype(np.float32))


@pytest.mark.parametrize("alternate", [False, True])
def test_conv2d_1x1_rows_read_in_place_exact(qg, alternate):
    """1x1 stride-1 with C a multiple of 4 and byte-kernel weights: whole panels of rows are
    read straight from the input (no copy), the last 5 rows (35 = 5 * 6 + 5) from a copy.
    alternate: full-size codes of alternating sign along C (opposite-sign pairs cannot
    saturate int16, so the byte kernel takes them too)."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, (1, 5, 7, 24), dtype=np.uint8)
    if alternate:
        mag = rng.integers(0, 128, (1, 1, 24, 20))
        w = np.where(np.arange(24)[None, None, :, None] % 2 == 1, -mag, mag).astype(np.int8)
    else:
        w = rng.integers(-64, 65, (1, 1, 24, 20), dtype=np.int8)
    case = dict(x=x, w=w, strides=(1, 1), dilations=(1, 1), padding="VALID")
    got = _exact_acc(qg, qg.qg_quantized_conv2d, case, 131)
    want = R.conv2d_acc(x, 131, w, (1, 1), "VALID", (1, 1))
    np.testing.assert_array_equal(got, want.astype(np.float32))


@pytest.mark.parametrize("constant", [False, True])
def test_new_weights_are_repacked(qg, constant):
    """Eager calls share one kernel instance and its packed-weight cache: new weights of the
    same shape (another buffer; with constant_weights=False, other bytes) must be packed anew."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (1, 6, 6, 8), dtype=np.uint8)
    for _ in range(3):
        w = rng.integers(-64, 65, (3, 3, 8, 16), dtype=np.int8)
        got = qg.qg_quantized_conv2d(u8(x), s8(w), np.ones(16, np.float32),
                                     np.zeros(16, np.float32), -9.0, 246.0, 0.0, 1.0, [], [], [],
                                     strides=[1, 1, 1, 1], padding="SAME",
                                     out_type=tf.float32, constant_weights=constant)[0]
        want = R.conv2d_acc(x, 9, w, (1, 1), "SAME", (1, 1))
        np.testing.assert_array_equal(got.numpy(), want.astype(np.float32))


def test_conv2d_long_k_and_many_channels_exact(qg):
    # K = 3*3*61 = 549 (odd, more than one K block), 70 output channels (a partial panel).
    rng = np.random.default_rng(99)
    case = dict(x=rng.integers(0, 256, (1, 12, 9, 61), dtype=np.uint8),
                w=rng.integers(-127, 128, (3, 3, 61, 70), dtype=np.int8),
                strides=(1, 1), dilations=(1, 1), padding="SAME")
    got = _exact_acc(qg, qg.qg_quantized_conv2d, case, 255)
    want = R.conv2d_acc(case["x"], 255, case["w"], (1, 1), "SAME", (1, 1))
    np.testing.assert_array_equal(got, want.astype(np.float32))


@pytest.mark.parametrize("seed", range(6))
def test_depthwise_accumulators_exact(qg, seed):
    rng = np.random.default_rng(100 + seed)
    case = _conv_case(rng, depthwise=True)
    zp = int(rng.integers(0, 256))
    got = _exact_acc(qg, qg.qg_quantized_depthwise_conv2d, case, zp)
    want = R.depthwise_conv2d_acc(case["x"], zp, case["w"], case["strides"], case["padding"],
                                  case["dilations"])
    np.testing.assert_array_equal(got, want.astype(np.float32))


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("activation", ["none", "relu", "relu6"])
def test_conv2d_fused_quint8_exact(qg, seed, activation):
    rng = np.random.default_rng(200 + seed)
    case = _conv_case(rng, wmax=64 if seed >= 6 else 127)
    cout = case["w"].shape[3]
    fs = rng.uniform(0.0005, 0.02, cout).astype(np.float32)
    bias = rng.normal(0, 1, cout).astype(np.float32)
    (mnx, mxx), (mno, mxo) = _rand_range(rng), _rand_range(rng)
    with_summand = seed % 2 == 1
    kwargs = {}
    summand_args = ([], [], [])
    if with_summand:
        ref_shape = R.conv2d_acc(case["x"], 0, case["w"], case["strides"], case["padding"],
                                 case["dilations"]).shape
        s = rng.integers(0, 256, ref_shape, dtype=np.uint8)
        mns, mxs = _rand_range(rng)
        kwargs = dict(summand=s, min_summand=mns, max_summand=mxs)
        summand_args = ([u8(s)], [np.float32(mns)], [np.float32(mxs)])
    out, omin, omax = qg.qg_quantized_conv2d(
        u8(case["x"]), s8(case["w"]), fs, bias, mnx, mxx, mno, mxo, *summand_args,
        strides=nhwc(case["strides"]), padding=case["padding"],
        dilations=nhwc(case["dilations"]), activation=activation)
    want = R.conv2d(case["x"], mnx, mxx, case["w"], fs, bias, mno, mxo, case["strides"],
                    case["padding"], case["dilations"], activation, **kwargs)
    np.testing.assert_array_equal(np_out(out), want)
    assert (float(omin), float(omax)) == (np.float32(mno), np.float32(mxo))


@pytest.mark.parametrize("activation", ["none", "relu6"])
def test_conv2d_float_out_with_summand(qg, activation):
    rng = np.random.default_rng(7)
    case = _conv_case(rng)
    cout = case["w"].shape[3]
    fs = rng.uniform(0.001, 0.01, cout).astype(np.float32)
    bias = rng.normal(0, 1, cout).astype(np.float32)
    shape = R.conv2d_acc(case["x"], 0, case["w"], case["strides"], case["padding"],
                         case["dilations"]).shape
    s = rng.integers(0, 256, shape, dtype=np.uint8)
    out = qg.qg_quantized_conv2d(
        u8(case["x"]), s8(case["w"]), fs, bias, -1.0, 3.0, -1.0, 1.0, [u8(s)], [-2.0], [2.0],
        strides=nhwc(case["strides"]), padding=case["padding"],
        dilations=nhwc(case["dilations"]), activation=activation, out_type=tf.float32)[0]
    want = R.conv2d(case["x"], -1.0, 3.0, case["w"], fs, bias, -1.0, 1.0, case["strides"],
                    case["padding"], case["dilations"], activation, "float", s, -2.0, 2.0)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_depthwise_fused_exact(qg, seed):
    rng = np.random.default_rng(300 + seed)
    case = _conv_case(rng, depthwise=True)
    cout = case["w"].shape[2] * case["w"].shape[3]
    fs = rng.uniform(0.001, 0.02, cout).astype(np.float32)
    bias = rng.normal(0, 1, cout).astype(np.float32)
    act = ["none", "relu", "relu6", "relu"][seed]
    out = qg.qg_quantized_depthwise_conv2d(
        u8(case["x"]), s8(case["w"]), fs, bias, -1.0, 1.0, 0.0, 6.0,
        strides=nhwc(case["strides"]), padding=case["padding"],
        dilations=nhwc(case["dilations"]), activation=act)[0]
    want = R.depthwise_conv2d(case["x"], -1.0, 1.0, case["w"], fs, bias, 0.0, 6.0,
                              case["strides"], case["padding"], case["dilations"], act)
    np.testing.assert_array_equal(np_out(out), want)


def _depthwise_acc(qg, x, w, zp, strides, padding, dilations, constant_weights=False):
    cout = w.shape[2] * w.shape[3]
    ones, zeros = np.ones(cout, np.float32), np.zeros(cout, np.float32)
    return qg.qg_quantized_depthwise_conv2d(
        u8(x), s8(w), ones, zeros, float(-zp), float(255 - zp), 0.0, 1.0,
        strides=nhwc(strides), padding=padding, dilations=nhwc(dilations),
        constant_weights=constant_weights, out_type=tf.float32)[0].numpy()


@pytest.mark.parametrize("channels", [1, 3, 17, 33, 40, 65, 72, 97])
@pytest.mark.parametrize("mult", [1, 2])
@pytest.mark.parametrize("stride,padding,dilation", [(1, "SAME", 1), (2, "SAME", 1),
                                                     (1, "VALID", 2), (2, "VALID", 1),
                                                     (1, "SAME", 2)])
def test_depthwise_vector_blocks_and_borders_exact(qg, channels, mult, stride, padding,
                                                   dilation):
    """The SIMD loops (multiplier 1) work on blocks of 32 (AVX2) or 64 (AVX-512) channels
    (partial blocks here), an interior without bounds checks and border columns/rows that read
    padding; full int8 weights (-128 too) and zero points 0, 255 and in between. Float output:
    the AVX-512 loop's generic epilogue (tests/test_kernels_byte_paths.py has its fused quint8
    one and its virtual pixels, on every path)."""
    rng = np.random.default_rng(channels * 100 + mult * 10 + stride + dilation)
    x = rng.integers(0, 256, (2, 11, 12, channels), dtype=np.uint8)
    w = rng.integers(-128, 128, (3, 3, channels, mult), dtype=np.int8)
    for zp in (0, 255, int(rng.integers(1, 255))):
        got = _depthwise_acc(qg, x, w, zp, (stride, stride), padding, (dilation, dilation))
        want = R.depthwise_conv2d_acc(x, zp, w, (stride, stride), padding,
                                      (dilation, dilation))
        np.testing.assert_array_equal(got, want.astype(np.float32))


@pytest.mark.parametrize("kh,kw", [(1, 1), (2, 5), (5, 1), (7, 7)])
def test_depthwise_odd_windows_exact(qg, kh, kw):
    """Odd tap counts (the last tap pairs with a weight of 0) and windows wider than the image."""
    rng = np.random.default_rng(kh * 10 + kw)
    x = rng.integers(0, 256, (1, 6, 5, 35), dtype=np.uint8)
    w = rng.integers(-128, 128, (kh, kw, 35, 1), dtype=np.int8)
    got = _depthwise_acc(qg, x, w, 77, (1, 2), "SAME", (1, 1))
    want = R.depthwise_conv2d_acc(x, 77, w, (1, 2), "SAME", (1, 1))
    np.testing.assert_array_equal(got, want.astype(np.float32))


@pytest.mark.parametrize("constant_weights", [False, True])
def test_depthwise_prepared_weights_follow_new_weights(qg, constant_weights):
    """The kernel keeps its prepared weights between runs: new weights (same shape, a new buffer
    or new bytes) must be used, never the previous ones."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, (1, 8, 8, 40), dtype=np.uint8)
    for _ in range(3):
        w = rng.integers(-128, 128, (3, 3, 40, 1), dtype=np.int8)
        got = _depthwise_acc(qg, x, w, 100, (1, 1), "SAME", (1, 1), constant_weights)
        want = R.depthwise_conv2d_acc(x, 100, w, (1, 1), "SAME", (1, 1))
        np.testing.assert_array_equal(got, want.astype(np.float32))


@pytest.mark.parametrize("activation", ["none", "relu6"])
def test_depthwise_fused_quint8_many_channels_exact(qg, activation):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (2, 13, 10, 72), dtype=np.uint8)
    w = rng.integers(-127, 128, (3, 3, 72, 1), dtype=np.int8)
    fs = rng.uniform(0.001, 0.02, 72).astype(np.float32)
    bias = rng.normal(0, 1, 72).astype(np.float32)
    out = qg.qg_quantized_depthwise_conv2d(u8(x), s8(w), fs, bias, -1.0, 1.0, 0.0, 6.0,
                                           strides=[1, 2, 2, 1], padding="SAME",
                                           activation=activation)[0]
    want = R.depthwise_conv2d(x, -1.0, 1.0, w, fs, bias, 0.0, 6.0, (2, 2), "SAME", (1, 1),
                              activation)
    np.testing.assert_array_equal(np_out(out), want)


@pytest.mark.parametrize("m,k,n", [(1, 2048, 1001), (7, 33, 5), (30, 700, 48), (3, 1, 17)])
def test_matmul(qg, m, k, n):
    rng = np.random.default_rng(m * 1000 + n)
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    b = rng.integers(-127, 128, (k, n), dtype=np.int8)
    if m == 30:  # the AVX2 byte kernel (weight pairs fit int16)
        b = (b // 2).astype(np.int8)
    acc = qg.qg_quantized_mat_mul(u8(a), s8(b), np.ones(n, np.float32), np.zeros(n, np.float32),
                                  -3.0, 252.0, 0.0, 1.0, [], [], [], out_type=tf.float32)[0]
    np.testing.assert_array_equal(acc.numpy(), R.matmul_acc(a, 3, b).astype(np.float32))
    bs = rng.uniform(1e-4, 1e-3, n).astype(np.float32)
    bias = rng.normal(0, 1, n).astype(np.float32)
    s = rng.integers(0, 256, (m, n), dtype=np.uint8)
    out = qg.qg_quantized_mat_mul(u8(a), s8(b), bs, bias, -0.5, 2.0, -4.0, 4.0, [u8(s)], [-1.0],
                                  [3.0], activation="relu")[0]
    want = R.matmul(a, -0.5, 2.0, b, bs, bias, -4.0, 4.0, "relu", "quint8", s, -1.0, 3.0)
    np.testing.assert_array_equal(np_out(out), want)


def test_quantize_dequantize(qg):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 3, (5, 7, 3)).astype(np.float32)
    x[0, 0, :] = [1e30, -1e30, np.nan]
    q, mn, mx = qg.qg_quantize(x, -2.5, 4.0)
    np.testing.assert_array_equal(np_out(q), R.quantize(x, -2.5, 4.0))
    assert (float(mn), float(mx)) == (-2.5, 4.0)
    d = qg.qg_dequantize(q, -2.5, 4.0)
    np.testing.assert_array_equal(d.numpy(), R.dequantize(np_out(q), -2.5, 4.0))


@pytest.mark.parametrize("per_channel", [False, True])
def test_requantize(qg, per_channel):
    rng = np.random.default_rng(2)
    acc = rng.integers(-200000, 200000, (4, 6, 9), dtype=np.int32)
    scale = (rng.uniform(1e-5, 1e-4, 9) if per_channel else np.float32(3e-5)).astype(np.float32)
    out = qg.qg_requantize(tf.constant(acc, tf.qint32), scale, -3.0, 5.0)[0]
    np.testing.assert_array_equal(np_out(out), R.requantize(acc, scale, -3.0, 5.0))


@pytest.mark.parametrize("seed", range(6))
def test_pools(qg, seed):
    rng = np.random.default_rng(400 + seed)
    x = rng.integers(0, 256, (int(rng.integers(1, 3)), int(rng.integers(1, 12)),
                              int(rng.integers(1, 12)), int(rng.integers(1, 20))), dtype=np.uint8)
    ksize = tuple(int(v) for v in rng.integers(1, 4, 2))
    strides = tuple(int(v) for v in rng.integers(1, 3, 2))
    padding = "SAME" if seed % 2 else "VALID"
    for op, ref in ((qg.qg_quantized_max_pool, R.max_pool), (qg.qg_quantized_avg_pool, R.avg_pool)):
        out, mn, mx = op(u8(x), -1.0, 1.0, ksize=nhwc(ksize), strides=nhwc(strides),
                         padding=padding)
        np.testing.assert_array_equal(np_out(out), ref(x, ksize, strides, padding))
        assert (float(mn), float(mx)) == (-1.0, 1.0)


@pytest.mark.parametrize("axis", [3, -1, 1, 0])
def test_concat(qg, axis):
    rng = np.random.default_rng(5)
    shapes = [[2, 3, 4, 5], [2, 3, 4, 5], [2, 3, 4, 5]]
    ax = axis % 4
    for i, s in enumerate(shapes):
        s[ax] = i + 1
    values = [rng.integers(0, 256, s, dtype=np.uint8) for s in shapes]
    mins, maxes = [-1.0, 0.0, -6.0], [1.0, 6.0, 0.5]
    out, mn, mx = qg.qg_quantized_concat([u8(v) for v in values], mins, maxes, -6.0, 6.0,
                                         axis=axis)
    np.testing.assert_array_equal(np_out(out), R.concat(values, mins, maxes, -6.0, 6.0, axis))


@pytest.mark.parametrize("case", range(len(POOL_CASES)))
def test_pool_shapes(qg, case):
    """The shapes that reach every branch of the pool loops (kernels_helpers.POOL_CASES)."""
    shape, ksize, strides, padding, _ = POOL_CASES[case]
    x = pool_input(POOL_CASES[case], case)
    for op, ref in ((qg.qg_quantized_max_pool, R.max_pool), (qg.qg_quantized_avg_pool, R.avg_pool)):
        out = op(u8(x), 0.0, 6.0, ksize=nhwc(ksize), strides=nhwc(strides), padding=padding)[0]
        np.testing.assert_array_equal(np_out(out), ref(x, ksize, strides, padding),
                                      err_msg=f"{op.__name__} {POOL_CASES[case]}")


# Windows of 1 to 257 taps (the most whose sums the AVX2 loop keeps in u16), as rows,
# columns or both, each run with every window sum 0 .. 255 * taps once, one per channel.
AVG_WINDOWS = [(1, 1), (1, 2), (3, 1), (2, 2), (1, 5), (2, 3), (7, 1), (2, 4), (3, 3), (2, 5),
               (11, 1), (3, 4), (13, 1), (2, 7), (3, 5), (4, 4), (5, 5), (7, 7), (8, 8),
               (10, 10), (1, 127), (8, 16), (1, 129), (5, 37), (2, 93), (16, 16), (257, 1)]


@pytest.mark.parametrize("window", AVG_WINDOWS, ids=lambda w: f"{w[0]}x{w[1]}")
def test_avg_pool_every_window_sum(qg, window):
    kh, kw = window
    taps = kh * kw
    sums = np.arange(255 * taps + 1)
    # channel k holds bytes summing to k: 255, 255, ..., the rest, 0, ... over the window
    x = np.clip(sums[None, :] - 255 * np.arange(taps)[:, None], 0, 255).astype(np.uint8)
    x = np.random.default_rng(taps).permuted(x, axis=0).reshape(1, kh, kw, -1)
    out = qg.qg_quantized_avg_pool(u8(x), 0.0, 6.0, ksize=nhwc(window), strides=[1, 1, 1, 1],
                                   padding="VALID")[0]
    want = np.rint(sums.astype(np.float32) / np.float32(taps)).astype(np.uint8)
    np.testing.assert_array_equal(np_out(out).reshape(-1), want)


def test_avg_pool_integer_rounding_matches_float_division():
    """The SIMD averages' rint(sum / count) in 16-bit integer lanes (AvgDivider in
    qg_pool_concat_avx2.cc, AvgDivider512 in qg_pool_concat_avx512.cc), step by step with its
    wrap-around, against OPS.md's float32 division + rint, for every count 2..257 (count 1 is
    the sum) and every sum <= 255 * count."""
    def i16(v):
        return ((v & 0xFFFF) ^ 0x8000) - 0x8000

    for count in range(2, 258):
        lg = 15 + int(count - 1).bit_length()
        m = -(-(1 << lg) // count)
        assert m < 1 << 16
        t = np.arange(255 * count + 1, dtype=np.int64)
        q0 = ((t * m) >> 16) >> (lg - 16)  # mulhi_epu16, srl_epi16
        r2 = i16((t - ((q0 * count) & 0xFFFF)) << 1)  # mullo, sub, slli, as int16
        up = (r2 > count) | ((r2 == count) & ((q0 & 1) == 1))  # cmpgt / cmpeq: signed
        q = np.clip(i16(q0 + up), 0, 255)  # (q0 - mask); packus_epi16 saturates to [0, 255]
        want = np.rint(t.astype(np.float32) / np.float32(count))
        np.testing.assert_array_equal(q, want, err_msg=f"count {count}")


@pytest.mark.parametrize("case", range(len(concat_cases())))
def test_concat_copied_and_remapped_inputs(qg, case):
    values, mins, maxes, mn, mx, axis = concat_cases()[case]
    out = qg.qg_quantized_concat([u8(v) for v in values], mins, maxes, mn, mx, axis=axis)[0]
    np.testing.assert_array_equal(np_out(out), R.concat(values, mins, maxes, mn, mx, axis))


def test_empty_tensors_give_empty_outputs(qg):
    x = np.zeros((0, 5, 5, 3), np.uint8)
    w = np.ones((3, 3, 3, 4), np.int8)
    out = qg.qg_quantized_conv2d(u8(x), s8(w), np.ones(4, np.float32), np.zeros(4, np.float32),
                                 -1.0, 1.0, -1.0, 1.0, [], [], [], strides=[1, 1, 1, 1],
                                 padding="SAME")[0]
    assert out.shape == (0, 5, 5, 4)
    out = qg.qg_quantized_max_pool(u8(x), -1.0, 1.0, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1],
                                   padding="VALID")[0]
    assert out.shape == (0, 2, 2, 3)


def test_conv_without_input_channels_is_bias_only(qg):
    x = np.zeros((1, 3, 3, 0), np.uint8)
    w = np.ones((1, 1, 0, 2), np.int8)
    out = qg.qg_quantized_conv2d(u8(x), s8(w), np.ones(2, np.float32),
                                 np.array([0.5, -0.25], np.float32), -1.0, 1.0, -1.0, 1.0,
                                 [], [], [], strides=[1, 1, 1, 1], padding="SAME",
                                 out_type=tf.float32)[0]
    np.testing.assert_array_equal(out.numpy(), np.broadcast_to([0.5, -0.25], (1, 3, 3, 2)))


def test_graph_mode_shapes_and_import(qg):
    """Shape functions give static shapes; the op runs from an imported GraphDef."""
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.quint8, [1, 17, 17, 8], name="x")
        w = tf.constant(np.ones((3, 3, 8, 16), np.int8), tf.qint8)
        y = qg.qg_quantized_conv2d(x, w, np.ones(16, np.float32), np.zeros(16, np.float32),
                                   -1.0, 1.0, -1.0, 1.0, [], [], [], strides=[1, 2, 2, 1],
                                   padding="VALID", activation="relu", name="conv")
        assert y[0].shape.as_list() == [1, 8, 8, 16]
        p = qg.qg_quantized_max_pool(y[0], y[1], y[2], ksize=[1, 3, 3, 1],
                                     strides=[1, 2, 2, 1], padding="SAME", name="pool")
        assert p[0].shape.as_list() == [1, 4, 4, 16]
    gd = g.as_graph_def()
    g2 = tf.Graph()
    with g2.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
        with tf.compat.v1.Session() as sess:
            xv = np.full((1, 17, 17, 8), 200, np.uint8)
            out = sess.run("pool:0", {"x:0": xv})
    want = R.max_pool(R.conv2d(xv, -1.0, 1.0, np.ones((3, 3, 8, 16), np.int8),
                               np.ones(16, np.float32), np.zeros(16, np.float32), -1.0, 1.0,
                               (2, 2), "VALID", (1, 1), "relu"), (3, 3), (2, 2), "SAME")
    np.testing.assert_array_equal(np.asarray(out).astype(np.uint8), want)
