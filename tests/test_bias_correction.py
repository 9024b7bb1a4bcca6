"""Bias correction (passes/bias_correction.py) and the onednn weight scales it corrects for."""
import numpy as np
import pytest
import tensorflow as tf

from quantize_graph.passes.bias_correction import output_shift
from quantize_graph.pipeline import Options, run_pipeline
from quantize_graph.runner import run_graph
from quantize_graph.weight_schemes import onednn_conv_codes, onednn_dequantized, pair_limit
from quantize_graph.targets.probe import onednn_int8_runs

RNG = np.random.RandomState(21)
needs_onednn = pytest.mark.skipif(not onednn_int8_runs(),
                                  reason="TensorFlow's oneDNN int8 kernels do not run in this process")


@pytest.mark.parametrize("op, shape", [("Conv2D", [3, 3, 5, 7]), ("DepthwiseConv2dNative", [3, 3, 5, 2]),
                                       ("MatMul", [5, 7])])
def test_output_shift_is_the_error_of_a_constant_input(op, shape):
    """On an input that is constant per channel (VALID, so no padding) the output moves by
    exactly the computed shift."""
    error = RNG.randn(*shape)
    mean = RNG.uniform(0, 2, shape[2] if op != "MatMul" else shape[0])
    if op == "MatMul":
        want = tf.matmul(mean[None].astype(np.float32), error.astype(np.float32)).numpy()[0]
    else:
        x = np.broadcast_to(mean, [1, 3, 3, len(mean)]).astype(np.float32)
        fn = tf.nn.conv2d if op == "Conv2D" else tf.nn.depthwise_conv2d
        want = fn(x, error.astype(np.float32), [1, 1, 1, 1], "VALID").numpy().reshape(-1)
    np.testing.assert_allclose(output_shift(op, error, mean), want, rtol=1e-4, atol=1e-4)


def test_output_shift_matmul_transposed():
    error, mean = RNG.randn(7, 5), RNG.randn(5)
    np.testing.assert_allclose(output_shift("MatMul", error, mean, transpose_b=True),
                               output_shift("MatMul", error.T, mean))


def test_pair_limit_counts_only_same_sign_pairs():
    w = np.array([1.0, 0.9, -1.0, 0.9, 0.2, 0.3]).reshape(1, 1, 6, 1)
    # pairs (1, .9) same sign -> 1.9; (-1, .9) opposite -> cannot saturate; (.2, .3) -> .5
    assert pair_limit(w, 2, (0, 1, 2))[0] == pytest.approx(1.9)
    alternating = np.array([1.0, -1.0] * 8).reshape(1, 1, 16, 1)
    assert pair_limit(alternating, 2, (0, 1, 2))[0] == 0.0


def test_conv_codes_keep_pairs_within_int16_and_use_8_bits_where_they_can():
    w = RNG.randn(1, 1, 64, 32)
    w[:, :, 1::2, :16] = -np.abs(w[:, :, 0::2, :16]) * np.sign(w[:, :, 0::2, :16])  # opposite signs
    codes, top = onednn_conv_codes(w, "Conv2D")
    c = codes.astype(np.int64)
    pairs = c[:, :, 0::2] + c[:, :, 1::2]  # same-sign pairs add up in magnitude
    assert np.abs(pairs).max() <= 128 and np.abs(c).max() <= 127
    assert (np.abs(c[..., :16]).max(axis=(0, 1, 2)) == 127).all()  # full 8 bits
    assert (np.abs(c[..., 16:]).max(axis=(0, 1, 2)) < 127).all()   # pair-limited
    np.testing.assert_allclose(onednn_dequantized("Conv2D", w), w, atol=(top / 127).max())


def _two_convs():
    """Relu outputs (mean far from 0) through two 1x1 convs with 7-bit-limited weights."""
    rng = np.random.RandomState(4)
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 6, 6, 16], name="input")
        y = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, tf.constant(rng.randn(1, 1, 16, 64).astype(np.float32) * 0.3),
                                                   [1, 1, 1, 1], "SAME"), tf.constant(np.full(64, 0.2, np.float32))))
        y = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(y, tf.constant(rng.randn(1, 1, 64, 32).astype(np.float32) * 0.1),
                                                   [1, 1, 1, 1], "SAME"), tf.constant(np.full(32, 1.0, np.float32))))
        tf.identity(y, name="output")
    return g.as_graph_def()


@needs_onednn
def test_bias_correction_removes_the_mean_error_per_channel():
    graph_def = _two_convs()
    data = RNG.uniform(0, 1, [48, 6, 6, 16]).astype(np.float32)
    want = run_graph(graph_def, ["output:0"], {"input:0": data[32:]})[0]
    mean_error = {}
    for on in (False, True):
        q, _ = run_pipeline(graph_def, ["output"], Options(
            target="onednn", calibration_inputs={"input": data[:32]}, bias_correction=on))
        got = run_graph(q, ["output:0"], {"input:0": data[32:]})[0]
        mean_error[on] = np.abs((got - want).reshape(-1, 32).mean(axis=0)).mean()
    assert mean_error[True] < 0.5 * mean_error[False], mean_error
