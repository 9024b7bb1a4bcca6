"""SavedModel in, SavedModel out: a quantized model swapped into TF Serving as a new version.

Small models (built here, in-process) cover reading TF2 and TF1 SavedModels, the signature
kept, calibration by signature key, the errors and the atomic write. Generated Inception-v3
covers the acceptance: float <base>/1 quantized into <base>/2 by the console script, both
loaded by stock TensorFlow in a fresh process that never imports quantize_graph, and
saved_model_cli on version 2. The Inception quantization (~30-60 s here) is done once per module.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.saved_model import loader_impl

from quantize_graph.graph import saved_model as saved_model_io
from quantize_graph.graph.saved_model import load_saved_model, wants_saved_model
from quantize_graph.graph.signature import interface
from quantize_graph.preprocess import list_images, read_image
from quantize_graph.runner import run_graph
from quantize_graph.passes.onednn_guard import PROBE, SCOPE
from quantize_graph.serving import server_requirements
from tests.conftest import without_tf_logs
from tests.graphs import conv_relu_pool_graph, write_graph
from tests.model_cache import inception_v3_saved_model
from tests.test_cli import assert_one_line_error, qg, snapshot  # noqa: F401 (qg is a fixture)

BIN = Path(sys.executable).parent
STOCK_LOAD = Path(__file__).parent / "stock_tf_load.py"
X = np.random.RandomState(1).uniform(0, 1, (16, 8, 8, 3)).astype(np.float32)
MIN_AGREEMENT = 0.95
PHOTOS = 50
FIRST_PHOTO = 200      # not among the calibration photos (the first 32)


def _signature(path, key="serving_default"):
    meta = loader_impl.parse_saved_model(str(path)).meta_graphs[0]
    return meta.signature_def[key]


def _stock_env(onednn="1"):
    """A fresh process's environment: no path to this repository, oneDNN as asked."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_ENABLE_ONEDNN_OPTS")}
    env.update(TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="2")
    return env


# ---------------------------------------------------------------- small models

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A TF2 SavedModel (variables, two outputs, key 'images' -> 'pooled', 'scores'), a TF1
    SavedModel whose keys differ from its node names, calibration data, the same graph as .pb."""
    d = tmp_path_factory.mktemp("small")
    rng = np.random.RandomState(0)
    module = tf.Module()
    module.w = tf.Variable(rng.uniform(-0.5, 0.5, (3, 3, 3, 4)).astype(np.float32))
    module.b = tf.Variable(rng.uniform(-0.1, 0.1, 4).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32, name="images")])
    def serve(images):
        y = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(images, module.w, 1, "SAME"), module.b))
        return {"scores": tf.nn.softmax(tf.reshape(y, [-1, 256])), "pooled": tf.reduce_mean(y, [1, 2])}
    module.serve = serve
    tf.saved_model.save(module, str(d / "tf2"), signatures={"serving_default": serve})

    graph_def, _, _ = conv_relu_pool_graph()
    write_graph(graph_def, d / "model.pb")
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            builder = tf.compat.v1.saved_model.Builder(str(d / "tf1"))
            builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={
                "classify": tf.compat.v1.saved_model.predict_signature_def(
                    {"pixels": graph.get_tensor_by_name("input:0")},
                    {"classes": graph.get_tensor_by_name("softmax:0")})})
            builder.save()
    np.save(d / "x.npy", X)
    np.savez(d / "by_key.npz", pixels=X)
    (d / "garbage").mkdir()
    (d / "garbage" / "saved_model.pb").write_bytes(np.random.RandomState(0).bytes(300))
    return d


def test_reads_tf2_saved_model_frozen(small):
    served = load_saved_model(str(small / "tf2"))
    assert list(served.inputs) == ["images"] and list(served.outputs) == ["pooled", "scores"]
    ops = {n.op for n in served.graph_def.node}
    assert "Conv2D" in ops and not ops & {"VarHandleOp", "ReadVariableOp", "StatefulPartitionedCall"}
    loaded = tf.saved_model.load(str(small / "tf2")).signatures["serving_default"]
    expected = loaded(images=tf.constant(X))
    got = run_graph(served.graph_def, list(served.outputs.values()), {served.inputs["images"]: X})
    for key, value in zip(served.outputs, got):
        np.testing.assert_allclose(value, expected[key].numpy(), rtol=1e-5, atol=1e-6)


def test_two_inputs_are_mapped_by_key(tmp_path):
    module = tf.Module()
    module.v = tf.Variable(2.0)

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="zeta"),
                                  tf.TensorSpec([None, 5], tf.float32, name="alpha")])
    def serve(zeta, alpha):
        return {"z_out": zeta * module.v, "a_out": alpha + 1.0}
    module.serve = serve
    tf.saved_model.save(module, str(tmp_path / "m"), signatures={"serving_default": serve})
    served = load_saved_model(str(tmp_path / "m"))
    z, a = run_graph(served.graph_def, [served.outputs["z_out"], served.outputs["a_out"]],
                     {served.inputs["zeta"]: np.ones((1, 3), np.float32),
                      served.inputs["alpha"]: np.zeros((1, 5), np.float32)})
    np.testing.assert_array_equal(z, np.full((1, 3), 2.0))
    np.testing.assert_array_equal(a, np.ones((1, 5)))


def test_tf2_saved_model_to_new_version_keeps_signature(qg, small, tmp_path):
    shutil.copytree(small / "tf2", tmp_path / "1")
    r = qg("--input=%s/1" % tmp_path, "--output=%s/2" % tmp_path, "--mode=eightbit",
           "--calibration_data=%s/x.npy" % small)
    assert r.code == 0, r
    assert "TF_ENABLE_ONEDNN_OPTS=1" in r.err  # the onednn target's warning for the server
    assert sorted(os.listdir(tmp_path)) == ["1", "2"]  # no staging directory left
    assert interface(_signature(tmp_path / "2")) == interface(_signature(tmp_path / "1"))
    assert interface(_signature(tmp_path / "2"))["inputs"] == {"images": ("float32", (-1, 8, 8, 3))}
    quantized = load_saved_model(str(tmp_path / "2"))
    assert "QuantizedConv2DWithBiasAndReluAndRequantize" in {n.op for n in quantized.graph_def.node}
    float_model = load_saved_model(str(tmp_path / "1"))
    for key in ("pooled", "scores"):
        ref, = run_graph(float_model.graph_def, [float_model.outputs[key]], {"images:0": X})
        got, = run_graph(quantized.graph_def, [quantized.outputs[key]], {"images:0": X})
        assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 0.05, key


def test_tf1_saved_model_other_signature_calibrated_by_key(qg, small, tmp_path):
    r = qg("--input=%s/tf1" % small, "--output=%s/2" % tmp_path, "--mode=eightbit",
           "--signature_def=classify", "--calibration_data=%s/by_key.npz" % small)
    assert r.code == 0, r
    signature = _signature(tmp_path / "2", "classify")
    assert interface(signature) == interface(_signature(small / "tf1", "classify"))
    assert signature.inputs["pixels"].name == "input:0"
    assert "target onednn" in r.out


def test_graph_def_to_saved_model_signature_from_names(qg, small, tmp_path):
    r = qg("--input=%s/model.pb" % small, "--output=%s/7" % tmp_path, "--mode=eightbit",
           "--target=reference", "--output_node_names=softmax")
    assert r.code == 0, r
    assert r.err == ""  # the reference target needs nothing of the server
    assert interface(_signature(tmp_path / "7")) == {
        "method_name": "tensorflow/serving/predict", "inputs": {"input": ("float32", (1, 8, 8, 3))},
        "outputs": {"softmax": ("float32", (1, 5))}}


def test_saved_model_input_can_be_written_as_graph_def(qg, small, tmp_path):
    r = qg("--input=%s/tf2" % small, "--output=%s/q.pb" % tmp_path, "--mode=weights")
    assert r.code == 0, r
    assert os.path.isfile(tmp_path / "q.pb")


def test_output_kind():
    assert wants_saved_model("models/m/2", False) and wants_saved_model("out/", False)
    assert wants_saved_model("quantized", True) and not wants_saved_model("quantized", False)
    assert not wants_saved_model("models/m/2.pb", True)


@pytest.mark.parametrize("args,words", [
    (["--input={s}/tf2", "--output={t}/1"], ["already exists", "refusing to overwrite"]),
    (["--input={s}/garbage", "--output={t}/2"], ["cannot read SavedModel", "garbage"]),
    (["--input={s}/tf2", "--output={t}/nope/2"], ["nope", "does not exist"]),
    (["--input={s}/tf2", "--output={t}/2", "--signature_def=predict"],
     ["no signature 'predict'", "serving_default"]),
    (["--input={s}/tf2", "--output={t}/2", "--output_node_names=softmax"], ["signature", "drop"]),
    (["--input={s}/tf2", "--output={t}/2", "--quantized_input"], ["--quantized_input", "signature"]),
    (["--input={s}/tf2", "--output={t}/2", "--calibration_data={t}/missing"], ["missing", "does not exist"]),
    (["--input={s}/tf2", "--compare={s}/tf1", "--output={t}/2"], ["--compare"]),
])
def test_saved_model_errors_write_nothing(qg, small, tmp_path, args, words):
    (tmp_path / "1").mkdir()
    args = [a.format(s=small, t=tmp_path) for a in args] + ["--mode=eightbit"]
    before = snapshot(small, tmp_path)
    assert_one_line_error(qg(*args), *words)
    assert snapshot(small, tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == ["1"]


def test_failure_after_reading_the_model_leaves_no_version(qg, small, tmp_path):
    (tmp_path / "no_images").mkdir()
    (tmp_path / "no_images" / "notes.txt").write_text("not an image")
    assert_one_line_error(qg("--input=%s/tf2" % small, "--output=%s/2" % tmp_path, "--mode=eightbit",
                             "--calibration_data=%s/no_images" % tmp_path), "holds no images")
    assert sorted(os.listdir(tmp_path)) == ["no_images"]


def test_failed_write_leaves_no_version(qg, small, tmp_path, monkeypatch):
    def failing_rename(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(saved_model_io.os, "rename", failing_rename)
    r = qg("--input=%s/tf2" % small, "--output=%s/2" % tmp_path, "--mode=eightbit",
           "--calibration_data=%s/x.npy" % small)
    assert r.code == 1 and "Traceback" not in r.err, r
    last = r.err.splitlines()[-1]  # after the calibration progress bar
    assert last.startswith("quantize_graph: error: cannot write SavedModel") and "No space left" in last
    assert os.listdir(tmp_path) == []  # neither the version nor the staging directory


def test_compare_mode_reports_agreement_of_two_models(qg, small, tmp_path):
    r = qg("--input=%s/tf1" % small, "--output=%s/2" % tmp_path, "--mode=eightbit",
           "--signature_def=classify", "--target=reference")
    assert r.code == 0, r
    # A .pb against a SavedModel: keys differ (node names vs signature keys), paired in order.
    r = qg("--mode=test", "--input=%s/model.pb" % small, "--output_node_names=softmax",
           "--compare=%s/2" % tmp_path, "--signature_def=classify", "--test_input=%s/x.npy" % small)
    assert r.code == 0, r
    line = [l for l in r.out.splitlines() if l.startswith("softmax / classes:")]
    assert line and "top-1 agreement" in line[0], r.out
    agreement = float(line[0].rsplit(" ", 1)[1].rstrip("%"))
    assert agreement >= 80, line


def test_kernels_target_warns_that_the_server_needs_our_op_library():
    (warning,) = server_requirements("kernels")
    assert "op library" in warning and "tensorflow_model_server" in warning
    assert server_requirements("reference") == []


def test_onednn_guard_changes_nothing_where_onednn_runs(qg, small, tmp_path):
    assert qg("--input=%s/tf2" % small, "--output=%s/2" % tmp_path, "--mode=eightbit",
              "--calibration_data=%s/x.npy" % small).code == 0
    served = load_saved_model(str(tmp_path / "2"))
    assert any(n.name == PROBE for n in served.graph_def.node)
    unguarded = [n for n in served.graph_def.node if not n.name.startswith(SCOPE)]
    for n in unguarded:  # the inputs' readers, back on the inputs themselves
        n.input[:] = ["images" if i == "images/times_onednn_probe" else i for i in n.input]
    unguarded = [n for n in unguarded if n.name != "images/times_onednn_probe"]
    plain = tf.compat.v1.GraphDef()
    plain.node.extend(unguarded)
    for key in ("pooled", "scores"):
        got, = run_graph(served.graph_def, [served.outputs[key]], {"images:0": X})
        ref, = run_graph(plain, [served.outputs[key]], {"images:0": X})
        np.testing.assert_array_equal(got, ref)


def test_onednn_saved_model_without_onednn_fails_in_stock_tensorflow(qg, small, tmp_path):
    """What the README's warning is about: a stock process without TF_ENABLE_ONEDNN_OPTS=1 on
    a CPU without AVX-512 VNNI cannot run the onednn target's SavedModel."""
    assert qg("--input=%s/tf2" % small, "--output=%s/2" % tmp_path, "--mode=eightbit",
              "--target=onednn", "--calibration_data=%s/x.npy" % small).code == 0
    # (With TF_ENABLE_ONEDNN_OPTS=1 a fresh process runs it: the Inception test below.)
    r = subprocess.run([sys.executable, str(STOCK_LOAD), str(small / "x.npy"), str(tmp_path / "2")],
                       capture_output=True, text=True, env=_stock_env("0"), timeout=300)
    if r.returncode == 0:
        pytest.skip("this CPU runs oneDNN by default (AVX-512 VNNI/BF16/AMX)")
    # The guard runs first, so the error names the fix rather than one of the model's convs.
    assert "Missing 0-th output from {{node set_TF_ENABLE_ONEDNN_OPTS_1/oneDNN_int8_probe}}" in r.stderr


# ---------------------------------------------------------------- Inception-v3 versions

@pytest.fixture(scope="module")
def versions(tmp_path_factory, shared):
    """<base>/1: float Inception-v3 SavedModel (with variables); <base>/2: the console script's
    eightbit version of it (default target, calibrated on 32 photos); photos.npy: 50 other photos."""
    d = tmp_path_factory.mktemp("serving")
    base = d / "inception"
    base.mkdir()
    shutil.copytree(inception_v3_saved_model(), base / "1")
    photos = shared / "images" / "imagenet_samples"
    r = subprocess.run([str(BIN / "quantize_graph"), "--input=%s" % (base / "1"), "--output=%s" % (base / "2"),
                        "--mode=eightbit", "--calibration_data=%s" % photos, "--calibration_size=32",
                        "--input_mean=127.5", "--input_std=127.5"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    files = list_images(str(photos))[FIRST_PHOTO:FIRST_PHOTO + PHOTOS]
    np.save(d / "photos.npy", np.stack([read_image(f, 299, 299, 127.5, 127.5, crop_fraction=0.875)
                                        for f in files]))
    return base, d / "photos.npy", r


def test_inception_version_2_is_onednn_and_complete(versions):
    base, _, result = versions
    assert sorted(os.listdir(base)) == ["1", "2"]
    assert "target onednn" in result.stdout
    assert "TF_ENABLE_ONEDNN_OPTS=1" in result.stderr
    assert interface(_signature(base / "2")) == interface(_signature(base / "1"))
    assert interface(_signature(base / "2"))["inputs"] == {"images": ("float32", (-1, 299, 299, 3))}


def test_inception_versions_load_in_stock_tensorflow_and_agree(versions):
    base, photos, _ = versions
    r = subprocess.run([sys.executable, str(STOCK_LOAD), str(photos), str(base / "1"), str(base / "2")],
                       capture_output=True, text=True, env=_stock_env(), cwd=str(base), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout)
    assert report["imported_quantize_graph"] is False
    first, second = report[str(base / "1")], report[str(base / "2")]
    assert first["inputs"] == second["inputs"] == {"images": ["float32", [None, 299, 299, 3]]}
    assert first["outputs"] == second["outputs"]
    assert list(first["outputs"]) == ["probabilities"]
    top1 = [np.array(m["top1"]["probabilities"]) for m in (first, second)]
    assert len(top1[0]) == PHOTOS
    agreement = float(np.mean(top1[0] == top1[1]))
    assert agreement >= MIN_AGREEMENT, "top-1 agreement %.2f < %.2f" % (agreement, MIN_AGREEMENT)


def test_saved_model_cli_shows_and_runs_version_2(versions, tmp_path):
    base, photos, _ = versions
    np.save(tmp_path / "two.npy", np.load(photos)[:2])
    cli = str(BIN / "saved_model_cli")
    show = subprocess.run([cli, "show", "--dir", str(base / "2"), "--all"], capture_output=True,
                          text=True, env=_stock_env(), timeout=300)
    assert show.returncode == 0, without_tf_logs(show.stderr)[-2000:]
    assert "inputs['images']" in show.stdout and "outputs['probabilities']" in show.stdout
    assert "shape: (-1, 299, 299, 3)" in show.stdout
    run = subprocess.run([cli, "run", "--dir", str(base / "2"), "--tag_set", "serve", "--signature_def",
                          "serving_default", "--inputs", "images=%s" % (tmp_path / "two.npy"),
                          "--outdir", str(tmp_path / "out")], capture_output=True, text=True,
                         env=_stock_env(), timeout=300)
    assert run.returncode == 0, without_tf_logs(run.stderr)[-2000:]
    probabilities = np.load(tmp_path / "out" / "probabilities.npy")
    assert probabilities.shape == (2, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-3)


def test_bad_calibration_path_leaves_no_version(versions):
    base, _, _ = versions
    r = subprocess.run([str(BIN / "quantize_graph"), "--input=%s" % (base / "1"), "--output=%s" % (base / "3"),
                        "--mode=eightbit", "--calibration_data=%s" % (base / "no_photos")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    assert "no_photos" in without_tf_logs(r.stderr)
    assert sorted(os.listdir(base)) == ["1", "2"]


def test_python_api_quantize_saved_model(small, tmp_path, capsys):
    import quantize_graph as qg_api
    graph = qg_api.quantize_saved_model(str(small / "tf1"), str(tmp_path / "2"), signature_def="classify",
                                        calibration_inputs={"pixels": X})  # keyed by signature key
    assert "QuantizedConv2DWithBiasAndReluAndRequantize" in {n.op for n in graph.node}
    assert interface(_signature(tmp_path / "2", "classify")) == interface(_signature(small / "tf1", "classify"))
    assert "TF_ENABLE_ONEDNN_OPTS=1" in capsys.readouterr().err
