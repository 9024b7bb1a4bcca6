"""Channel range equalization (passes/equalize_ranges.py): same function, fuller channels."""
import numpy as np
import pytest
import tensorflow as tf

from quantize_graph.calibration_data import batches
from quantize_graph.passes.equalize_ranges import equalize_with_maxima
from quantize_graph.runner import run_graph
from quantize_graph.statistics.measure import measure

RNG = np.random.RandomState(8)


def _graph(activation=tf.nn.relu6, tail=tf.nn.depthwise_conv2d):
    """conv -> bias -> activation -> depthwise (or Conv2D); channel 1 of the activation is
    100x smaller than the others."""
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 6, 6, 3], name="input")
        w = RNG.randn(3, 3, 3, 4).astype(np.float32)
        w[..., 1] *= 0.01
        y = activation(tf.nn.bias_add(tf.nn.conv2d(x, tf.constant(w), [1, 1, 1, 1], "SAME", name="conv"),
                                      tf.constant(np.array([0.5, 0.005, 0.1, 0.2], np.float32)), name="bias"),
                       name="act")
        shape = [3, 3, 4, 1] if tail is tf.nn.depthwise_conv2d else [3, 3, 4, 2]
        tf.identity(tail(y, tf.constant(RNG.randn(*shape).astype(np.float32)), [1, 1, 1, 1], "SAME"),
                    name="output")
    return g.as_graph_def()


def channel_maxima(graph_def, tensors, feeds):
    maxima = measure(graph_def, feeds, maxima=tensors).maxima
    return [maxima[t] for t in tensors]


def equalize_channel_ranges(graph_def, layers, feeds):
    """Range equalization with the maxima measured on `feeds`, as the pipeline does."""
    return equalize_with_maxima(graph_def, layers, lambda tensors: channel_maxima(graph_def, tensors, feeds))


def _layers(graph_def):
    return {n.name for n in graph_def.node if n.op not in ("Placeholder", "Const", "Identity")}


def test_equalized_graph_computes_the_same_and_fills_each_channel():
    graph_def = _graph(activation=tf.nn.relu)
    data = RNG.uniform(0, 1, [16, 6, 6, 3]).astype(np.float32)
    eq, scales = equalize_channel_ranges(graph_def, _layers(graph_def), batches({"input": data}, 8))
    assert set(scales) == {"act"} and scales["act"][1] > 10
    want = run_graph(graph_def, ["output:0"], {"input:0": data})[0]
    got = run_graph(eq, ["output:0"], {"input:0": data})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    tops = channel_maxima(eq, ["act"], batches({"input": data}, 8))[0]
    assert tops.min() > 0.99 * tops.max()  # every channel now reaches the tensor's max


def test_relu6_channels_are_scaled_to_the_tensor_max():
    graph_def = _graph()
    data = RNG.uniform(0, 1, [16, 6, 6, 3]).astype(np.float32)
    eq, scales = equalize_channel_ranges(graph_def, _layers(graph_def), batches({"input": data}, 8))
    before = channel_maxima(graph_def, ["act"], batches({"input": data}, 8))[0]
    tops = channel_maxima(eq, ["act"], batches({"input": data}, 8))[0]
    np.testing.assert_allclose(tops[tops > 0], before.max(), rtol=1e-3)
    want = run_graph(graph_def, ["output:0"], {"input:0": data})[0]
    got = run_graph(eq, ["output:0"], {"input:0": data})[0]
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())


def test_conv_readers_are_left_alone():
    graph_def = _graph(tail=tf.nn.conv2d)
    data = RNG.uniform(0, 1, [8, 6, 6, 3]).astype(np.float32)
    eq, scales = equalize_channel_ranges(graph_def, _layers(graph_def), batches({"input": data}, 8))
    assert scales == {} and eq is graph_def


def test_onednn_calibration_runs_the_data_once_with_equalization(fed_examples):
    """The maxima, ranges and means come from one run of the float graph; the ranges frozen are
    the equalized graph's own (derived: a scaled layer's results are s * x per channel)."""
    from quantize_graph.pipeline import Options, run_pipeline
    graph_def = _graph()
    data = RNG.uniform(-1, 1, [6, 6, 6, 3]).astype(np.float32)
    _, report = run_pipeline(graph_def, ["output"], Options(target="onednn", calibration_inputs={"input": data}))
    assert sum(fed_examples) == 6  # each example through the float graph once
    equalized, scales = equalize_channel_ranges(graph_def, _layers(graph_def), batches({"input": data}, 1))
    assert scales["act"][1] > 10  # the small channel was scaled: the derivation is exercised
    direct = measure(equalized, batches({"input": data}, 1), ranges=list(report.ranges)).tensors
    for tensor in ("conv", "bias", "act"):
        assert report.ranges[tensor] == pytest.approx((direct[tensor].min, direct[tensor].max), rel=1e-5)
