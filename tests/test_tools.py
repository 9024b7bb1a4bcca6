"""benchmark_graph, evaluate_graph and the progress bar, on the real MobileNet and tiny graphs."""
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

import quantize_graph as qg
from quantize_graph.errors import QuantizeGraphError
from quantize_graph.progress import ProgressBar
from quantize_graph.tools import benchmark_graph, evaluate_graph

OUTPUT = "MobilenetV1/Predictions/Reshape_1"
MOBILENET = dict(input_mean=127.5, input_std=127.5)


@pytest.fixture(scope="module")
def mobilenet(shared, tmp_path_factory):
    graph = shared / "models" / "mobilenet_v1_0.25_224" / "frozen_graph.pb"
    photos = shared / "images" / "imagenet_samples"
    if not graph.exists() or not (photos / "labels.csv").exists():
        pytest.skip("shared MobileNet or labelled photos not found under %s" % shared)
    weights = tmp_path_factory.mktemp("tools") / "weights.pb"
    qg.quantize_file(str(graph), str(weights), [OUTPUT], mode="weights")
    return dict(graph=str(graph), weights=str(weights), images=str(photos),
                labels_csv=str(photos / "labels.csv"))


def one_line_error(stderr, prog):
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prog + ": error: "), stderr
    return lines[0]


def save_graph(path, build):
    graph = tf.Graph()
    with graph.as_default():
        build()
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return str(path)


# --- benchmark_graph ---------------------------------------------------------------------------

def test_benchmark_returns_medians_and_ratio(mobilenet):
    result = benchmark_graph.benchmark(mobilenet["graph"], mobilenet["weights"], batches=(1,),
                                       threads=2, runs=3, warmup=1)
    assert set(result) == {"machine", "settings", "graphs", "results"}
    assert result["machine"]["threads"] == 2 and result["machine"]["cores"] >= 1
    assert result["machine"]["tensorflow"] == tf.__version__ and result["machine"]["cpu"]
    assert result["graphs"]["A"]["input"] == "input:0"
    assert result["graphs"]["B"]["output"] == OUTPUT + ":0"  # found as the graph's sink
    [r] = result["results"]
    assert r["batch"] == 1
    for name in "AB":
        t = r[name]
        assert len(t["times_ms"]) == 3
        assert 0 < t["min_ms"] <= t["median_ms"] <= t["max_ms"]
    assert r["ratio"] == pytest.approx(r["A"]["median_ms"] / r["B"]["median_ms"])
    if r["faster"] is None:
        assert r["summary"] == "A and B are equally fast"
    else:
        other = "A" if r["faster"] == "B" else "B"
        assert r["summary"].startswith("%s is " % r["faster"])
        assert r["summary"].endswith("x faster than %s" % other)


def test_benchmark_cli_json_parses(mobilenet):
    script = Path(sys.executable).with_name("benchmark_graph")
    if not script.exists():
        pytest.skip("benchmark_graph console script not installed (pip install -e .)")
    proc = subprocess.run([str(script), "--graph=" + mobilenet["graph"], "--runs=2",
                           "--warmup=0", "--threads=1", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # nothing but the document on stdout
    assert list(result["graphs"]) == ["A"] and result["machine"]["threads"] == 1
    [r] = result["results"]
    assert r["batch"] == 1 and "ratio" not in r and len(r["A"]["times_ms"]) == 2


def test_benchmark_table(mobilenet, capsys):
    assert benchmark_graph.run(["benchmark_graph", "--graph=" + mobilenet["graph"],
                                "--compare=" + mobilenet["weights"], "--runs=1",
                                "--warmup=0"]) == 0
    out = capsys.readouterr().out
    assert "median ms" in out and "A/B of medians" in out
    assert ("B is " in out or "A is " in out or "equally fast" in out)


@pytest.mark.parametrize("flag, message", [
    ("--graph=/nonexistent/a.pb", "'/nonexistent/a.pb' does not exist"),
    ("--compare=/nonexistent/b.pb", "'/nonexistent/b.pb' does not exist"),
    ("--batch=1,x", "bad --batch value '1,x': 'x' is not a positive integer"),
    ("--batch=0", "bad --batch value '0'"),
    ("--batch=", "bad --batch value ''"),
    ("--batch=8", "input 'input' has a fixed batch of 1, so --batch=8 is not possible"),
    ("--runs=0", "--runs=0"),
    ("--output_layer=nope", "output layer 'nope' is not in the graph"),
])
def test_benchmark_errors_are_one_line(mobilenet, capsys, flag, message):
    args = {"--graph": mobilenet["graph"], "--runs": "1"}
    args.update([flag.split("=", 1)])
    assert benchmark_graph.run(["benchmark_graph"] + ["%s=%s" % kv for kv in args.items()]) == 1
    assert message in one_line_error(capsys.readouterr().err, "benchmark_graph")


def test_default_input_and_output_must_be_unambiguous(tmp_path):
    def two_outputs():
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        tf.nn.relu(x, name="a")
        tf.nn.softmax(x, name="b")
    graph = save_graph(tmp_path / "two.pb", two_outputs)
    with pytest.raises(QuantizeGraphError, match=r"2 nodes that no other node reads \(a, b\); "
                                                  "give --output_layer"):
        benchmark_graph.benchmark(graph, runs=1, warmup=0)
    result = benchmark_graph.benchmark(graph, batches=[1, 3], runs=1, warmup=0,
                                       output_layer="b")
    assert [r["batch"] for r in result["results"]] == [1, 3]

    def two_inputs():
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        y = tf.compat.v1.placeholder(tf.float32, [None, 4], name="y")
        tf.add(x, y, name="sum")
    with pytest.raises(QuantizeGraphError, match=r"2 Placeholders \(x, y\); give --input_layer"):
        benchmark_graph.benchmark(save_graph(tmp_path / "in.pb", two_inputs), runs=1, warmup=0)


def test_qg_ops_need_the_op_library(tmp_path, monkeypatch):
    graph_def = tf.compat.v1.GraphDef()
    graph_def.node.add(name="input", op="Placeholder").attr["dtype"].type = 1
    graph_def.node.add(name="softmax", op="QgSoftmax", input=["input"])
    path = tmp_path / "qg.pb"
    path.write_bytes(graph_def.SerializeToString())
    monkeypatch.setitem(sys.modules, "quantize_graph.kernels", None)  # as if not built
    with pytest.raises(QuantizeGraphError, match=r"\(QgSoftmax\), which need its op library"):
        benchmark_graph.benchmark(str(path), runs=1, warmup=0)


# --- evaluate_graph ----------------------------------------------------------------------------

def test_evaluate_float_and_weights_copy(mobilenet):
    result = evaluate_graph.evaluate(mobilenet["graph"], mobilenet["images"],
                                     mobilenet["labels_csv"], graph_b=mobilenet["weights"],
                                     label_offset=1, mean=127.5, std=127.5, limit=50)
    assert result["images"] == 50 and (result["height"], result["width"]) == (224, 224)
    assert 0.3 <= result["A"]["top1"] <= 0.9  # 0.582 on all 1000
    assert result["A"]["top1"] <= result["A"]["top5"]
    assert 0.3 <= result["B"]["top1"] <= 0.9
    assert result["comparison"]["top1_agreement"] >= 0.8
    assert 0 < result["comparison"]["mean_relative_error"] < 0.5


def test_evaluate_cli_prints_accuracy_and_progress(mobilenet, capsys):
    status = evaluate_graph.run([
        "evaluate_graph", "--graph=" + mobilenet["graph"], "--images=" + mobilenet["images"],
        "--labels_csv=" + mobilenet["labels_csv"], "--label_offset=1", "--input_mean=127.5",
        "--input_std=127.5", "--skip=10", "--limit=4", "--output_layer=" + OUTPUT])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    lines = captured.out.strip().splitlines()
    assert lines[0] == "4 images, 224x224, labels: index_1000 +1"
    assert lines[1].startswith("A: top-1 ") and "top-5" in lines[1] and len(lines) == 2
    assert "evaluating 4/4 [====" in captured.err  # non-TTY: plain lines, no '\r'
    assert "\r" not in captured.err


@pytest.mark.parametrize("flag, message", [
    ("--graph=/nonexistent/a.pb", "'/nonexistent/a.pb' does not exist"),
    ("--batch=4", "input 'input' has a fixed batch of 1, so --batch=4 is not possible"),
    ("--batch=x", "--batch"),
    ("--label_column=label", "column 'label' must hold integers"),
    ("--label_offset=2", "label 999 + --label_offset 2 = 1001, but the output has 1001 classes"),
    ("--images=/nonexistent", "image folder '/nonexistent' does not exist"),
])
def test_evaluate_errors_are_one_line(mobilenet, capsys, flag, message):
    args = {"--graph": mobilenet["graph"], "--images": mobilenet["images"],
            "--labels_csv": mobilenet["labels_csv"], "--limit": "2"}
    if "label_offset" in flag:
        args["--skip"] = "998"
    args.update([flag.split("=", 1)])
    assert evaluate_graph.run(["evaluate_graph"] + ["%s=%s" % kv for kv in args.items()]) == 1
    assert message in one_line_error(capsys.readouterr().err, "evaluate_graph")


def test_evaluate_pads_the_last_fixed_batch(mobilenet, tmp_path):
    def mean_colour():  # three "classes": the mean R, G and B of each image
        x = tf.compat.v1.placeholder(tf.float32, [4, 8, 8, 3], name="input")
        tf.reduce_mean(x, axis=[1, 2], name="scores")
    graph = save_graph(tmp_path / "fixed4.pb", mean_colour)
    rows = ["file,index_1000"] + ["%s,%d" % (f, i % 3) for i, f in enumerate(
        sorted(p.name for p in Path(mobilenet["images"]).glob("*.JPEG"))[:6])]
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    result = evaluate_graph.evaluate(graph, mobilenet["images"], str(labels), graph_b=graph,
                                     progress=False)
    assert result["images"] == 6 and (result["height"], result["width"]) == (8, 8)
    assert result["A"]["top5"] == 1.0  # only 3 classes
    assert result["comparison"]["top1_agreement"] == 1.0
    assert result["comparison"]["max_abs_error"] == 0.0


# --- progress bar ------------------------------------------------------------------------------

def test_progress_bar_plain_lines_when_not_a_tty():
    stream = io.StringIO()
    bar = ProgressBar(100, "calibrating", stream=stream, interval=0)
    for _ in range(4):
        bar.update(25)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and len(lines) == 4
    assert lines[0].startswith("calibrating  25/100 [=====>              ] ")
    assert "img/s" in lines[0] and "left" in lines[0]
    assert lines[-1].startswith("calibrating 100/100 [====================] ")


def test_progress_bar_throttles_plain_lines():
    stream = io.StringIO()
    with ProgressBar(1000, "evaluating", stream=stream) as bar:  # default: one line per 2 s
        for _ in range(1000):
            bar.update(1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "1000/1000" in lines[0] and "done in" in lines[0]


def test_progress_bar_redraws_in_place_on_a_tty():
    stream = io.StringIO()
    bar = ProgressBar(3, "x", stream=stream, tty=True)
    bar.update(1)
    bar.close()
    text = stream.getvalue()
    assert text.startswith("\rx 0/3 [>") and text.endswith("\n") and text.count("\n") == 1
    assert "\rx 1/3 [======>" in text and "done in" in text


def test_progress_bar_takes_fractional_updates():
    stream = io.StringIO()
    with ProgressBar(7, "calibrating", stream=stream) as bar:  # 7 items over 3 passes
        for _ in range(21):
            bar.update(1 / 3)
    assert stream.getvalue().startswith("calibrating 7/7 [====================] ")
