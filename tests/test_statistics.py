"""Ranges without data (issue 10): batch-norm statistics read from every form, moments
propagated through each op (checked against Monte-Carlo estimates where the rule's stated
assumptions hold), the target auto picks with them and what it says."""
import collections

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import graph_pb2

import quantize_graph
from quantize_graph import kernels as qg_kernels
from quantize_graph.graph.nodes import create_node, make_const, set_attr_bool, set_attr_dtype, set_attr_float
from quantize_graph.passes.prepare import prepare_recording_moments
from quantize_graph.passes.strip_training import strip_training_nodes
from quantize_graph.pipeline import Options, run_pipeline
from quantize_graph.runner import run_graph
from quantize_graph.statistics.batch_norm import batch_norm_moments
from quantize_graph.statistics.normal import clipped_moments
from quantize_graph.statistics.propagate import TensorStats, normal_stats, propagate
from quantize_graph.statistics.ranges import image_input_range, statistics_ranges
from quantize_graph.targets import NO_RANGES

tf1 = tf.compat.v1
RNG = np.random.default_rng(3)
C = 6
BN = dict(gamma=RNG.uniform(-2, 2, C).astype(np.float32), beta=RNG.uniform(-1, 1, C).astype(np.float32),
          mean=RNG.uniform(-1, 1, C).astype(np.float32), var=RNG.uniform(0.01, 3, C).astype(np.float32))
EPS = 1e-3
EXPECTED_MEAN = BN["beta"]
EXPECTED_VAR = BN["gamma"].astype(np.float64) ** 2 * BN["var"] / (BN["var"] + EPS)


def ops(graph_def):
    return collections.Counter(n.op for n in graph_def.node)


def build(fn, shape=(1, 7, 7, 3)):
    g = tf.Graph()
    with g.as_default():
        x = tf1.placeholder(tf.float32, shape, name="input")
        tf.identity(fn(x), name="output")
    return g.as_graph_def()


def conv(x, out=C, seed=0):
    w = np.random.default_rng(seed).uniform(-1, 1, [3, 3, int(x.shape[-1]), out]).astype(np.float32)
    return tf.nn.conv2d(x, tf.constant(w), [1, 1, 1, 1], "SAME")


# ---- batch-norm statistics, every form ---------------------------------------------------

def only_moments(graph_def):
    moments = batch_norm_moments(strip_training_nodes(graph_def, ["input", "output"]))
    assert len(moments) == 1, moments
    return next(iter(moments.items()))


def check_moments(graph_def, gamma_used=True):
    name, m = only_moments(graph_def)
    var = EXPECTED_VAR if gamma_used else BN["var"].astype(np.float64) / (BN["var"] + EPS)
    np.testing.assert_allclose(m.mean, EXPECTED_MEAN, rtol=1e-6)
    np.testing.assert_allclose(m.var, var, rtol=1e-5)
    # The name survives folding: it is what the folded BiasAdd is called.
    prepared, moments = prepare_recording_moments(graph_def, ["input"], ["output"])
    assert name in moments and name in {n.name for n in prepared.node}
    return name


def test_fused_batch_norm_v3():
    check_moments(build(lambda x: tf1.nn.fused_batch_norm(
        conv(x), BN["gamma"], BN["beta"], BN["mean"], BN["var"], epsilon=EPS, is_training=False)[0]))


def test_fused_batch_norm_v1():
    check_moments(build(lambda x: tf.raw_ops.FusedBatchNorm(
        x=conv(x), scale=BN["gamma"], offset=BN["beta"], mean=BN["mean"], variance=BN["var"],
        epsilon=EPS, is_training=False)[0]))


def test_training_mode_batch_norm_is_not_read():
    graph_def = build(lambda x: tf.raw_ops.FusedBatchNormV3(
        x=conv(x), scale=BN["gamma"], offset=BN["beta"], mean=[], variance=[], epsilon=EPS,
        is_training=True)[0])
    assert batch_norm_moments(graph_def) == {}


def test_decomposed_slim_form():
    # TF-slim: mul = rsqrt(var + eps) * gamma; x * mul + (beta - mean * mul).
    def fn(x):
        inv = tf.math.rsqrt(tf.constant(BN["var"]) + EPS) * tf.constant(BN["gamma"])
        return conv(x) * inv + (tf.constant(BN["beta"]) - tf.constant(BN["mean"]) * inv)
    check_moments(build(fn))


def test_decomposed_keras_form_without_gamma_behind_reshape():
    # Keras 3 with scale=False: parameters behind Reshape, x * rsqrt(...) directly.
    def fn(x):
        shape = tf.constant([1, 1, 1, C])
        inv = tf.math.rsqrt(tf.reshape(tf.constant(BN["var"]), shape) + EPS)
        shift = tf.reshape(tf.constant(BN["beta"]), shape) - tf.reshape(tf.constant(BN["mean"]), shape) * inv
        return tf.add(conv(x) * inv, shift)
    check_moments(build(fn), gamma_used=False)


def test_decomposed_form_after_matmul_constant_first():
    def fn(x):
        y = tf.matmul(x, tf.constant(RNG.uniform(-1, 1, [5, C]).astype(np.float32)))
        inv = tf.math.rsqrt(tf.constant(BN["var"]) + EPS) * tf.constant(BN["gamma"])
        return tf.add(tf.multiply(inv, y), tf.constant(BN["beta"]) - tf.constant(BN["mean"]) * inv)
    check_moments(build(fn, (3, 5)))


def _legacy_bn_graph(scale_after_normalization):
    g = graph_pb2.GraphDef()
    g.versions.producer = 8
    x = create_node("Placeholder", "input", [])
    set_attr_dtype(x, "dtype", tf.float32)
    w = make_const("w", RNG.uniform(-1, 1, [3, 3, 3, C]).astype(np.float32))
    c = create_node("Conv2D", "conv", ["input", "w"])
    set_attr_dtype(c, "T", tf.float32)
    c.attr["strides"].list.i.extend([1, 1, 1, 1])
    c.attr["padding"].s = b"SAME"
    consts = [make_const(k, BN[k]) for k in ("mean", "var", "beta", "gamma")]
    bn = create_node("BatchNormWithGlobalNormalization", "output", ["conv", "mean", "var", "beta", "gamma"])
    set_attr_dtype(bn, "T", tf.float32)
    set_attr_float(bn, "variance_epsilon", EPS)
    set_attr_bool(bn, "scale_after_normalization", scale_after_normalization)
    g.node.extend([x, w, c] + consts + [bn])
    return g


@pytest.mark.parametrize("scale_after", [True, False])
def test_batch_norm_with_global_normalization(scale_after):
    name, m = only_moments(_legacy_bn_graph(scale_after))
    assert name == "output"
    var = EXPECTED_VAR if scale_after else BN["var"].astype(np.float64) / (BN["var"] + EPS)
    np.testing.assert_allclose(m.mean, EXPECTED_MEAN, rtol=1e-6)
    np.testing.assert_allclose(m.var, var, rtol=1e-5)


def test_real_mobilenet_batch_norms_are_all_read(shared):
    """The TF-slim MobileNet v1 carries its 27 batch norms in the decomposed form."""
    graph_def = quantize_graph.load_graph_def(str(shared / "models/mobilenet_v1_0.25_224/frozen_graph.pb"))
    out = "MobilenetV1/Predictions/Reshape_1"
    prepared, moments = prepare_recording_moments(graph_def, ["input"], [out])
    assert len(moments) == 27
    kinds = {n.name: n.op for n in prepared.node}
    assert all(kinds[name] == "BiasAdd" for name in moments)
    for m in moments.values():
        assert np.all(np.isfinite(m.mean)) and np.all(m.var >= 0)


# ---- moments through each op, against Monte Carlo ----------------------------------------

N = 4000  # samples per channel: MC standard errors well under the 5% tolerance
MEAN = np.array([0.5, -1.0, 2.0, 0.0])
STD = np.array([1.0, 2.0, 0.5, 3.0])


def monte_carlo(fn, spatially_constant=False, inputs=1, seed=0):
    """(graph, {tensor: (mean, var) per channel measured}, input stats) for fn(*inputs) run on
    independent normal inputs with per-channel MEAN/STD."""
    rng = np.random.default_rng(seed)
    g = tf.Graph()
    with g.as_default():
        xs = [tf1.placeholder(tf.float32, [None, 4, 4, 4], name="in%d" % i) for i in range(inputs)]
        tf.identity(fn(*xs), name="out")
    graph_def = g.as_graph_def()
    shape = [N // 16 if not spatially_constant else N, 1 if spatially_constant else 4,
             1 if spatially_constant else 4, 4]
    feeds = {}
    for i in range(inputs):
        v = rng.normal(MEAN, STD, shape)
        if spatially_constant:  # every pixel of an example alike: neighbours fully correlated
            v = np.broadcast_to(v, [N, 4, 4, 4])
        feeds["in%d:0" % i] = v.astype(np.float32)
    y = run_graph(graph_def, ["out:0"], feeds)[0].astype(np.float64)
    flat = y.reshape(-1, y.shape[-1])
    stats = {"in%d" % i: TensorStats(MEAN, STD ** 2, MEAN - 6 * STD, MEAN + 6 * STD) for i in range(inputs)}
    return graph_def, (flat.mean(0), flat.var(0)), stats


def check_propagated(fn, spatially_constant=False, inputs=1, tol=0.05):
    graph_def, (mean, var), stats = monte_carlo(fn, spatially_constant, inputs)
    got = propagate(graph_def, {}, stats, k=6)["out"]
    scale = np.sqrt(var) + 1e-3
    assert np.all(np.abs(got.mean - mean) <= tol * scale * 2 + 1e-3), (got.mean, mean)
    np.testing.assert_allclose(np.broadcast_to(got.var, var.shape), var, rtol=2 * tol, atol=1e-3)
    return got


def test_relu_clipped_normal():
    got = check_propagated(tf.nn.relu)
    assert np.all(got.lo >= 0)


def test_relu6_clipped_normal():
    got = check_propagated(tf.nn.relu6)
    assert np.all(got.lo >= 0) and np.all(got.hi <= 6)


def test_clipped_moments_match_sampling_everywhere():
    rng = np.random.default_rng(1)
    for mu, s, lo, hi in [(0, 1, 0, np.inf), (1, 2, 0, 6), (-3, 1, 0, 6), (5, 3, 0, 6), (7, 0.1, 0, 6)]:
        x = np.clip(rng.normal(mu, s, 400000), lo, hi)
        m, v = clipped_moments(np.array([mu]), np.array([s * s]), lo, hi)
        assert abs(m[0] - x.mean()) < 0.01 * s + 1e-4 and abs(v[0] - x.var()) < 0.01 * s * s + 1e-4


def test_add_of_independent_tensors():
    check_propagated(lambda a, b: tf.nn.relu(a) + b, inputs=2)


def test_bias_add_mul_and_sub_with_constants():
    c = np.array([1.0, -2.0, 0.5, 3.0], np.float32)
    check_propagated(lambda x: tf.nn.bias_add(x * c, c) - 1.0)


def test_conv_depthwise_matmul_linear_propagation():
    rng = np.random.default_rng(5)
    w = rng.normal(0, 0.5, [1, 1, 4, 3]).astype(np.float32)
    check_propagated(lambda x: tf.nn.conv2d(x, w, 1, "VALID"))  # 1x1: no padding to ignore
    dw = rng.normal(0, 0.5, [1, 1, 4, 2]).astype(np.float32)
    check_propagated(lambda x: tf.nn.depthwise_conv2d(x, dw, [1, 1, 1, 1], "VALID"))
    m = rng.normal(0, 0.5, [4, 5]).astype(np.float32)
    check_propagated(lambda x: tf.matmul(tf.reshape(x, [-1, 4]), m))


def test_concat_keeps_each_channel():
    got = check_propagated(lambda a, b: tf.concat([a, tf.nn.relu(b)], 3), inputs=2)
    assert got.channels == 8


def test_pools_and_mean_keep_moments_of_correlated_neighbours():
    """The stated approximation: pools see neighbours that move together."""
    check_propagated(lambda x: tf.nn.max_pool2d(x, 2, 2, "VALID"), spatially_constant=True)
    check_propagated(lambda x: tf.nn.avg_pool2d(x, 3, 1, "SAME"), spatially_constant=True)
    check_propagated(lambda x: tf.reduce_mean(x, [1, 2]), spatially_constant=True)


def test_pad_reshape_squeeze_keep_channels():
    check_propagated(lambda x: tf.squeeze(tf.reshape(tf.pad(x, [[0, 0], [0, 0], [0, 0], [0, 0]]),
                                                     [-1, 1, 16, 4]), [1]))


def test_reshape_that_mixes_channels_collapses_them():
    graph_def, (mean, var), stats = monte_carlo(lambda x: tf.reshape(x, [-1, 8]))
    got = propagate(graph_def, {}, stats, k=6)["out"]
    assert got.channels == 1
    assert abs(got.mean[0] - mean.mean()) < 0.05 and abs(got.var[0] - np.mean(var + mean ** 2) + mean.mean() ** 2) < 0.3


def test_batch_norm_statistics_predict_the_data():
    """conv -> batch norm with moving statistics measured on the data -> Relu: the propagated
    moments of every tensor match the data's within 5%."""
    rng = np.random.default_rng(2)
    w = rng.normal(0, 1, [3, 3, 3, C]).astype(np.float32)
    x = rng.normal(0, 1, [64, 9, 9, 3]).astype(np.float32)
    pre = tf.nn.conv2d(x, w, 1, "SAME").numpy().reshape(-1, C)
    gamma = rng.uniform(0.5, 2, C).astype(np.float32)
    beta = rng.uniform(-1, 1, C).astype(np.float32)
    graph_def = build(lambda t: tf.nn.relu(tf1.nn.fused_batch_norm(
        tf.nn.conv2d(t, w, 1, "SAME"), gamma, beta, pre.mean(0), pre.var(0), epsilon=EPS,
        is_training=False)[0]), (None, 9, 9, 3))
    prepared, moments = prepare_recording_moments(graph_def, ["input"], ["output"])
    stats = propagate(prepared, moments, {}, k=6)
    y = run_graph(graph_def, ["output:0"], {"input:0": x})[0].reshape(-1, C)
    got = stats["output"]
    np.testing.assert_allclose(got.mean, y.mean(0), rtol=0.05, atol=0.02)
    np.testing.assert_allclose(got.var, y.var(0), rtol=0.1, atol=0.02)
    assert got.range()[0] == 0.0 and got.range()[1] >= y.max() * 0.9


def test_ranges_are_union_over_channels_of_k_std():
    st = normal_stats([0.0, 1.0], [1.0, 4.0], k=3, lo=0.0)
    assert st.range() == (0.0, 7.0)
    assert image_input_range(127.5, 127.5) == (-1.0, 1.0)
    assert image_input_range(0.0, 255.0) == (0.0, 1.0)


# ---- the pipeline: target choice, messages, priorities -------------------------------------

def bn_net(batch=None):
    """input -> conv -> BN -> Relu -> conv -> BN -> Relu -> MaxPool -> matmul -> softmax."""
    rng = np.random.default_rng(4)

    def fn(x):
        y = x
        for i in range(2):
            y = conv(y, 8, seed=i)
            y = tf.nn.relu(tf1.nn.fused_batch_norm(y, np.ones(8, np.float32), np.zeros(8, np.float32),
                                                   np.zeros(8, np.float32), np.full(8, 9.0, np.float32),
                                                   is_training=False)[0])
        y = tf.reshape(tf.nn.max_pool2d(y, 2, 2, "VALID"), [-1, 3 * 3 * 8])
        return tf.nn.softmax(tf.matmul(y, rng.normal(0, 0.3, [72, 5]).astype(np.float32)))
    return build(fn, (batch, 7, 7, 3))


def test_auto_picks_onednn_from_statistics_and_says_so():
    graph_def = bn_net()
    q, report = run_pipeline(graph_def, ["output"], Options(mode="eightbit", input_range=(0.0, 1.0)))
    assert report.target == "onednn"
    assert "batch norms give the ranges" in report.target_reason
    assert "ranges from batch-norm statistics, no calibration data" in report.summary()
    assert ops(q)["QuantizedConv2DWithBiasAndReluAndRequantize"] == 2
    assert set(report.range_sources.values()) <= {"batch-norm statistics", "input range"}
    assert report.range_sources["input"] == "input range"
    x = np.random.default_rng(0).uniform(0, 1, [4, 7, 7, 3]).astype(np.float32)
    ref = run_graph(graph_def, ["output:0"], {"input:0": x})[0]
    got = run_graph(q, ["output:0"], {"input:0": x})[0]
    assert np.abs(ref - got).max() < 0.05


def test_without_input_range_the_ops_reading_the_input_stay_float():
    q, report = run_pipeline(bn_net(), ["output"], Options(mode="eightbit"))
    assert report.target == "onednn"
    float_convs = [n for n, (op, why) in report.stayed_float.items() if op == "Conv2D"]
    assert len(float_convs) == 1 and "graph input" in report.stayed_float[float_convs[0]][1]
    assert "--input_range" in report.summary()
    assert ops(q)["QuantizedConv2DWithBiasAndReluAndRequantize"] == 1


def test_kernels_target_takes_statistics_ranges():
    qg_kernels.load()
    q, report = run_pipeline(bn_net(), ["output"], Options(mode="eightbit", target="kernels",
                                                           input_range=(-1.0, 1.0)))
    assert ops(q)["QgQuantizedConv2D"] == 2 and report.range_source.startswith("ranges from batch-norm")


def test_calibration_data_wins_over_statistics():
    x = np.random.default_rng(0).uniform(0, 1, [8, 7, 7, 3]).astype(np.float32)
    _, report = run_pipeline(bn_net(), ["output"], Options(
        mode="eightbit", calibration_inputs={"input": x}, input_range=(0.0, 1.0)))
    assert report.target_reason == "TensorFlow's oneDNN int8 kernels run here"
    assert report.range_source.startswith("ranges from calibration data")
    assert set(report.range_sources.values()) == {"calibration minmax"}


def test_a_graph_without_batch_norms_falls_back_to_reference_and_says_why():
    from tests.graphs import conv_relu_pool_graph
    graph_def, inp, out = conv_relu_pool_graph()
    q, report = run_pipeline(graph_def, [out], Options(mode="eightbit"))
    assert report.target == "reference" and report.target_reason == NO_RANGES
    assert "--calibration_data" in NO_RANGES and "slower than float" in NO_RANGES
    assert ops(q)["QuantizedConv2D"] == 1


def test_data_free_bias_correction_uses_propagated_means():
    graph_def = bn_net()
    with_bc, _ = run_pipeline(graph_def, ["output"], Options(mode="eightbit", input_range=(0.0, 1.0)))
    without, _ = run_pipeline(graph_def, ["output"], Options(mode="eightbit", input_range=(0.0, 1.0),
                                                             bias_correction=False))
    biases = [n.name for n in with_bc.node if n.op == "Const" and "bias" in n.name.lower()]
    changed = [b for b in biases if not np.array_equal(
        tf.make_ndarray(next(n for n in with_bc.node if n.name == b).attr["value"].tensor),
        tf.make_ndarray(next(n for n in without.node if n.name == b).attr["value"].tensor))]
    assert changed, "data-free bias correction changed no bias"


def test_statistics_ranges_skip_tensors_they_cannot_reach():
    graph_def = bn_net()
    prepared, moments = prepare_recording_moments(graph_def, ["input"], ["output"])
    ranges, sources, _ = statistics_ranges(prepared, moments, ["input", "output"], ["input"], None)
    assert ranges == {} and sources == {}  # no input range; Softmax has no rule


# ---- the command line ----------------------------------------------------------------------

from tests.test_cli import qg  # noqa: E402,F401  (the in-process CLI runner fixture)


def test_original_command_without_data_uses_statistics(qg, tmp_path):
    import json
    from tests.graphs import write_graph
    model = write_graph(bn_net(), tmp_path / "bn.pb")
    out, ranges = tmp_path / "q.pb", tmp_path / "ranges.json"
    result = qg("--input=%s" % model, "--output=%s" % out, "--mode=eightbit", "--output_node_names=output",
                "--input_mean=0", "--input_std=255", "--ranges_out=%s" % ranges)
    assert result.code == 0, result
    assert "target onednn: " in result.out and "batch norms give the ranges" in result.out
    assert "ranges from batch-norm statistics, no calibration data" in result.out
    doc = json.loads(ranges.read_text())
    assert doc["method"] == "batch-norm statistics" and doc["sources"]["input"] == "input range"
    assert doc["ranges"]["input"] == [0.0, 1.0]
    assert set(doc["sources"].values()) == {"batch-norm statistics", "input range"}


def test_input_range_flag_and_its_errors(qg, tmp_path):
    from tests.graphs import write_graph
    model = write_graph(bn_net(), tmp_path / "bn.pb")
    ok = qg("--input=%s" % model, "--output=%s" % (tmp_path / "q.pb"), "--mode=eightbit",
            "--output_node_names=output", "--input_range=0,1")
    assert ok.code == 0 and "--input_range" not in ok.out
    for bad, words in (("1,0", "MIN below MAX"), ("0", "MIN,MAX"), ("a,b", "MIN,MAX"), ("0,inf", "finite")):
        result = qg("--input=%s" % model, "--output=%s" % (tmp_path / "bad.pb"), "--mode=eightbit",
                    "--output_node_names=output", "--input_range=" + bad)
        assert result.code == 1 and words in result.err and result.err.count("\n") == 1, (bad, result)
        assert not (tmp_path / "bad.pb").exists()


def test_original_command_on_a_graph_without_batch_norms_says_why_it_is_slow(qg, tmp_path):
    from tests.graphs import conv_relu_pool_graph, write_graph
    graph_def, _, _ = conv_relu_pool_graph()
    model = write_graph(graph_def, tmp_path / "plain.pb")
    result = qg("--input=%s" % model, "--output=%s" % (tmp_path / "q.pb"), "--mode=eightbit",
                "--output_node_names=softmax")
    assert result.code == 0
    assert ("target reference: " + NO_RANGES) in result.out


def test_k_grows_near_the_input_for_one_and_two_sided_tensors():
    from quantize_graph.statistics import ranges as R
    prepared, moments = prepare_recording_moments(bn_net(), ["input"], ["output"])
    tensors = sorted(moments) + [n.name for n in prepared.node if n.op == "Relu"]
    ranges = statistics_ranges(prepared, moments, tensors, ["input"], (0.0, 1.0))[0]
    relus = sorted(n.name for n in prepared.node if n.op == "Relu")  # depth 1, then depth 2
    k = R.k_at_depth()
    assert k(1) == pytest.approx(R.DEFAULT_K + R.EARLY_EXTRA_K) and k(1) > k(2) > k(30) > R.DEFAULT_K
    # bn_net's batch norms: mean 0, std 3 / sqrt(9 + eps) ~ 1 (gamma 1, moving variance 9).
    std = 3.0 / np.sqrt(9.0 + 1e-3)
    assert ranges[relus[0]] == pytest.approx((0.0, k(1) * std), rel=1e-6)
    assert ranges[relus[1]] == pytest.approx((0.0, k(2) * std), rel=1e-6)
    # The batch norms' own outputs are two-sided, at depths 1 and 2: the same k.
    halves = sorted(ranges[bn][1] for bn in moments)
    assert all(ranges[bn][0] == pytest.approx(-ranges[bn][1], rel=1e-6) for bn in moments)
    assert halves == pytest.approx([k(2) * std, k(1) * std], rel=1e-6)


@pytest.mark.parametrize("flag", ["--report=%s/r.md", "--max_relative_error=0.1", "--min_top1_agreement=0.9"])
def test_flags_that_need_data_are_refused_without_it(qg, tmp_path, flag):
    """They were silently ignored without --calibration_data (issue 12's bug)."""
    from tests.graphs import write_graph
    model = write_graph(bn_net(), tmp_path / "bn.pb")
    out = tmp_path / "q.pb"
    result = qg("--input=%s" % model, "--output=%s" % out, "--mode=eightbit", "--output_node_names=output",
                "--input_range=0,1", flag.replace("%s", str(tmp_path)))
    assert result.code == 1 and "need calibration data" in result.err and not out.exists()
