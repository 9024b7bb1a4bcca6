"""Mode bfloat16 (issue 14): every op family in bfloat16 against float, Casts only at the
region's border and never in cancelling pairs, float32 inputs/outputs and the SavedModel
signature unchanged, the weight rounding, the mixed eightbit mode, and the warning printed
where the CPU has no bfloat16 unit (the CPU check is injected, so both paths run anywhere)."""
import io

import numpy as np
import pytest
import tensorflow as tf

import quantize_graph as qg
from quantize_graph import cpu_bf16, runner
from quantize_graph.evaluate import load_images, predict, read_labels_csv
from quantize_graph.passes import bfloat16
from quantize_graph.graph.signature import interface
from quantize_graph.passes.bfloat16 import BF16_OPS, to_bfloat16
from quantize_graph.passes.bfloat16_rounding import (BF16, exact_bias_scales, neighbours, round_keeping_means,
                                                     round_keeping_sums)
from quantize_graph.passes.prepare import prepare
from quantize_graph.runner import run_graph
from tests.graphs import conv_relu_pool_graph, residual_graph, write_graph
from tests.test_cli import assert_one_line_error, qg as qg_cli, snapshot  # noqa: F401 (fixture)
from tests.test_saved_model import _signature

tf1 = tf.compat.v1
BF16_ENUM = tf.bfloat16.as_datatype_enum
# bfloat16 keeps 8 significant bits (relative step 2^-8 = 0.4%); a few roundings in a row
# (input, weights, each op's result) stay well within 2% of the output's scale.
TOLERANCE = 0.02


def _graph(build, shape=(2, 8, 8, 4), seed=0):
    """A one-family float graph: input [shape] -> build(x, rng) -> float output "out"."""
    rng = np.random.default_rng(seed)
    g = tf.Graph()
    with g.as_default():
        x = tf1.placeholder(tf.float32, shape, name="input")
        # Not the input itself: a conv reading a graph input stays float32 by design.
        tf.identity(build(tf.add(x, 0.5, name="shift"), rng), name="out")
    return g.as_graph_def()


def _w(rng, *shape, scale=0.3):
    return tf.constant(rng.normal(0, scale, shape).astype(np.float32))


FAMILIES = {
    "conv_bias_relu": lambda x, r: tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, _w(r, 3, 3, 4, 8), 1, "SAME"), _w(r, 8))),
    "depthwise_relu6": lambda x, r: tf.nn.relu6(tf1.nn.depthwise_conv2d_native(x, _w(r, 3, 3, 4, 2), [1, 1, 1, 1], "SAME")),
    # A Relu after it: a MatMul + BiasAdd that reaches the output alone would be the logits.
    "matmul_bias": lambda x, r: tf.nn.relu(tf.nn.bias_add(tf.matmul(tf.reshape(x, [2, 256]), _w(r, 256, 16, scale=0.1)), _w(r, 16))),
    "max_avg_pool": lambda x, r: tf.nn.max_pool2d(x, 2, 2, "VALID") + tf.nn.avg_pool2d(x, 2, 2, "VALID"),
    "concat": lambda x, r: tf.concat([tf.nn.relu(x), tf.nn.conv2d(x, _w(r, 1, 1, 4, 3), 1, "SAME")], 3),
    "residual_add": lambda x, r: tf.nn.relu(tf.add(tf.nn.conv2d(x, _w(r, 3, 3, 4, 4), 1, "SAME"), x)),
    "pad_reshape": lambda x, r: tf.reshape(tf.pad(tf.nn.conv2d(x, _w(r, 3, 3, 4, 4), 1, "VALID"), [[0, 0], [1, 1], [1, 1], [0, 0]]), [2, -1]),
}


def _outputs(graph_def, x, output="out"):
    return run_graph(graph_def, [output + ":0"], {"input:0": x})[0]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_op_family_runs_in_bfloat16_close_to_float(family):
    graph = prepare(_graph(FAMILIES[family]), ["input"], ["out"])
    result = to_bfloat16(graph, ["input"], ["out"])
    bf16_ops = {n.op for n in result.graph_def.node if n.attr["T"].type == BF16_ENUM}
    expected = {n.op for n in graph.node if n.op in BF16_OPS}
    assert expected and expected <= bf16_ops, (expected, bf16_ops)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 8, 8, 4)).astype(np.float32)
    want, got = _outputs(graph, x), _outputs(result.graph_def, x)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.max(np.abs(got - want)) <= TOLERANCE * np.max(np.abs(want))


def _casts(graph_def):
    return [n for n in graph_def.node if n.op == "Cast"]


def test_casts_only_at_the_border_and_none_cancel():
    graph, inp, out = residual_graph()
    graph = prepare(graph, [inp], [out])
    result = to_bfloat16(graph, [inp], [out])
    casts = _casts(result.graph_def)
    by_name = {n.name: n for n in result.graph_def.node}
    for cast in casts:  # a Cast never reads a Cast: no float->bf16->float round trips
        assert by_name[cast.input[0].split(":")[0]].op != "Cast", cast.name
    # The stem (the conv reading the image and the next, 8 input channels) and the logits stay
    # float32, the logits' filter stored as bfloat16 (a Cast back); the two stem results the
    # residual Add reads go into the region and the flattened features come out: one Cast per
    # tensor, whatever the graph's depth.
    directions = sorted((tf.as_dtype(c.attr["SrcT"].type).name, tf.as_dtype(c.attr["DstT"].type).name)
                        for c in casts)
    assert directions == [("bfloat16", "float32")] * 2 + [("float32", "bfloat16")] * 2
    assert sorted(c.input[0] for c in casts if c.attr["DstT"].type == BF16_ENUM) == ["a", "b"]
    assert result.float_reasons["Conv2D_1"].startswith("stem")
    assert result.float_reasons["softmax"].startswith("float32 for accuracy")
    assert result.float_reasons["logits"].startswith("logits")
    x = np.random.default_rng(2).uniform(-1, 1, (3, 12, 12, 3)).astype(np.float32)
    np.testing.assert_allclose(_outputs(result.graph_def, x, out), _outputs(graph, x, out), atol=5e-3)


def test_weights_are_stored_in_half_the_bytes():
    graph, inp, out = residual_graph()
    graph = prepare(graph, [inp], [out])
    result = to_bfloat16(graph, [inp], [out])
    # The stem's two convs keep their 216 + 576 float32 weights; all else is halved.
    stem = [n.input[1] for n in graph.node if n.op == "Conv2D" and n.name in result.float_reasons
            and not result.float_reasons[n.name].startswith("logits")]
    size = lambda g, skip=(): sum(n.attr["value"].tensor.ByteSize() for n in g.node
                                  if n.op == "Const" and n.name not in skip)
    assert len(stem) == 2 and all(n.attr["dtype"].type == tf.float32.as_datatype_enum
                                  for n in result.graph_def.node if n.name in stem)
    assert size(result.graph_def, stem) <= 0.51 * size(graph, stem)


def test_inputs_and_outputs_keep_float32_dtype_and_shape():
    graph, inp, _ = residual_graph()
    result = qg.quantize(graph, ["softmax", "cat"], mode="bfloat16")  # "cat" is in the region

    def spec(g, name):
        t = tf.Graph()
        with t.as_default():
            tf1.import_graph_def(g, name="")
        tensor = t.get_tensor_by_name(name + ":0")
        return tensor.dtype, tensor.shape.as_list()
    for name in ("input", "softmax", "cat"):
        assert spec(result, name) == spec(graph, name), name
    assert next(n for n in result.node if n.name == "cat").op == "Cast"
    assert next(n for n in result.node if n.name == "cat/bfloat16").attr["T"].type == BF16_ENUM


def test_saved_model_keeps_its_signature(qg_cli, tmp_path):
    graph, _, _ = conv_relu_pool_graph()
    write_graph(graph, tmp_path / "model.pb")
    result = qg_cli("--input=%s" % (tmp_path / "model.pb"), "--output=%s/" % (tmp_path / "v2"),
                    "--mode=bfloat16", "--output_node_names=softmax")
    assert result.code == 0, result
    signature = interface(_signature(tmp_path / "v2"))
    assert signature["inputs"] == {"input": ("float32", (1, 8, 8, 3))}
    assert signature["outputs"] == {"softmax": ("float32", (1, 5))}
    loaded = tf.saved_model.load(str(tmp_path / "v2"))
    x = np.random.default_rng(3).uniform(0, 1, (1, 8, 8, 3)).astype(np.float32)
    got = loaded.signatures["serving_default"](input=tf.constant(x))["softmax"].numpy()
    np.testing.assert_allclose(got, _outputs(graph, x, "softmax"), atol=5e-3)


def test_round_keeping_sums_picks_a_neighbour_and_cancels_channel_errors():
    values = np.random.default_rng(4).normal(0, 1, (3, 3, 16, 8)).astype(np.float32) * 7
    rounded = round_keeping_sums(values, axis=3).astype(np.float32)
    nearest, other = neighbours(values)
    assert np.all((rounded == nearest) | (rounded == other))
    plain = np.abs((nearest - values).sum(axis=(0, 1, 2)))
    kept = np.abs((rounded - values).sum(axis=(0, 1, 2)))
    assert np.all(kept <= plain) and kept.max() < 0.2 * plain.max()
    bias = np.float32([3.14159, -0.001234, 0.0, 250.7])
    scaled = bias * exact_bias_scales(bias)
    np.testing.assert_array_equal(scaled.astype(np.float32).astype(BF16).astype(np.float32),
                                  scaled.astype(np.float32))
    assert np.all(np.abs(exact_bias_scales(bias) - 1) <= 2.0 ** -8)


def test_mixed_eightbit_keeps_excluded_layers_in_bfloat16():
    graph, inp, out = residual_graph()
    x = np.random.default_rng(5).uniform(-1, 1, (8, 12, 12, 3)).astype(np.float32)
    options = dict(target="onednn", calibration_inputs={inp: x}, excluded_nodes=("Conv2D_1", "pool"))
    plain = qg.quantize(graph, [out], mode="eightbit", **options)
    mixed = qg.quantize(graph, [out], mode="eightbit", bfloat16_fallback=True, **options)
    t = {n.name: n for n in mixed.node}
    assert t["Conv2D_1"].op == "Conv2D" and t["Conv2D_1"].attr["T"].type == BF16_ENUM
    # A MaxPool alone between int8 ops would only add two Casts: it stays float32.
    assert t["pool"].attr["T"].type == tf.float32.as_datatype_enum
    assert not any(n.op == "Cast" for n in plain.node)
    assert sum(n.op.startswith("Quantized") for n in mixed.node) == sum(
        n.op.startswith("Quantized") for n in plain.node)
    want = _outputs(graph, x, out)
    assert np.max(np.abs(_outputs(mixed, x, out) - want)) <= TOLERANCE


def test_cpu_check_reads_the_flags():
    assert cpu_bf16.has_native_bf16({"avx512f", "avx512_bf16"})
    assert cpu_bf16.has_native_bf16({"amx_tile", "amx_bf16"})
    assert not cpu_bf16.has_native_bf16({"avx2", "fma", "avx512f", "avx512_vnni"})


@pytest.fixture
def no_bf16_cpu(monkeypatch):
    """This CPU as one without bfloat16 units, and the once-per-process warning not yet given."""
    monkeypatch.setattr(cpu_bf16, "cpu_flags", lambda path=None: {"avx2", "fma"})
    monkeypatch.setattr(cpu_bf16, "_warned", False)


def test_runner_warns_once_and_still_runs_correctly(no_bf16_cpu, capsys):
    graph = prepare(_graph(FAMILIES["conv_bias_relu"]), ["input"], ["out"])
    bf16 = to_bfloat16(graph, ["input"], ["out"]).graph_def
    x = np.random.default_rng(6).uniform(-1, 1, (2, 8, 8, 4)).astype(np.float32)
    _outputs(graph, x)
    assert cpu_bf16.EMULATED_WARNING not in capsys.readouterr().err  # a float graph: no warning
    got = _outputs(bf16, x)
    with runner.GraphRunner(bf16):
        pass
    err = capsys.readouterr().err
    assert err.count(cpu_bf16.EMULATED_WARNING) == 1
    assert np.max(np.abs(got - _outputs(graph, x))) <= TOLERANCE * np.max(np.abs(got))


def test_no_warning_on_a_cpu_with_bf16_units(monkeypatch, capsys):
    monkeypatch.setattr(cpu_bf16, "_warned", False)
    stream = io.StringIO()
    assert not cpu_bf16.warn_if_emulated(None, stream, flags={"avx512_bf16"})
    assert cpu_bf16.warn_if_emulated(None, stream, flags={"avx2"})
    assert stream.getvalue() == cpu_bf16.EMULATED_WARNING + "\n"


def test_cli_bfloat16_mode_warns_and_reports(qg_cli, no_bf16_cpu, tmp_path):
    graph, _, _ = conv_relu_pool_graph()
    write_graph(graph, tmp_path / "model.pb")
    result = qg_cli("--input=%s" % (tmp_path / "model.pb"), "--output=%s" % (tmp_path / "bf16.pb"),
                    "--mode=bfloat16", "--output_node_names=softmax")
    assert result.code == 0, result
    assert cpu_bf16.EMULATED_WARNING in result.err.splitlines()
    # The conv reads the image and the MatMul is the logits: both layers stay float32.
    assert ("2 ops in bfloat16; 5 ops stay float32: BiasAdd x1, Conv2D x1, MatMul x1, Relu x1, "
            "Softmax x1") in result.out


def test_bfloat16_fallback_outside_eightbit_is_a_one_line_error(qg_cli, tmp_path):
    graph, _, _ = conv_relu_pool_graph()
    write_graph(graph, tmp_path / "model.pb")
    before = snapshot(tmp_path)
    result = qg_cli("--input=%s" % (tmp_path / "model.pb"), "--output=%s" % (tmp_path / "out.pb"),
                    "--mode=bfloat16", "--bfloat16_fallback", "--output_node_names=softmax")
    assert_one_line_error(result, "--bfloat16_fallback", "eightbit")
    assert snapshot(tmp_path) == before


def test_a_bias_that_cancels_a_large_conv_result_stays_exact(monkeypatch):
    """A folded batch norm's bias nearly cancels the conv result (here ~-34 against ~36):
    rounded to bfloat16 (steps of 0.25 there) it would shift each channel by up to 0.125 on
    every input alike."""
    rng = np.random.default_rng(7)
    w = rng.uniform(0.5, 1.5, (3, 3, 4, 6)).astype(np.float32)
    # Half-way between bfloat16 neighbours (0.25 apart at 32-64): the worst case for rounding.
    bias = -(np.floor(0.95 * w.sum(axis=(0, 1, 2)) * 4) / 4 + 0.125).astype(np.float32)
    w2 = rng.uniform(-0.2, 0.5, (1, 1, 6, 5)).astype(np.float32)

    def build(x, r):
        y = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, tf.constant(w), 1, "VALID"), tf.constant(bias)))
        return tf.nn.relu(tf.nn.conv2d(y, tf.constant(w2), 1, "SAME"))
    graph = prepare(_graph(build), ["input"], ["out"])
    # Inputs already bfloat16 values: their rounding, amplified by the same cancellation, would
    # hide what the bias does.
    x = rng.uniform(0.9, 1.1, (2, 8, 8, 4)).astype(BF16).astype(np.float32) - 0.5  # +0.5: exact
    want = _outputs(graph, x)
    error = lambda g: np.max(np.abs(_outputs(g, x) - want)) / np.max(np.abs(want))
    exact = error(to_bfloat16(graph, ["input"], ["out"]).graph_def)
    monkeypatch.setattr(bfloat16, "with_rounded_layers", lambda g, *args: g)
    rounded = error(to_bfloat16(graph, ["input"], ["out"]).graph_def)
    # Measured: 0.35% of the output's scale with scaled biases, 1.5% with rounded ones.
    assert exact <= 0.005 and rounded > 3 * exact, (exact, rounded)


def test_test_mode_compares_a_bfloat16_graph(qg_cli, tmp_path):
    graph, _, _ = conv_relu_pool_graph()
    write_graph(graph, tmp_path / "model.pb")
    write_graph(qg.quantize(graph, ["softmax"], mode="bfloat16"), tmp_path / "bf16.pb")
    result = qg_cli("--mode=test", "--input=%s" % (tmp_path / "model.pb"),
                    "--compare=%s" % (tmp_path / "bf16.pb"), "--test_input_dims=1,8,8,3",
                    "--output_node_names=softmax")
    assert result.code == 0, result
    assert "top-1" in result.out or "agreement" in result.out, result.out


def test_cli_mixed_mode_counts_its_bfloat16_layers(qg_cli, tmp_path):
    graph, _, _ = residual_graph()
    write_graph(graph, tmp_path / "model.pb")
    np.save(tmp_path / "x.npy", np.random.default_rng(8).uniform(-1, 1, (8, 12, 12, 3)).astype(np.float32))
    result = qg_cli("--input=%s" % (tmp_path / "model.pb"), "--output=%s" % (tmp_path / "q.pb"),
                    "--mode=eightbit", "--target=onednn", "--calibration_data=%s" % (tmp_path / "x.npy"),
                    "--excluded_nodes=Conv2D_1", "--bfloat16_fallback", "--output_node_names=softmax",
                    "--print_nodes")
    assert result.code == 0, result
    assert "float: Conv2D_1 (Conv2D): excluded by --excluded_nodes; runs in bfloat16" in result.out
    assert "of them run in bfloat16" in result.out


def _cancelling_channels(rng, rows=9, channels=32, mean=3.0):
    """A depthwise-like filter (9 weights per channel) on inputs of mean 3, and a folded batch
    norm's bias that cancels 97% of the mean output: the case where a rounding shift matters."""
    w = rng.uniform(0.05, 0.5, (rows, channels))
    bias = -0.97 * mean * w.sum(axis=0)
    return w, bias, np.full((1, channels), mean), np.full((1, channels), 0.25)


def _shift(q, qb, s, w, bias, means):
    """Each channel's mean output change, in the units of the unscaled channel."""
    return (((q - w * s) * means).sum(axis=0) + qb - bias * s) / s


def test_round_keeping_means_cancels_the_shift_of_a_cancelling_channel():
    w, bias, means, variances = _cancelling_channels(np.random.default_rng(9))
    q, qb, s = round_keeping_means(w, bias, means, variances)
    for values in (q, qb):  # bfloat16 values, stored as float32
        np.testing.assert_array_equal(values.astype(BF16).astype(np.float32), values)
    assert np.all(np.abs(s - 1) <= 2.0 ** -8)  # a bfloat16 step is 2^-8 to 2^-7 of the value
    plain = np.abs(_shift(w.astype(np.float32).astype(BF16).astype(np.float64),
                          bias.astype(np.float32).astype(BF16).astype(np.float64), 1.0, w, bias, means))
    kept = np.abs(_shift(q, qb, s, w, bias, means))
    # Measured: median 0.0093 plain, 0.00043 kept (22x smaller), none larger.
    assert np.median(kept) < 0.1 * np.median(plain) and np.all(kept <= plain + 1e-9)
    # The noise the weight errors add (0.0008 rms) stays small beside the plain shift.
    noise = (((q - w * s) / s) ** 2 * variances).sum(axis=0)
    assert np.median(np.sqrt(noise)) < np.median(plain)


def test_round_keeping_means_weighs_the_relu6_bound():
    """A channel at its Relu6 bound half the time: scaling it by s moves the bound (seen at 6/s
    after the next layer divides s out) by 6 (1/s - 1), which the rounding must count."""
    w, bias, means, variances = _cancelling_channels(np.random.default_rng(10))
    linear, at_bound = np.full(w.shape[1], 0.5), np.full(w.shape[1], 3.0)  # 6 * P(at bound)
    relu6_shift = lambda q, qb, s: linear * _shift(q, qb, s, w, bias, means) + at_bound * (1 / s - 1)
    aware = np.abs(relu6_shift(*round_keeping_means(w, bias, means, variances, clipped=(linear, at_bound))))
    blind = np.abs(relu6_shift(*round_keeping_means(w, bias, means, variances)))
    # Measured: median 0.00006 counting the bound, 0.0035 not.
    assert np.median(aware) < 0.25 * np.median(blind), (np.median(aware), np.median(blind))


def _stem_graph(widths):
    """input [1, 16, 16, 3] -> a conv + bias + relu6 to widths[0], then alternately depthwise and
    1x1 convs through widths -> out."""
    rng = np.random.default_rng(11)
    g = tf.Graph()
    with g.as_default():
        x = tf1.placeholder(tf.float32, [1, 16, 16, 3], name="input")
        conv = tf.nn.conv2d(x, _w(rng, 3, 3, 3, widths[0]), 1, "SAME")
        y = tf.nn.relu6(tf.nn.bias_add(conv, _w(rng, widths[0])))
        for i, width in enumerate(widths[1:]):
            dw = tf1.nn.depthwise_conv2d_native(y, _w(rng, 3, 3, y.shape[-1], 1), [1, 1, 1, 1], "SAME",
                                                name="dw%d" % i)
            y = tf.nn.relu6(dw)
            y = tf.nn.relu6(tf.nn.conv2d(y, _w(rng, 1, 1, y.shape[-1], width), 1, "SAME", name="pw%d" % i))
        tf.identity(tf.reduce_mean(y, [1, 2]), name="out")
    return g.as_graph_def()


@pytest.mark.parametrize("widths, stem", [
    ((8, 16, 32, 64), ["Conv2D", "dw0", "pw0", "dw1", "pw1"]),  # MobileNet v1 0.25's stem
    ((32, 64), ["Conv2D"]),  # 3 -> 32 at once (the generated models): only the image conv
])
def test_the_narrow_stem_stays_float32(widths, stem):
    graph = prepare(_stem_graph(widths), ["input"], ["out"])
    result = to_bfloat16(graph, ["input"], ["out"])
    heavy = [n.name for n in graph.node if n.op in ("Conv2D", "DepthwiseConv2dNative")]
    assert [n for n in heavy if n in result.float_reasons] == stem
    assert [n for n in heavy if n in result.bfloat16] == [n for n in heavy if n not in stem]


@pytest.fixture(scope="module")
def mobilenet_v1(shared):
    """The real MobileNet v1 0.25 and photos 0-149 (1000 in tools/bench_bfloat16.py)."""
    folder = shared / "images" / "imagenet_samples"
    rows = read_labels_csv(str(folder / "labels.csv"))[:150]
    images = load_images(str(folder), [f for f, _ in rows], 224, 224, 127.5, 127.5, crop_fraction=0.875)
    graph = qg.load_graph_def(str(shared / "models" / "mobilenet_v1_0.25_224" / "frozen_graph.pb"))
    return graph, images


def _log_prob_change(graph, other, images, output="MobilenetV1/Predictions/Reshape_1"):
    """Median relative change of the centred log probabilities, top-1 agreement."""
    a, b = (np.log(predict(g, "input", output, images) + 1e-30) for g in (graph, other))
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    rel = np.linalg.norm(b - a, axis=1) / np.linalg.norm(a, axis=1)
    return float(np.median(rel)), float(np.mean(a.argmax(1) == b.argmax(1)))


def test_mobilenet_v1_keeps_its_logits_with_the_batch_norms_moments(mobilenet_v1, monkeypatch):
    """The pass as issue 14 merged it (no moments: bias-exact scales and error sums; only the
    image conv in float32) against this one. Measured on these 150 photos: median change 5.1%
    -> 2.2%; agreement 0.98 and 0.97, too few photos to tell apart (1000 photos: 4.9% -> 2.1%,
    agreement 0.940 -> 0.978, top-1 57.4% -> 58.2%, float 58.2%)."""
    graph, images = mobilenet_v1
    output = "MobilenetV1/Predictions/Reshape_1"
    change, agreement = _log_prob_change(graph, qg.quantize(graph, [output], mode="bfloat16"), images)
    original = bfloat16.to_bfloat16
    monkeypatch.setattr(bfloat16, "STEM_CHANNELS", 0)
    monkeypatch.setattr(bfloat16, "to_bfloat16", lambda *a, **k: original(*a, **dict(k, moments=None)))
    old_change, _ = _log_prob_change(graph, qg.quantize(graph, [output], mode="bfloat16"), images)
    assert change < 0.03 and change < 0.6 * old_change, (change, old_change)
    assert agreement >= 0.95, agreement


def test_moments_that_do_not_fit_a_filter_fall_back_to_error_sums():
    """A MatMul reading a flattened NHWC tensor: the channel means repeat along its rows; a
    length that does not divide them (statistics of some other shape) is not guessed at."""
    from quantize_graph.passes.bfloat16_means import _per_row
    matmul = tf1.NodeDef(op="MatMul")
    np.testing.assert_array_equal(_per_row([1.0, 2.0], matmul, (6, 4))[:, 0], [1, 2, 1, 2, 1, 2])
    assert _per_row([1.0, 2.0, 3.0, 4.0], matmul, (6, 4)) is None
    depthwise = tf1.NodeDef(op="DepthwiseConv2dNative")
    np.testing.assert_array_equal(_per_row([1.0, 2.0], depthwise, (9, 4))[0], [1, 1, 2, 2])
