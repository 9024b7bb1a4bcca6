"""Calibration: range choice on synthetic distributions, ranges files, frozen ranges in graphs."""
import collections
import json

import numpy as np
import pytest
import tensorflow as tf

import quantize_graph as qg
from quantize_graph.calibrate import TensorStats, choose_range, load_ranges, save_ranges
from quantize_graph.errors import QuantizeGraphError
from quantize_graph.runner import run_graph
from tests.graphs import conv_relu_pool_graph

RNG = np.random.RandomState(3)


def stats_of(values):
    s = TensorStats()
    s.add_range(values)
    s.add_histogram(values)
    return s


@pytest.fixture(scope="module")
def heavy_tail():
    # 99.9% of the mass in N(0, 1), a few outliers out to 100.
    body = RNG.normal(0, 1, 200000)
    return np.concatenate([body, RNG.uniform(50, 100, 200)]).astype(np.float32)


def test_minmax_keeps_the_tail(heavy_tail):
    lo, hi = choose_range(stats_of(heavy_tail), "minmax")
    assert lo == pytest.approx(heavy_tail.min()) and hi == pytest.approx(heavy_tail.max())


def test_entropy_clips_a_heavy_tail(heavy_tail):
    lo, hi = choose_range(stats_of(heavy_tail), "entropy")
    assert hi < 0.5 * heavy_tail.max()   # the tail is clipped ...
    assert hi > 3.0                       # ... but not the body of N(0, 1)
    assert lo < -3.0


def test_entropy_keeps_a_bounded_distribution():
    uniform = RNG.uniform(0, 6, 100000).astype(np.float32)
    lo, hi = choose_range(stats_of(uniform), "entropy")
    assert lo == 0.0 and hi > 5.5


def test_percentile_clips_at_the_percentile(heavy_tail):
    _, hi = choose_range(stats_of(heavy_tail), "percentile", 99.0)
    assert 2.0 < hi < 3.5  # |N(0,1)| 99th percentile is 2.58


def test_ranges_always_hold_zero():
    lo, hi = choose_range(stats_of(np.full(10, 3.0, np.float32)), "minmax")
    assert lo == 0.0 and hi == 3.0


def test_unknown_method():
    with pytest.raises(QuantizeGraphError, match="unknown calibration method"):
        choose_range(stats_of(np.ones(3, np.float32)), "median")


def test_ranges_file_round_trip(tmp_path):
    ranges = {"a": (-1.5, 2.25), "b/c:1": (0.0, 6.0)}
    path = tmp_path / "ranges.json"
    save_ranges(str(path), ranges, "percentile", "abc123", 100, percentile=99.9)
    doc = json.loads(path.read_text())
    assert doc["method"] == "percentile" and doc["fingerprint"] == "abc123"
    assert load_ranges(str(path)) == ranges


def test_bad_ranges_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"ranges": {"a": [2, 1]}}')
    with pytest.raises(QuantizeGraphError, match="bad range"):
        load_ranges(str(path))
    path.write_text("not json")
    with pytest.raises(QuantizeGraphError, match="not a quantize_graph ranges"):
        load_ranges(str(path))


# Entropy clips tails by design; on a few thousand values per tensor (these small graphs) its
# histograms are sparse and it clips hard, so its bound is looser than min/max's.
TOLERANCE = {"minmax": 0.05, "percentile": 0.05, "entropy": 0.25}


@pytest.mark.parametrize("target", ["reference", "onednn"])
@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy"])
def test_calibrated_graph_has_no_runtime_ranges(method, target):
    graph_def, inp, out = conv_relu_pool_graph()
    data = RNG.uniform(-1, 1, [64, 8, 8, 3]).astype(np.float32)
    q = qg.quantize(graph_def, [out], calibration_inputs={inp: data}, calibration_method=method,
                    target=target)
    ops = collections.Counter(n.op for n in q.node)
    assert ops["RequantizationRange"] == 0 and ops["Min"] == 0 and ops["Max"] == 0
    x = data[:1]
    ref = run_graph(graph_def, [out + ":0"], {inp + ":0": x})[0]
    got = run_graph(q, [out + ":0"], {inp + ":0": x})[0]
    assert np.abs(ref - got).max() <= TOLERANCE[method] * (ref.max() - ref.min())


def test_ranges_in_reproduces_calibration(tmp_path):
    graph_def, inp, out = conv_relu_pool_graph()
    data = RNG.uniform(-1, 1, [8, 8, 8, 3]).astype(np.float32)
    from quantize_graph.pipeline import Options, run_pipeline
    first, report = run_pipeline(graph_def, [out], Options(calibration_inputs={inp: data}))
    path = tmp_path / "ranges.json"
    save_ranges(str(path), report.ranges, "minmax", "x", 8)
    # With the same data (bias correction and range equalization need it) ...
    second = qg.quantize(graph_def, [out], ranges=load_ranges(str(path)), calibration_inputs={inp: data})
    assert second.SerializeToString(deterministic=True) == first.SerializeToString(deterministic=True)
    # ... and without: the ranges alone give the graph calibrated without those two levers.
    plain, _ = run_pipeline(graph_def, [out], Options(calibration_inputs={inp: data}, bias_correction=False,
                                                       equalize_ranges=False))
    third = qg.quantize(graph_def, [out], ranges=load_ranges(str(path)))
    assert third.SerializeToString(deterministic=True) == plain.SerializeToString(deterministic=True)


def test_ranges_in_for_another_graph_is_an_error():
    graph_def, _, out = conv_relu_pool_graph()
    with pytest.raises(QuantizeGraphError, match="no range for tensor"):
        qg.quantize(graph_def, [out], ranges={"something_else": (0.0, 1.0)})


def test_fake_quant_ranges_win_over_calibration():
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, 4, 4, 2], name="input")
        y = tf.nn.conv2d(x, tf.constant(RNG.randn(3, 3, 2, 3).astype(np.float32)), [1, 1, 1, 1], "SAME")
        y = tf.quantization.fake_quant_with_min_max_vars(y, -7.0, 7.0, name="fq")
        tf.nn.max_pool2d(y, 2, 2, "VALID", name="output")
    q = qg.quantize(g.as_graph_def(), ["output"], target="reference",
                    calibration_inputs={"input": RNG.uniform(-1, 1, [4, 4, 4, 2]).astype(np.float32)})
    consts = {n.name: n for n in q.node if n.op == "Const"}
    pool_input = [n for n in q.node if n.op == "QuantizeV2" and n.input[0] == "fq"][0]
    # The FakeQuant's [-7, 7], nudged (as FakeQuant itself does) so that 0 is a code.
    step = 14.0 / 255
    assert float(tf.make_ndarray(consts[pool_input.input[1]].attr["value"].tensor)) == pytest.approx(-7.0, abs=step / 2 + 1e-6)
    assert float(tf.make_ndarray(consts[pool_input.input[2]].attr["value"].tensor)) == pytest.approx(7.0, abs=step / 2 + 1e-6)


def test_fake_quant_ranges_win_over_calibration_onednn():
    g = tf.Graph()
    with g.as_default():
        x = tf.nn.relu(tf.compat.v1.placeholder(tf.float32, [None, 4, 4, 2], name="input"))
        y = tf.nn.conv2d(x, tf.constant(RNG.randn(3, 3, 2, 3).astype(np.float32)), [1, 1, 1, 1], "SAME")
        y = tf.quantization.fake_quant_with_min_max_vars(y, 0.0, 5.0, name="fq")
        tf.nn.max_pool2d(y, 2, 2, "VALID", name="output")
    q = qg.quantize(g.as_graph_def(), ["output"], target="onednn",
                    calibration_inputs={"input": RNG.uniform(-1, 1, [4, 4, 4, 2]).astype(np.float32)})
    consts = {n.name: n for n in q.node if n.op == "Const"}
    pool_input = [n for n in q.node if n.op == "QuantizeV2" and n.input[0] == "fq"][0]
    assert float(tf.make_ndarray(consts[pool_input.input[2]].attr["value"].tensor)) == 5.0


def test_entropy_keeps_a_saturation_bound():
    # Relu6-like: a quarter of the values pile up at exactly 6.
    values = np.clip(RNG.normal(2, 3, 100000), 0, 6).astype(np.float32)
    _, hi = choose_range(stats_of(values), "entropy")
    assert hi == pytest.approx(6.0)
