"""Shifting a signed input into quint8's range (passes/shift_input.py)."""
import collections

import numpy as np
import pytest
import tensorflow as tf

from quantize_graph.passes.shift_input import shift_signed_inputs
from quantize_graph.pipeline import Options, run_pipeline
from quantize_graph.runner import run_graph
from quantize_graph.targets.probe import onednn_int8_runs

RNG = np.random.RandomState(17)


def _graph(padding, stride):
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, 9, 9, 3], name="input")
        y = tf.nn.conv2d(x, tf.constant(RNG.randn(3, 3, 3, 8).astype(np.float32)), [1, stride, stride, 1],
                         padding, name="conv")
        y = tf.nn.relu6(tf.nn.bias_add(y, tf.constant(RNG.randn(8).astype(np.float32)), name="bias"))
        tf.identity(y, name="output")
    return g.as_graph_def()


@pytest.mark.parametrize("padding, stride", [("SAME", 2), ("SAME", 1), ("VALID", 2)])
def test_shifted_graph_computes_the_same(padding, stride):
    graph_def = _graph(padding, stride)
    data = RNG.uniform(-1, 1, [4, 9, 9, 3]).astype(np.float32)
    shifted, names = shift_signed_inputs(graph_def, {"conv", "bias"}, {"input": data})
    assert names == ["conv"]
    ops = collections.Counter(n.op for n in shifted.node)
    assert ops["Pad"] == 1 and ops["AddV2"] == 1
    for i in range(4):
        want = run_graph(graph_def, ["output:0"], {"input:0": data[i:i + 1]})[0]
        got = run_graph(shifted, ["output:0"], {"input:0": data[i:i + 1]})[0]
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_non_negative_input_is_left_alone():
    graph_def = _graph("SAME", 1)
    data = RNG.uniform(0, 1, [4, 9, 9, 3]).astype(np.float32)
    assert shift_signed_inputs(graph_def, {"conv", "bias"}, {"input": data}) == (graph_def, [])


@pytest.mark.skipif(not onednn_int8_runs(), reason="TensorFlow's oneDNN int8 kernels do not run here")
def test_first_conv_runs_in_int8_with_shift_input():
    graph_def = _graph("SAME", 2)
    data = RNG.uniform(-1, 1, [12, 9, 9, 3]).astype(np.float32)
    for shift in (False, True):
        q, _ = run_pipeline(graph_def, ["output"], Options(
            target="onednn", calibration_inputs={"input": data[:8]}, shift_input=shift))
        ops = collections.Counter(n.op for n in q.node)
        assert ops["QuantizedConv2DWithBiasAndReluAndRequantize"] == int(shift)
        for i in range(8, 12):
            want = run_graph(graph_def, ["output:0"], {"input:0": data[i:i + 1]})[0]
            got = run_graph(q, ["output:0"], {"input:0": data[i:i + 1]})[0]
            assert np.abs(got - want).max() <= 0.03 * 6
