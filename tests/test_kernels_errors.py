"""Bad input to the Qg ops is an InvalidArgument naming the input, never a crash."""
import numpy as np
import pytest

from tests.kernels_helpers import load_or_skip, s8, u8

tf = pytest.importorskip("tensorflow")

X = np.full((1, 5, 5, 3), 128, np.uint8)
W = np.ones((3, 3, 3, 4), np.int8)
ONES4, ZEROS4 = np.ones(4, np.float32), np.zeros(4, np.float32)


@pytest.fixture(scope="module")
def qg():
    return load_or_skip()


def conv(qg, x=X, w=W, fs=ONES4, bias=ZEROS4, rin=(-1.0, 1.0), rout=(-1.0, 1.0), summand=None,
         **attrs):
    attrs.setdefault("strides", [1, 1, 1, 1])
    attrs.setdefault("padding", "SAME")
    s = ([], [], []) if summand is None else ([u8(summand[0])], [summand[1]], [summand[2]])
    return qg.qg_quantized_conv2d(u8(x), s8(w), fs, bias, rin[0], rin[1], rout[0], rout[1], *s,
                                  **attrs)


def raises(match):
    return pytest.raises(tf.errors.InvalidArgumentError, match=match)


@pytest.mark.parametrize("rin,match", [
    ((1.0, -1.0), "min_input 1 > max_input -1"),
    ((float("nan"), 1.0), "min_input/max_input .* not finite"),
    ((-1.0, float("inf")), "min_input/max_input .* not finite"),
    ((0.5, 0.5), "min_input/max_input is an empty range"),
])
def test_conv_bad_input_range(qg, rin, match):
    with raises(match):
        conv(qg, rin=rin)


def test_conv_bad_output_range(qg):
    with raises("min_output 2 > max_output 1"):
        conv(qg, rout=(2.0, 1.0))


def test_conv_channel_mismatch(qg):
    with raises("filter has 2 input channels, the input has 3"):
        conv(qg, w=np.ones((3, 3, 2, 4), np.int8))


def test_conv_filter_scale_and_bias_lengths(qg):
    with raises(r"filter_scale must have shape \[4\]"):
        conv(qg, fs=np.ones(3, np.float32))
    with raises(r"bias must have shape \[4\]"):
        conv(qg, bias=np.zeros(5, np.float32))


def test_conv_non_finite_bias(qg):
    with raises(r"bias\[2\] = nan is not finite"):
        conv(qg, bias=np.array([0, 0, np.nan, 0], np.float32))


def test_conv_wrong_ranks(qg):
    with raises("input must be rank 4"):
        conv(qg, x=np.zeros((5, 5, 3), np.uint8))
    with raises("filter must be rank 4"):
        conv(qg, w=np.ones((3, 3, 4), np.int8))


def test_conv_bad_attributes(qg):
    with raises("strides must be 4 ints"):
        conv(qg, strides=[2, 1, 1, 1])
    with raises("dilations must be 4 ints"):
        conv(qg, dilations=[1, 0, 1, 1])


def test_conv_summand(qg):
    with raises("summand has shape"):
        conv(qg, summand=(np.zeros((1, 5, 5, 3), np.uint8), -1.0, 1.0))
    with raises("min_summand 1 > max_summand 0"):
        conv(qg, summand=(np.zeros((1, 5, 5, 4), np.uint8), 1.0, 0.0))


def test_depthwise_channel_mismatch(qg):
    with raises("filter has 4 input channels, the input has 3"):
        qg.qg_quantized_depthwise_conv2d(u8(X), s8(np.ones((3, 3, 4, 1), np.int8)),
                                         ONES4, ZEROS4, -1.0, 1.0, -1.0, 1.0,
                                         strides=[1, 1, 1, 1], padding="SAME")


def test_matmul_bad_inputs(qg):
    a, b = np.zeros((2, 8), np.uint8), np.ones((8, 4), np.int8)

    def mm(a=a, b=b, ra=(-1.0, 1.0), fs=ONES4):
        return qg.qg_quantized_mat_mul(u8(a), s8(b), fs, ZEROS4, ra[0], ra[1], -1.0, 1.0,
                                       [], [], [])
    with raises("a has 8 columns, b has 7 rows"):
        mm(b=np.ones((7, 4), np.int8))
    with raises("a must be rank 2"):
        mm(a=np.zeros((2, 2, 8), np.uint8))
    with raises(r"b_scale must have shape \[4\]"):
        mm(fs=np.ones(2, np.float32))
    with raises("min_a 3 > max_a 1"):
        mm(ra=(3.0, 1.0))


def test_quantize_family_bad_ranges(qg):
    with raises("min_range/max_range .* not finite"):
        qg.qg_quantize(np.zeros(3, np.float32), -np.inf, 1.0)
    with raises("min_range 2 > max_range 1"):
        qg.qg_dequantize(u8(np.zeros(3)), 2.0, 1.0)
    with raises(r"input_scale must be a scalar or \[3\]"):
        qg.qg_requantize(tf.constant(np.zeros((2, 3), np.int32), tf.qint32),
                         np.ones(2, np.float32), -1.0, 1.0)
    with raises("min_output/max_output is an empty range"):
        qg.qg_requantize(tf.constant(np.zeros((2, 3), np.int32), tf.qint32), 1.0, 1.0, 1.0)


def test_pool_bad_inputs(qg):
    with raises("input must be rank 4"):
        qg.qg_quantized_max_pool(u8(np.zeros((5, 5, 3))), -1.0, 1.0, ksize=[1, 2, 2, 1],
                                 strides=[1, 1, 1, 1], padding="SAME")
    with raises("min_input 1 > max_input 0"):
        qg.qg_quantized_avg_pool(u8(X), 1.0, 0.0, ksize=[1, 2, 2, 1], strides=[1, 1, 1, 1],
                                 padding="SAME")
    with raises("ksize must be 4 ints"):
        qg.qg_quantized_avg_pool(u8(X), -1.0, 1.0, ksize=[2, 2], strides=[1, 1, 1, 1],
                                 padding="SAME")


def test_concat_bad_inputs(qg):
    a, b = np.zeros((2, 3), np.uint8), np.zeros((2, 4), np.uint8)
    with raises(r"values\[1\] has shape"):
        qg.qg_quantized_concat([u8(a), u8(b)], [-1.0, -1.0], [1.0, 1.0], -1.0, 1.0, axis=0)
    with raises("axis 2 is out of range for rank 2"):
        qg.qg_quantized_concat([u8(a), u8(a)], [-1.0, -1.0], [1.0, 1.0], -1.0, 1.0, axis=2)
    with raises(r"mins\[1\] 5 > maxes\[1\] 1"):
        qg.qg_quantized_concat([u8(a), u8(b)], [-1.0, 5.0], [1.0, 1.0], -1.0, 1.0, axis=1)
    with raises(r"values\[1\] has rank 1"):
        qg.qg_quantized_concat([u8(a), u8(np.zeros(3))], [-1.0, -1.0], [1.0, 1.0], -1.0, 1.0,
                               axis=0)
