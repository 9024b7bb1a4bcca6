"""The quantize_graph command line: bad input gives one clean error line and touches no file;
good input writes the output atomically. Most cases run in-process (importing TensorFlow per
subprocess costs seconds); a few subprocess tests check the real exit code and stderr."""
import collections
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from absl import flags
from google.protobuf import text_format
from tensorflow.core.framework import graph_pb2

from tests.conftest import without_tf_logs
from tests.graphs import conv_relu_pool_graph, write_graph
from quantize_graph import cli, legacy
from quantize_graph.graph import io as graph_io
from quantize_graph.graph.io import load_graph_def
from quantize_graph.runner import run_graph

FLAGS = flags.FLAGS
Result = collections.namedtuple("Result", ["code", "out", "err"])
SCRIPT = Path(sys.executable).parent / "quantize_graph"
X = np.random.RandomState(1).uniform(0, 1, (1, 8, 8, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A folder of input files, shared by the tests (which must leave it unchanged)."""
    d = tmp_path_factory.mktemp("inputs")
    graph, _, _ = conv_relu_pool_graph()
    write_graph(graph, d / "model.pb")
    write_graph(graph, d / "model.pbtxt")
    (d / "garbage.pb").write_bytes(np.random.RandomState(0).bytes(500))
    (d / "empty.pb").write_bytes(b"")
    write_graph(_edited(graph, "conv", "relu"), d / "cycle.pb")      # conv reads relu reads conv
    write_graph(_edited(graph, "relu", "nothere"), d / "dangling.pb")
    np.save(d / "x.npy", X)
    np.save(d / "wrong_shape.npy", X[:, :4])
    return d


def _edited(graph, node_name, first_input):
    out = graph_pb2.GraphDef()
    out.CopyFrom(graph)
    next(n for n in out.node if n.name == node_name).input[0] = first_input
    return out


@pytest.fixture
def qg(capsys):
    """Runs the CLI in-process as the console script does: absl flag parsing, then main with
    errors printed on one line and SystemExit(1)."""
    saved = dict(vars(legacy.FLAGS))

    def run(*args):
        FLAGS.unparse_flags()
        code = 0
        try:
            cli._main_with_errors(cli._parse_flags(["quantize_graph"] + [str(a) for a in args]))
        except SystemExit as e:
            code = e.code
        out, err = capsys.readouterr()
        return Result(code, out, err)

    yield run
    FLAGS.unparse_flags()
    FLAGS(["quantize_graph"])  # leave the flags parsed, at their defaults
    vars(legacy.FLAGS).update(saved)


def snapshot(*folders):
    """{path: (bytes, mtime)} of every file, so a test can assert nothing was created or changed."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns)
            for folder in folders for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def assert_one_line_error(result, *words):
    assert result.code == 1, result
    assert "Traceback" not in result.out + result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("quantize_graph: error: ")
    for word in words:
        assert word in lines[0], (word, lines[0])


SOFTMAX = "--output_node_names=softmax"
# (id, arguments with {in} = the inputs folder and {out} = an output file, words the message has)
ERROR_CASES = [
    ("missing_input", ["--input={in}/missing.pb", SOFTMAX], ["missing.pb", "does not exist"]),
    ("directory_input", ["--input={in}", SOFTMAX], ["is a directory"]),
    ("garbage_input", ["--input={in}/garbage.pb", SOFTMAX], ["garbage.pb", "not a GraphDef"]),
    ("empty_input", ["--input={in}/empty.pb", SOFTMAX], ["empty.pb", "is empty"]),
    ("unknown_output_node", ["--input={in}/model.pb", "--output_node_names=softmx"],
     ["'softmx' is not in the graph", "did you mean 'softmax'"]),
    ("no_output_node", ["--input={in}/model.pb"], ["no output node names"]),
    ("invalid_mode", ["--input={in}/model.pb", "--mode=eightbitt", SOFTMAX],
     ["unknown mode 'eightbitt'", "eightbit"]),
    ("fallback_min_without_max", ["--input={in}/model.pb", "--mode=eightbit",
                                  "--quantized_fallback_min=-1", SOFTMAX], ["--quantized_fallback_max"]),
    ("fallback_outside_eightbit", ["--input={in}/model.pb", "--mode=round", "--quantized_fallback_min=-1",
                                   "--quantized_fallback_max=1", SOFTMAX], ["eightbit"]),
    ("quantized_input_with_weights", ["--input={in}/model.pb", "--mode=weights", "--quantized_input",
                                      SOFTMAX], ["--quantized_input", "eightbit"]),
    ("bitdepth_0", ["--input={in}/model.pb", "--bitdepth", "0", SOFTMAX], ["--bitdepth", "got 0"]),
    ("eightbit_bitdepth_4", ["--input={in}/model.pb", "--mode=eightbit", "--bitdepth=4", SOFTMAX],
     ["--bitdepth=8"]),
    ("fallback_min_not_below_max", ["--input={in}/model.pb", "--mode=eightbit", "--quantized_fallback_min=1",
                                    "--quantized_fallback_max=1", SOFTMAX], ["--quantized_fallback_min"]),
    ("input_min_above_max", ["--input={in}/model.pb", "--mode=eightbit", "--quantized_input",
                             "--quantized_input_min=2", "--quantized_input_max=1", SOFTMAX],
     ["--quantized_input_min"]),
    ("bad_flag_value", ["--input={in}/model.pb", "--bitdepth=abc", SOFTMAX], ["--bitdepth=abc"]),
    ("unknown_flag", ["--input={in}/model.pb", "--no_such_flag", SOFTMAX], ["no_such_flag"]),
    ("extra_argument", ["--input={in}/model.pb", SOFTMAX, "stray"], ["unexpected", "stray"]),
    ("cycle", ["--input={in}/cycle.pb", SOFTMAX], ["cycle", "node '"]),
    ("dangling_input", ["--input={in}/dangling.pb", SOFTMAX], ["node 'relu'", "'nothere'"]),
    ("missing_output_dir", ["--input={in}/model.pb", "--output={in}/no_dir/q.pb", SOFTMAX],
     ["no_dir", "does not exist"]),
    ("output_is_directory", ["--input={in}/model.pb", "--output={in}", SOFTMAX], ["is a directory"]),
    ("output_is_input", ["--input={in}/model.pb", "--output={in}/model.pb", SOFTMAX],
     ["refusing to overwrite"]),
    ("output_is_input_respelled", ["--input={in}/model.pb", "--output={in}/../{name}/./model.pb", SOFTMAX],
     ["refusing to overwrite"]),
    ("test_without_inputs", ["--input={in}/model.pb", "--mode=test", SOFTMAX],
     ["--test_input", "--test_input_dims"]),
    ("test_dims_wrong_shape", ["--input={in}/model.pb", "--mode=test", "--test_input_dims=1,4", SOFTMAX],
     ["'input'", "1,4", "1,8,8,3"]),
    ("test_dims_not_numbers", ["--input={in}/model.pb", "--mode=test", "--test_input_dims=1,a", SOFTMAX],
     ["--test_input_dims"]),
    ("test_npy_wrong_shape", ["--input={in}/model.pb", "--mode=test", "--test_input={in}/wrong_shape.npy",
                              SOFTMAX], ["'input'", "1,4,8,3"]),
    ("test_npy_missing", ["--input={in}/model.pb", "--mode=test", "--test_input={in}/none.npy", SOFTMAX],
     ["none.npy"]),
    # The quantized graph takes quint8 inputs, so comparing on float inputs would mean nothing.
    ("test_with_quantized_input", ["--input={in}/model.pb", "--mode=test", "--quantized_input",
                                   "--test_input={in}/x.npy", SOFTMAX], ["--quantized_input"]),
]


@pytest.mark.parametrize("args,words", [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_bad_input_gives_one_line_and_writes_nothing(qg, inputs, tmp_path, args, words):
    args = [a.format(**{"in": inputs, "name": inputs.name}) for a in args]
    if not any(a.startswith("--output=") for a in args):
        args.append("--output=%s" % (tmp_path / "q.pb"))
    before, legacy_flags = snapshot(inputs, tmp_path), dict(vars(legacy.FLAGS))
    assert_one_line_error(qg(*args), *words)
    assert snapshot(inputs, tmp_path) == before  # no output, no temp file, inputs untouched
    assert vars(legacy.FLAGS) == legacy_flags  # e.g. --bitdepth 0 is not passed on first


def test_output_linked_to_input_is_refused(qg, inputs, tmp_path):
    link = tmp_path / "link.pb"
    link.symlink_to(inputs / "model.pb")
    before = snapshot(inputs, tmp_path)
    assert_one_line_error(qg("--input=%s/model.pb" % inputs, "--output=%s" % link, SOFTMAX),
                          "refusing to overwrite")
    assert snapshot(inputs, tmp_path) == before


def test_unreadable_input(qg, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root reading the file "
                    "(the directory-as-input case covers read failures)")
    path = tmp_path / "secret.pb"
    write_graph(conv_relu_pool_graph()[0], path)
    path.chmod(0)
    try:
        assert_one_line_error(qg("--input=%s" % path, "--output=%s" % (tmp_path / "q.pb"), SOFTMAX),
                              "secret.pb", "cannot read")
        assert sorted(os.listdir(tmp_path)) == ["secret.pb"]
    finally:
        path.chmod(0o644)


def test_failed_write_leaves_no_file(qg, inputs, tmp_path, monkeypatch):
    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(graph_io.os, "replace", failing_replace)
    before = snapshot(inputs, tmp_path)
    assert_one_line_error(qg("--input=%s/model.pb" % inputs, "--output=%s/q.pb" % tmp_path,
                             "--mode=eightbit", SOFTMAX), "cannot write output", "No space left")
    assert snapshot(inputs, tmp_path) == before


@pytest.mark.parametrize("source,target", [("model.pb", "q.pb"), ("model.pbtxt", "q.pbtxt")])
def test_quantizes_binary_and_text_graphs(qg, inputs, tmp_path, source, target):
    old_umask = os.umask(0o022)
    try:
        result = qg("--input=%s/%s" % (inputs, source), "--output=%s/%s" % (tmp_path, target),
                    "--mode=eightbit", "--output_node_names=softmax:0")
    finally:
        os.umask(old_umask)
    assert result.code == 0 and result.err == "", result
    assert os.listdir(tmp_path) == [target]  # atomic write: no temp file left beside it
    out = tmp_path / target
    assert out.stat().st_mode & 0o777 == 0o644
    if target.endswith(".pbtxt"):
        text_format.Parse(out.read_text(), graph_pb2.GraphDef())
    quantized = load_graph_def(str(out))
    assert "QuantizedConv2D" in {n.op for n in quantized.node}
    want = run_graph(conv_relu_pool_graph()[0], ["softmax:0"], {"input:0": X})[0]
    got = run_graph(quantized, ["softmax:0"], {"input:0": X})[0]
    np.testing.assert_allclose(got, want, atol=0.02)
    assert "wrote %s" % out in result.out


def test_replaces_an_existing_output(qg, inputs, tmp_path):
    out = tmp_path / "q.pb"
    out.write_bytes(b"old")
    result = qg("--input=%s/model.pb" % inputs, "--output=%s" % out, "--mode=weights", SOFTMAX)
    assert result.code == 0, result
    assert len(load_graph_def(str(out)).node) > 0
    assert os.listdir(tmp_path) == ["q.pb"]


def test_print_nodes_lists_nodes_and_float_ops(qg, inputs, tmp_path):
    out = tmp_path / "q.pb"
    result = qg("--input=%s/model.pb" % inputs, "--output=%s" % out, "--mode=eightbit",
                "--print_nodes", SOFTMAX)
    assert result.code == 0, result
    lines = result.out.splitlines()
    for node in load_graph_def(str(out)).node:
        assert "%s %s" % (node.op, node.name) in lines
    summary = [line for line in lines if "stay float" in line]
    assert len(summary) == 1
    assert "2 ops stay float: BiasAdd x1, Softmax x1" in summary[0]
    assert "float: softmax (Softmax): no quantized form" in lines


@pytest.mark.parametrize("feed", ["--test_input={in}/x.npy", "--test_input_dims=1,8,8,3"])
def test_mode_test_reports_errors_per_output(qg, inputs, tmp_path, feed):
    result = qg("--input=%s/model.pb" % inputs, "--mode=test", feed.format(**{"in": inputs}),
                "--output_node_names=softmax,relu:0")
    assert result.code == 0 and result.err == "", result
    for name in ("softmax", "relu"):
        line = next(line for line in result.out.splitlines() if line.startswith(name + ":"))
        assert "max abs error" in line and "relative error" in line and "top-1 agreement" in line
        assert float(line.split("max abs error ")[1].split(",")[0]) < 0.05
    assert os.listdir(tmp_path) == []  # no --output: mode test writes nothing


def _subprocess(*args, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    r = subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                       env=env, cwd=cwd, timeout=120)
    r.stderr = without_tf_logs(r.stderr)
    return r


def test_console_script_success(inputs, tmp_path):
    shutil.copy(inputs / "model.pbtxt", tmp_path)
    r = _subprocess("--input=model.pbtxt", "--output=q.pb", "--mode=eightbit",
                    "--output_node_names=softmax:0", cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == "", r
    assert "wrote q.pb" in r.stdout
    assert sorted(os.listdir(tmp_path)) == ["model.pbtxt", "q.pb"]


def test_console_script_error(inputs, tmp_path):
    shutil.copy(inputs / "model.pb", tmp_path)
    before = snapshot(tmp_path)
    r = _subprocess("--input=model.pb", "--output=q.pb", "--output_node_names=softmx", cwd=tmp_path)
    assert_one_line_error(Result(r.returncode, r.stdout, r.stderr), "'softmx'", "did you mean 'softmax'")
    assert snapshot(tmp_path) == before


def _graph_with_inner_input(tmp_path):
    """conv_relu_pool_graph's ops behind `scaled` = input * 1, fed at `scaled` (as the 2015
    Inception is fed at its inner `Mul`): no Placeholder tells the image size."""
    import tensorflow as tf
    graph, _, _ = conv_relu_pool_graph()
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, 8, 8, 3], name="image")
        scaled = tf.multiply(x, 1.0, name="scaled")
        tf.compat.v1.import_graph_def(graph, input_map={"input:0": scaled}, name="")
    return write_graph(g.as_graph_def(), tmp_path / "inner.pb")


def test_calibration_images_for_an_inner_input_take_its_inferred_size(qg, shared, tmp_path):
    model = _graph_with_inner_input(tmp_path)
    common = ["--input=%s" % model, SOFTMAX, "--mode=eightbit", "--input_node_names=scaled",
              "--calibration_data=%s" % (shared / "images" / "imagenet_samples"), "--calibration_size=4"]
    result = qg(*common, "--output=%s" % (tmp_path / "q.pb"))
    assert result.code == 0, result.err  # photos resized to 8x8, not to the default 224
    # A size that does not fit the tensor is one line naming the input, not a feed error.
    result = qg(*common, "--output=%s" % (tmp_path / "q2.pb"), "--input_height=16", "--input_width=16")
    assert result.code == 1 and "Traceback" not in result.err
    error = [l for l in result.err.splitlines() if not l.startswith("reading calibration data")]
    assert len(error) == 1 and error[0].startswith("quantize_graph: error: calibration input 'scaled'")
    assert "16,16,3" in error[0] and "8,8,3" in error[0]
    assert not (tmp_path / "q2.pb").exists()
