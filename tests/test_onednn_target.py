"""The onednn target: each fused pattern against float, op counts, and the auto target.

Tolerance: max abs error relative to the float output's range. Activations are 8-bit over
calibrated ranges (0.4% a step) and weights per channel; one layer must stay within 2%.
"""
import collections
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import quantize_graph as qg
from quantize_graph.runner import run_graph
from quantize_graph.targets.probe import onednn_int8_runs

TOL = 0.02
RNG = np.random.RandomState(11)

pytestmark = pytest.mark.skipif(not onednn_int8_runs(),
                                reason="TensorFlow's oneDNN int8 kernels do not run in this process")


def build(fn, shape):
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None] + shape, name="input")
        tf.identity(fn(x), name="output")
    return g.as_graph_def()


def const(*shape, scale=0.5):
    return tf.constant((RNG.randn(*shape) * scale).astype(np.float32))


def quantize_and_check(fn, shape, low=0.0, tol=TOL):
    """Calibrates on 32 examples in [low, 1), checks 4 others; returns the quantized graph."""
    graph_def = build(fn, shape)
    data = RNG.uniform(low, 1, [36] + shape).astype(np.float32)
    q = qg.quantize(graph_def, ["output"], target="onednn", calibration_inputs={"input": data[:32]})
    ref = run_graph(graph_def, ["output:0"], {"input:0": data[32:]})[0]
    got = run_graph(q, ["output:0"], {"input:0": data[32:]})[0]
    err = np.abs(ref - got).max() / max(ref.max() - ref.min(), 1e-6)
    assert err <= tol, "error %.4f of the output range" % err
    return q


def ops(graph_def):
    return collections.Counter(n.op for n in graph_def.node)


def conv(x, cin, cout, stride=1, padding="SAME"):
    return tf.nn.conv2d(x, const(3, 3, cin, cout), [1, stride, stride, 1], padding)


def test_conv_bias_relu_is_one_fused_op():
    q = quantize_and_check(lambda x: tf.nn.relu(tf.nn.bias_add(conv(x, 8, 16), const(16))), [9, 9, 8])
    counts = ops(q)
    assert counts["QuantizedConv2DWithBiasAndReluAndRequantize"] == 1
    assert counts["Conv2D"] == counts["BiasAdd"] == counts["Relu"] == 0
    assert counts["QuantizeV2"] == 1 and counts["Dequantize"] == 1


def test_conv_relu6_saturates_at_six():
    # Half the pre-activations lie above 6: the weight noise of that wide conv is measured
    # against the clipped [0, 6] output range, hence 3%.
    q = quantize_and_check(lambda x: tf.nn.relu6(4.0 * conv(x, 8, 8, stride=2)), [10, 10, 8], tol=0.03)
    assert ops(q)["QuantizedConv2DWithBiasAndReluAndRequantize"] == 1 and ops(q)["Relu6"] == 0


def test_conv_without_activation_outputs_signed_int8():
    # Read by an op that may run in 8 bits (a pool), so the conv's int8 result may be used.
    q = quantize_and_check(lambda x: tf.nn.max_pool2d(
        tf.nn.bias_add(conv(x, 4, 6, padding="VALID"), const(6)), 2, 1, "VALID"), [7, 7, 4])
    assert ops(q)["QuantizedConv2DWithBiasAndRequantize"] == 1


def test_classifier_conv_read_only_by_float_ops_stays_float():
    # Logits read by Softmax: a qint8 result (127 levels over +-max) would be dequantized at
    # once, so the conv keeps its float result; the layer before it stays int8.
    rng = np.random.RandomState(12)  # the module's RNG stays as the other tests expect

    def const(*shape):
        return tf.constant((rng.randn(*shape) * 0.5).astype(np.float32))

    def fn(x):
        features = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, const(3, 3, 4, 8), [1, 1, 1, 1], "SAME"),
                                             const(8)))
        logits = tf.nn.bias_add(tf.nn.conv2d(features, const(1, 1, 8, 10), [1, 1, 1, 1], "VALID"), const(10))
        return tf.nn.softmax(logits)
    q = quantize_and_check(fn, [5, 5, 4])
    counts = ops(q)
    assert counts["QuantizedConv2DWithBiasAndRequantize"] == 0 and counts["Conv2D"] == 1
    assert counts["QuantizedConv2DWithBiasAndReluAndRequantize"] == 1


def test_depthwise_bias_relu6():
    def fn(x):
        y = tf.nn.depthwise_conv2d(x, const(3, 3, 8, 1), [1, 1, 1, 1], "SAME")
        return tf.nn.relu6(tf.nn.bias_add(y, const(8)))
    q = quantize_and_check(fn, [8, 8, 8])
    assert ops(q)["QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize"] == 1


def test_matmul_logits_come_out_float():
    q = quantize_and_check(lambda x: tf.nn.bias_add(tf.matmul(x, const(32, 10)), const(10)), [32])
    assert ops(q)["QuantizedMatMulWithBiasAndDequantize"] == 1 and ops(q)["Dequantize"] == 0


def test_chain_stays_int8_from_first_to_last_quantized_op():
    def fn(x):
        a = tf.nn.relu(conv(x, 8, 8))
        b = tf.nn.relu6(conv(x, 8, 4))
        y = tf.concat([tf.nn.max_pool2d(a, 2, 2, "VALID"), tf.nn.avg_pool2d(b, 2, 2, "VALID")], -1)
        y = tf.nn.relu(conv(y, 12, 8))
        return tf.nn.bias_add(tf.matmul(tf.reshape(y, [-1, 4 * 4 * 8]), const(128, 5)), const(5))
    q = quantize_and_check(fn, [8, 8, 8], tol=0.03)
    counts = ops(q)
    assert counts["QuantizeV2"] == 1 and counts["Dequantize"] == 0
    assert counts["QuantizedConcatV2"] == 1 and counts["QuantizedMaxPool"] == 1
    assert counts["QuantizedAvgPool"] == 1 and counts["QuantizedReshape"] == 1


def test_conv_reading_negative_values_stays_float():
    graph_def = build(lambda x: tf.nn.relu(conv(x, 3, 4)), [6, 6, 3])
    data = RNG.uniform(-1, 1, [8, 6, 6, 3]).astype(np.float32)
    q, report = qg.pipeline.run_pipeline(graph_def, ["output"], qg.pipeline.Options(
        target="onednn", calibration_inputs={"input": data}))
    assert ops(q)["Conv2D"] == 1
    assert any("negative" in why for _, why in report.stayed_float.values())


def test_onednn_without_ranges_is_an_error():
    with pytest.raises(qg.QuantizeGraphError, match="freezes every range"):
        qg.quantize(build(lambda x: tf.nn.relu(conv(x, 3, 4)), [6, 6, 3]), ["output"], target="onednn")


def test_auto_picks_onednn_with_calibration_and_reference_without():
    graph_def = build(lambda x: tf.nn.relu(conv(tf.nn.relu(x), 3, 4)), [6, 6, 3])
    data = RNG.uniform(0, 1, [8, 6, 6, 3]).astype(np.float32)
    _, with_data = qg.pipeline.run_pipeline(graph_def, ["output"], qg.pipeline.Options(
        calibration_inputs={"input": data}))
    _, without = qg.pipeline.run_pipeline(graph_def, ["output"], qg.pipeline.Options())
    assert with_data.target == "onednn" and without.target == "reference"


_NO_ONEDNN = textwrap.dedent("""
    import numpy as np, tensorflow as tf
    import quantize_graph as qg
    from quantize_graph.pipeline import Options, run_pipeline
    from quantize_graph.runner import run_graph
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 6, 6, 3], name="input")
        w = tf.constant(np.random.RandomState(0).randn(3, 3, 3, 4).astype(np.float32))
        tf.nn.relu(tf.nn.conv2d(tf.nn.relu(x), w, [1, 1, 1, 1], "SAME"), name="output")
    data = np.random.RandomState(1).uniform(0, 1, [8, 6, 6, 3]).astype(np.float32)
    q, report = run_pipeline(g.as_graph_def(), ["output"], Options(calibration_inputs={"input": data}))
    out = run_graph(q, ["output:0"], {"input:0": data[:2]})[0]
    print("TARGET", report.target, out.shape)
    onednn = qg.quantize(g.as_graph_def(), ["output"], target="onednn", calibration_inputs={"input": data})
    try:
        run_graph(onednn, ["output:0"], {"input:0": data[:2]})
    except qg.QuantizeGraphError as e:
        print("ERROR", e)
""")


def test_auto_with_onednn_off_picks_reference_and_runs():
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="2")
    r = subprocess.run([sys.executable, "-c", _NO_ONEDNN], capture_output=True, text=True, env=env,
                       timeout=180)
    assert "TARGET reference (2, 6, 6, 4)" in r.stdout, r.stdout + r.stderr
    assert "ERROR this graph uses TensorFlow's oneDNN int8 kernels" in r.stdout


def test_probabilities_are_not_requantized_even_with_entropy_ranges():
    # Entropy calibration clips the probabilities' long tail (MobileNet: at 0.16); a Reshape of
    # the float Softmax output must stay float, or every large probability would saturate
    # (top-1 fell from 58% to 43% on MobileNet v1 0.25).
    rng = np.random.RandomState(13)
    graph_def = build(lambda x: tf.reshape(tf.nn.softmax(3.0 * tf.nn.relu(tf.nn.conv2d(
        x, tf.constant(rng.randn(3, 3, 4, 10).astype(np.float32)), [1, 1, 1, 1], "VALID"))), [-1, 10]),
        [3, 3, 4])
    data = rng.uniform(0, 1, [40, 3, 3, 4]).astype(np.float32)
    q = qg.quantize(graph_def, ["output"], target="onednn", calibration_method="entropy",
                    calibration_inputs={"input": data[:32]})
    assert ops(q)["QuantizedReshape"] == 0 and ops(q)["QuantizedConv2DWithBiasAndReluAndRequantize"] == 1
    want = run_graph(graph_def, ["output:0"], {"input:0": data[32:]})[0]
    got = run_graph(q, ["output:0"], {"input:0": data[32:]})[0]
    assert np.abs(got - want).max() < 0.05
    assert (got.argmax(1) == want.argmax(1)).all()
