"""Residual adds, signed inputs and zero padding in the onednn target (the ResNet-50 and
MobileNet-v2 patterns), each against float on a small graph.

Tolerance: max abs error relative to the float output's range, as in test_onednn_target.py
(one fused layer: 2%; an inverted-residual block of three layers: 3%).
"""
import numpy as np
import pytest
import tensorflow as tf

import quantize_graph as qg

from quantize_graph.lowering.onednn_residual import SUM_OP
from quantize_graph.targets.probe import onednn_int8_runs
from quantize_graph.runner import run_graph
from tests.test_onednn_target import TOL, build, ops

# Own random state: drawing from test_onednn_target's would change its tests' weights.
RNG = np.random.RandomState(5)


def const(*shape, scale=0.5):
    return tf.constant((RNG.randn(*shape) * scale).astype(np.float32))


def quantize_and_check(fn, shape, low=0.0, tol=TOL):
    """Calibrates on 36 examples in [low, 1) and checks 4 of them; returns the quantized graph.

    The checked examples are calibrated on too: what is tested is the lowering, not how
    calibration generalizes (a held-out example beyond the calibrated range of a fused
    conv+sum+relu is clipped there: 2.9% on one draw, against 0.4% within the range).
    """
    graph_def = build(fn, shape)
    data = RNG.uniform(low, 1, [36] + shape).astype(np.float32)
    q = qg.quantize(graph_def, ["output"], target="onednn", calibration_inputs={"input": data})
    ref = run_graph(graph_def, ["output:0"], {"input:0": data[32:]})[0]
    got = run_graph(q, ["output:0"], {"input:0": data[32:]})[0]
    err = np.abs(ref - got).max() / max(ref.max() - ref.min(), 1e-6)
    assert err <= tol, "error %.4f of the output range" % err
    return q

pytestmark = pytest.mark.skipif(not onednn_int8_runs(),
                                reason="TensorFlow's oneDNN int8 kernels do not run in this process")


def conv1x1(x, cin, cout):
    return tf.nn.bias_add(tf.nn.conv2d(x, const(1, 1, cin, cout), 1, "SAME"), const(cout))


@pytest.mark.parametrize("activation", [tf.nn.relu, tf.nn.relu6])
def test_conv_bias_sum_relu_is_one_fused_op(activation):
    def fn(x):
        x = tf.nn.relu(conv1x1(x, 8, 8))
        return activation(x + conv1x1(tf.nn.relu(conv1x1(x, 8, 8)), 8, 8))
    q = quantize_and_check(fn, [7, 7, 8])
    counts = ops(q)
    assert counts[SUM_OP] == 1
    # The summand's other reader is the conv that feeds the fused conv: it has run before
    # the fused op overwrites the summand's buffer, so no copy (a ResNet identity block).
    assert counts["QuantizedMaxPool"] == 0
    assert counts["AddV2"] == counts["Relu"] == counts["Relu6"] == counts["Conv2D"] == 0


def test_summand_read_after_the_fused_conv_gets_a_copy():
    # The block input is also an input of the concat, which may run after the fused conv.
    def fn(x):
        x = tf.nn.relu(conv1x1(x, 8, 8))
        return tf.concat([tf.nn.relu(x + conv1x1(x, 8, 8)), x], axis=-1)
    q = quantize_and_check(fn, [7, 7, 8])
    counts = ops(q)
    assert counts[SUM_OP] == 1 and counts["QuantizedMaxPool"] == 1  # the copy


def test_fed_summand_read_by_the_fused_conv_itself_gets_a_copy():
    q = quantize_and_check(lambda x: tf.nn.relu(x + conv1x1(x, 8, 8)), [7, 7, 8])
    assert ops(q)[SUM_OP] == 1 and ops(q)["QuantizedMaxPool"] == 1


def test_resnet_identity_block_chain_stays_int8():
    def block(x):
        y = tf.nn.relu(tf.nn.conv2d(x, const(3, 3, 8, 8, scale=0.2), 1, "SAME"))
        return tf.nn.relu(conv1x1(y, 8, 8) + x)
    q = quantize_and_check(lambda x: block(block(tf.nn.relu(conv1x1(x, 8, 8)))), [6, 6, 8], tol=0.03)
    counts = ops(q)
    assert counts[SUM_OP] == 2 and counts["AddV2"] == 0
    assert counts["QuantizeV2"] == 1 and counts["Dequantize"] == 1


def test_sum_with_signed_summand_stays_float_and_correct():
    # conv(x) + (x - 0.5): the summand can be negative, so the Add stays float.
    q = quantize_and_check(lambda x: tf.nn.relu(conv1x1(x, 8, 8) + (x - 0.5)), [7, 7, 8])
    assert ops(q)[SUM_OP] == 0 and ops(q)["AddV2"] == 1


def test_signed_input_of_1x1_conv_is_int8_with_offset():
    q = quantize_and_check(lambda x: tf.nn.relu6(conv1x1(x, 8, 16)), [7, 7, 8], low=-1.0)
    counts = ops(q)
    assert counts["QuantizedConv2DWithBiasAndReluAndRequantize"] == 1 and counts["Conv2D"] == 0
    (quantize,) = [n for n in q.node if n.op == "QuantizeV2"]
    assert quantize.attr["mode"].s == b"MIN_FIRST"


def test_signed_input_of_padded_3x3_conv_stays_float():
    # Zero padding would be read as the offset, so the offset cannot be undone in the bias.
    q = quantize_and_check(lambda x: tf.nn.relu(tf.nn.conv2d(x, const(3, 3, 8, 8), 1, "SAME")),
                           [7, 7, 8], low=-1.0)
    assert ops(q)["Conv2D"] == 1


def test_mobilenet_v2_block_without_relu_after_the_add():
    def block(x):
        y = tf.nn.relu6(conv1x1(x, 8, 24))
        y = tf.nn.relu6(tf.nn.depthwise_conv2d(y, const(3, 3, 24, 1), [1, 1, 1, 1], "SAME"))
        return x + conv1x1(y, 24, 8)  # linear bottleneck: signed, no activation
    q = quantize_and_check(lambda x: block(block(x)), [6, 6, 8], low=-1.0, tol=0.03)
    counts = ops(q)
    assert counts["Conv2D"] == 0 and counts["DepthwiseConv2dNative"] == 0
    assert counts["QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize"] == 2
    assert counts["AddV2"] == 2  # the residual sums stay float, between Dequantize and QuantizeV2


def test_zero_pad_before_valid_depthwise_becomes_same_padding():
    # MobileNet-v2's stride-2 blocks: Relu6 -> Pad (0, 1) -> VALID depthwise conv, stride 2.
    def fn(x):
        y = tf.nn.relu6(conv1x1(x, 8, 8))
        y = tf.pad(y, [[0, 0], [0, 1], [0, 1], [0, 0]])
        y = tf.nn.depthwise_conv2d(y, const(3, 3, 8, 1), [1, 2, 2, 1], "VALID")
        return tf.nn.relu6(tf.nn.bias_add(y, const(8)))
    q = quantize_and_check(fn, [8, 8, 8])
    counts = ops(q)
    assert counts["Pad"] == 0 and counts["QuantizeV2"] == 1 and counts["Dequantize"] == 1
    (dw,) = [n for n in q.node if n.op == "QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize"]
    assert dw.attr["padding"].s == b"SAME"


def test_pad_unlike_same_padding_stays():
    # (1, 1) before a 3x3 stride-2 VALID conv on 8x8 is not what SAME adds (0, 1).
    def fn(x):
        y = tf.nn.relu6(conv1x1(x, 8, 8))
        y = tf.pad(y, [[0, 0], [1, 1], [1, 1], [0, 0]])
        y = tf.nn.depthwise_conv2d(y, const(3, 3, 8, 1), [1, 2, 2, 1], "VALID")
        return tf.nn.relu6(tf.nn.bias_add(y, const(8)))
    q = quantize_and_check(fn, [8, 8, 8])
    assert ops(q)["Pad"] == 1
