"""The per-layer error report and the automatic float fallback."""
import numpy as np
import pytest
import tensorflow as tf

from quantize_graph.errors import QuantizeGraphError
from quantize_graph.pipeline import Options, run_pipeline
from quantize_graph.sensitivity import fewest_float_layers, format_report, weight_sqnr
from quantize_graph.weight_schemes import DEQUANTIZERS

RNG = np.random.RandomState(5)


@pytest.mark.parametrize("needed", [0, 1, 3, 5, 8])
def test_fewest_float_layers_finds_the_shortest_prefix(needed):
    ranked = ["l%d" % i for i in range(8)]
    calls = []

    def meets(excluded):
        calls.append(len(excluded))
        return len(excluded) >= needed

    excluded, met = fewest_float_layers(ranked, meets)
    assert met and excluded == ranked[:needed]
    assert len(calls) <= 2 * 3 + 2  # doubling then bisection: O(log n), each size measured once
    assert len(calls) == len(set(calls))


def test_fewest_float_layers_reports_a_miss():
    excluded, met = fewest_float_layers(["a", "b"], lambda excluded: False)
    assert not met and excluded == ["a", "b"]


def test_weight_sqnr_follows_the_targets_scheme():
    w = RNG.randn(64, 16) * np.logspace(-2, 1, 16)  # MatMul [K, N], channel scales over 3 decades
    per_tensor = weight_sqnr(w, DEQUANTIZERS["onednn"]("MatMul", w))   # onednn: one scale
    per_channel = weight_sqnr(w, DEQUANTIZERS["kernels"]("MatMul", w))  # kernels: per channel
    assert per_channel > per_tensor + 5


def _graph():
    """Two convs; the second one's channels differ in scale by 1000x (hard per tensor)."""
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 8, 8, 3], name="input")
        y = tf.nn.relu(tf.nn.conv2d(x, tf.constant(RNG.randn(3, 3, 3, 8).astype(np.float32)),
                                    [1, 1, 1, 1], "SAME", name="conv1"))
        w2 = (RNG.randn(1, 1, 8, 4) * np.array([1000.0, 1.0, 1.0, 0.001])).astype(np.float32)
        # A Relu, so that conv2 runs in int8 (an int8 result only float ops read stays float).
        y = tf.nn.relu(tf.nn.conv2d(y, tf.constant(w2), [1, 1, 1, 1], "SAME", name="conv2"))
        tf.identity(tf.reduce_mean(y, axis=[1, 2]), name="output")
    return g.as_graph_def()


def _options(**kw):
    data = RNG.uniform(-1, 1, [20, 8, 8, 3]).astype(np.float32)
    return Options(calibration_inputs={"input": data}, **kw)


def test_report_lists_every_layer_with_its_range():
    _, report = run_pipeline(_graph(), ["output"], _options(layer_report=True))
    names = {r.layer for r in report.layers}
    assert {"conv1", "conv2"} <= names
    assert report.held_out_error is not None and report.fallback is None
    table = format_report(report.layers, "markdown")
    assert "| conv2 | Conv2D |" in table


def test_fallback_keeps_layers_float_until_the_goal_is_met():
    loose, _ = run_pipeline(_graph(), ["output"], _options())
    graph, report = run_pipeline(_graph(), ["output"], _options(max_relative_error=1e-3))
    assert report.fallback, "a 0.1% error goal needs some layer in float"
    assert report.held_out_error.relative_error <= 1e-3
    for name in report.fallback:
        assert name in report.stayed_float
    ops = [n.op for n in graph.node]
    assert len([o for o in ops if o.startswith("Quantized")]) < len(
        [n for n in loose.node if n.op.startswith("Quantized")])


def test_unreachable_goal_is_an_error():
    with pytest.raises(QuantizeGraphError, match="not met even with every layer in float"):
        run_pipeline(_graph(), ["output"], _options(max_relative_error=-1.0))


def test_goal_without_calibration_data_is_an_error():
    with pytest.raises(QuantizeGraphError, match="need calibration data"):
        run_pipeline(_graph(), ["output"], Options(min_top1_agreement=0.9))
