"""The benchmark tools end to end, in a child process as they are run: bench_conv_ops.py (our
conv against oneDNN's, op by op) on one small shape, bench_targets.py and bench_ab.py on the real
MobileNet v1 0.25; and bench_targets' multiply-add count on a graph counted by hand."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _run_tool(script, *args, timeout=600):
    """stdout of tools/<script> run as a user runs it; fails the test on a non-zero exit."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, str(REPO / "tools" / script), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _tool_module(name):
    """tools/<name>.py imported (the tools import each other by bare name)."""
    sys.path.insert(0, str(REPO / "tools"))
    return __import__(name)


def test_bench_conv_ops_prints_a_row_per_shape_and_a_total():
    from tests.kernels_helpers import load_or_skip
    load_or_skip()
    out = _run_tool("bench_conv_ops.py", "--only", "resnet 3x3 7x7", "--batch", "1", "--runs",
                    "2", "--threads", "1", timeout=300)
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    # header, the one shape, the total
    assert rows[0].startswith("| shape | qg wall | qg CPU | onednn wall")
    number = r"\d+\.\d+"
    shape = re.fullmatch(rf"\| resnet 3x3 7x7x512->512 \| ({number}) \| {number} \| "
                         rf"({number}) \| {number} \| ({number})x \|", rows[1])
    assert shape, rows[1]
    assert float(shape.group(1)) > 0 and float(shape.group(2)) > 0
    assert re.fullmatch(rf"\| all \| {number} \| {number} \| {number} \| {number} \| "
                        rf"{number}x \|", rows[2]), rows[2]
    assert len(rows) == 3


def _mobilenet_v1_or_skip():
    from tests.model_cache import shared_dir
    path = Path(shared_dir()) / "models" / "mobilenet_v1_0.25_224" / "frozen_graph.pb"
    if not path.exists():
        pytest.skip(f"the real MobileNet v1 0.25 is not at {path} (set QG_SHARED_DIR)")


def test_multiply_adds_counts_conv_depthwise_and_matmul(tmp_path):
    import numpy as np
    import tensorflow as tf
    bt = _tool_module("bench_targets")
    from quantize_graph.calibration_data import Preprocessing
    with tf.Graph().as_default() as graph:
        x = tf.compat.v1.placeholder(tf.float32, [None, 10, 10, 3], name="input")
        y = tf.nn.conv2d(x, np.ones((3, 3, 3, 8), np.float32), 2, "SAME")       # 5x5x8
        y = tf.nn.depthwise_conv2d(y, np.ones((3, 3, 8, 2), np.float32), [1, 1, 1, 1],
                                   "VALID")                                       # 3x3x16
        y = tf.reshape(y, [-1, 144])
        y = tf.matmul(y, np.ones((10, 144), np.float32), transpose_b=True, name="logits")
    path = tmp_path / "g.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    spec = bt.Spec("t", str(path), "input", "logits", Preprocessing(10, 10, 0.0, 1.0, 1.0))
    assert bt.multiply_adds(spec) == 5 * 5 * 8 * 27 + 3 * 3 * 16 * 9 + 10 * 144


def test_bench_targets_and_bench_ab_on_the_real_mobilenet(tmp_path):
    """Both tools end to end on the smallest model: bench_targets converts the four graphs
    (onednn, kernels, TFLite float and int8) and prints its table; bench_ab reuses them."""
    from tests.kernels_helpers import load_or_skip
    load_or_skip()
    _mobilenet_v1_or_skip()
    out = _run_tool("bench_targets.py", "--model", "mobilenet_v1_025", "--runs", "2",
                    "--batches", "1,8", "--out_dir", str(tmp_path))
    lines = out.splitlines()
    assert re.match(r"CPU: .*; flags: .*; TensorFlow [\d.]+; TF_ENABLE_ONEDNN_OPTS=1.*; "
                    r"Qg GEMM path: (portable|avx2|vnni|amx)\.$", lines[0]), lines[0]
    number = r"(\d+\.\d)"
    rows = [line for line in lines if line.startswith("| 1 | ")]
    assert rows, out
    row = re.fullmatch(r"\| 1 \| " + r" \| ".join([number] * 5) + r" \| (\d+\.\d\d)x \| "
                       r"(\d+\.\d\d)x \| (\d+\.\d\d)x \| \d+\.\d \|", rows[-1])
    assert row, rows[-1]
    ms = [float(row.group(i)) for i in range(1, 6)]
    assert all(m > 0 for m in ms)
    # the ratios are of the unrounded medians: within the ms columns' rounding
    assert float(row.group(6)) == pytest.approx(ms[0] / ms[2], abs=0.06 * ms[0] / ms[2] + 0.01)
    assert "| 8 | (the graph's input has a fixed batch of 1) |" in lines
    agreement = next(line for line in lines if line.startswith("Top-1 agreement"))
    assert re.search(r"kernels \d+\.\d%, TFLite float \d+\.\d%, TFLite int8 \d+\.\d%", agreement)
    macs = next(line for line in lines if line.startswith("Multiply-adds"))
    # 41 M, as the MobileNet paper gives for 0.25 at 224
    assert macs.startswith("Multiply-adds: 0.041 G an image; "), macs
    assert re.search(r"batch 1: TF float \d+, onednn \d+, kernels \d+, TFLite float \d+, "
                     r"TFLite int8 \d+\.$", macs), macs
    for name in ("mobilenet_v1_0.25_224_onednn.pb", "mobilenet_v1_0.25_224_kernels.pb",
                 "mobilenet_v1_0.25_224_tflite_int8.tflite"):
        assert (tmp_path / name).stat().st_size > 0
    out = _run_tool("bench_ab.py", "--model", "mobilenet_v1_025", "--runs", "2",
                    "--batches", "8,1", "--out_dir", str(tmp_path))
    lines = out.splitlines()
    assert lines[0].startswith("Qg GEMM path: ")
    assert lines[1] == ("mobilenet_v1_025 batch 8: not run (the graph's input has a fixed "
                        "batch of 1)")
    assert re.fullmatch(r"mobilenet_v1_025 batch 1: onednn \d+\.\d ms, kernels \d+\.\d ms, "
                        r"onednn / kernels \d+\.\d\dx, load \d+\.\d", lines[2]), lines[2]


@pytest.mark.parametrize("script", ["bench_kernels.py", "bench_depthwise.py"])
def test_single_op_benches_print_a_row_per_shape(script):
    """bench_kernels (QgQuantizedConv2D vs float Conv2D on Inception-v3 shapes) and
    bench_depthwise (QgQuantizedDepthwiseConv2D vs float on MobileNet-v2 shapes): the header
    names the path that ran, each row's ratios are its own columns' ratios."""
    from tests.kernels_helpers import load_or_skip
    path = load_or_skip().qg_cpu_path().numpy().decode()
    lines = _run_tool(script, "--runs", "2", "--threads", "1").splitlines()
    assert lines[0].startswith(f"Qg CPU path: {path}, "), lines[0]
    assert "1 threads, median of 2 interleaved runs" in lines[0], lines[0]
    assert lines[1] == ("| shape | float ms | Qg int8 ms | float / int8 | float CPU ms | "
                        "int8 CPU ms | ratio |")
    number = r"(\d+\.\d+)"
    rows = lines[3:]
    assert len(rows) >= 8, lines
    for row in rows:
        m = re.fullmatch(rf"\| (\d+x\d+(?:/2)? \d+x\d+x\d+(?:->\d+)?) \| {number} \| {number} \| "
                         rf"{number}x \| {number} \| {number} \| {number}x \|", row)
        assert m, row
        wall_f, wall_q, ratio = float(m.group(2)), float(m.group(3)), float(m.group(4))
        assert wall_f > 0 and wall_q > 0
        # the printed ms are rounded: the ratio within that rounding
        rounding = 0.0051 if script == "bench_kernels.py" else 0.00051
        assert (wall_f - rounding) / (wall_q + rounding) <= ratio + 0.01
        assert ratio - 0.01 <= (wall_f + rounding) / max(wall_q - rounding, 1e-9)


def test_bench_pool_concat_prints_each_op_and_the_sum():
    from tests.kernels_helpers import load_or_skip
    load_or_skip()
    lines = _run_tool("bench_pool_concat.py", "--runs", "2", "--threads", "1",
                      "--copies", "2").splitlines()
    timed = [re.fullmatch(r"((?:avg|max|concat) .+?)\s+(\d+\.\d) us", line) for line in lines]
    timed = [m for m in timed if m]
    kinds = {m.group(1).split()[0] for m in timed}
    assert kinds == {"avg", "max", "concat"}, lines
    total = next(re.fullmatch(r"sum\s+(\d+\.\d) us", line) for line in lines
                 if line.startswith("sum"))
    assert float(total.group(1)) == pytest.approx(sum(float(m.group(2)) for m in timed),
                                                  abs=0.05 * len(timed) + 0.1)


def test_make_bench_keeps_the_hand_written_sections(tmp_path):
    """`make bench` rewrites docs/benchmarks.md above KEPT_MARKER and keeps what follows it
    (the reruns and passes written by hand), through a temporary file."""
    bench = _tool_module("bench")
    out = tmp_path / "benchmarks.md"
    bench.write_report(str(out), "# Benchmarks\n\nrun 1\n")
    assert out.read_text() == "# Benchmarks\n\nrun 1\n"  # no marker yet: nothing kept
    out.write_text(out.read_text() + "\n" + bench.KEPT_MARKER + "\n\n## By hand\n\nfigures\n")
    bench.write_report(str(out), "# Benchmarks\n\nrun 2\n\n")
    assert out.read_text() == ("# Benchmarks\n\nrun 2\n\n" + bench.KEPT_MARKER +
                               "\n\n## By hand\n\nfigures\n")
    assert [p.name for p in tmp_path.iterdir()] == ["benchmarks.md"]
    # the project's own file has the marker once, above the first hand-written section
    text = (REPO / "docs" / "benchmarks.md").read_text()
    assert text.count(bench.KEPT_MARKER) == 1
    assert text.index(bench.KEPT_MARKER) < text.index("## Quieter reruns")
