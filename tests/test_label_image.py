"""label_image and the preprocessing it shares: real MobileNet results, feeds, flags, errors."""
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import graph_pb2

from tests.conftest import without_tf_logs

from quantize_graph import preprocess
from quantize_graph.errors import QuantizeGraphError
from quantize_graph.tools import label_image as tool

OUTPUT = "MobilenetV1/Predictions/Reshape_1"
SCRIPT = Path(sys.executable).with_name("label_image")


@pytest.fixture(scope="module")
def mobilenet(shared):
    folder = shared / "models" / "mobilenet_v1_0.25_224"
    image = shared / "images" / "grace_hopper.jpg"
    if not (folder / "frozen_graph.pb").exists() or not image.exists():
        pytest.skip("shared MobileNet or grace_hopper.jpg not found under %s" % shared)
    return types.SimpleNamespace(graph=str(folder / "frozen_graph.pb"),
                                 labels=str(folder / "labels.txt"), image=str(image))


def classify(m, image=None, **kwargs):
    kwargs.setdefault("output_layer", OUTPUT)
    return tool.label_image(m.graph, image or m.image, m.labels, mean=127.5, std=127.5, **kwargs)


def labels_of(top):
    return [label for label, _, _ in top]


def run_script(*args):
    if not SCRIPT.exists():
        pytest.skip("label_image console script not installed (pip install -e .)")
    proc = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=300)
    proc.stderr = without_tf_logs(proc.stderr)
    return proc


def save_graph(path, build):
    """Builds a TF1 graph with `build()` and writes its GraphDef to `path`."""
    graph = tf.Graph()
    with graph.as_default():
        build()
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return str(path)


def write_bmp(path, rgb):
    """A 24-bit uncompressed BMP: BGR rows, bottom-up, each padded to 4 bytes."""
    height, width, _ = rgb.shape
    row = width * 3 + (-width * 3) % 4
    pixels = np.zeros((height, row), np.uint8)
    pixels[:, :width * 3] = rgb[::-1, :, ::-1].reshape(height, -1)
    header = np.array([0x4D42], "<u2").tobytes() + np.array(
        [14 + 40 + pixels.size, 0, 14 + 40], "<u4").tobytes()
    info = np.array([40, width, height], "<i4").tobytes() + np.array([1, 24], "<u2").tobytes() + \
        np.array([0, pixels.size, 2835, 2835, 0, 0], "<u4").tobytes()
    path.write_bytes(header + info + pixels.tobytes())
    return str(path)


# --- the real MobileNet -------------------------------------------------------------------------

def test_grace_hopper_top5_includes_military_uniform(mobilenet):
    top = classify(mobilenet)
    assert "military uniform" in labels_of(top)
    assert top[0][1] == 458  # MobileNet 0.25 prefers the bow tie; 653 (uniform) is second
    scores = [score for _, _, score in top]
    assert scores == sorted(scores, reverse=True) and len(top) == 5


def test_central_crop_keeps_military_uniform_in_top5(mobilenet):
    assert "military uniform" in labels_of(classify(mobilenet, crop_fraction=0.875))


def test_port_suffix_is_optional(mobilenet):
    plain = classify(mobilenet)
    assert classify(mobilenet, input_layer="input:0", output_layer=OUTPUT + ":0") == plain


def test_png_and_bmp_give_the_jpeg_result(mobilenet, tmp_path):
    pixels = tf.io.decode_jpeg(Path(mobilenet.image).read_bytes(), channels=3)
    png = tmp_path / "hopper.png"
    png.write_bytes(tf.io.encode_png(pixels).numpy())
    bmp = write_bmp(tmp_path / "hopper.bmp", pixels.numpy())
    expected = classify(mobilenet)
    for path in (str(png), bmp):
        got = classify(mobilenet, image=path)
        assert [i for _, i, _ in got] == [i for _, i, _ in expected]
        np.testing.assert_allclose([s for *_, s in got], [s for *_, s in expected], rtol=1e-5)


def test_console_script_prints_ranked_labels_and_time(mobilenet):
    proc = run_script("--graph=" + mobilenet.graph, "--image=" + mobilenet.image,
                      "--labels=" + mobilenet.labels, "--output_layer=" + OUTPUT,
                      "--input_mean=127.5", "--input_std=127.5")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 6
    ranked = [re.fullmatch(r"(.+) \((\d+)\): (\d\.\d{5})", line) for line in lines[:5]]
    assert all(ranked), lines
    assert "military uniform" in [m.group(1) for m in ranked]
    assert re.fullmatch(r"inference time: \d+\.\d\d ms \(one run, after a warm-up run\)", lines[5])


def test_2016_flag_spellings(mobilenet, capsys):
    status = tool.run(["label_image", "--input_graph=" + mobilenet.graph,
                       "--image=" + mobilenet.image, "--labels=" + mobilenet.labels,
                       "--input_layer_name=input", "--output_layer_name=" + OUTPUT,
                       "--mean_value=127.5", "--std_value=127.5", "--top_k=3"])
    out = capsys.readouterr().out
    assert status == 0
    assert "military uniform (653): " in out and len(out.strip().splitlines()) == 4


def one_line_error(stderr):
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("label_image: error: "), stderr
    return lines[0]


@pytest.mark.parametrize("flag, message", [
    ("--image=/nonexistent/hopper.jpg", "image file '/nonexistent/hopper.jpg' does not exist"),
    ("--graph=/nonexistent/graph.pb", "'/nonexistent/graph.pb' does not exist"),
    ("--output_layer=no_such_layer", "output layer 'no_such_layer' is not in the graph; "
                                     "candidates: " + OUTPUT),
])
def test_bad_input_is_one_line_error(mobilenet, capsys, flag, message):
    args = {"--graph": mobilenet.graph, "--image": mobilenet.image, "--output_layer": OUTPUT}
    args.update([flag.split("=", 1)])
    assert tool.run(["label_image"] + ["%s=%s" % kv for kv in args.items()]) == 1
    assert message in one_line_error(capsys.readouterr().err)


def test_console_script_error_has_no_traceback_or_tf_logs(mobilenet):
    # Unlike run() in-process, this also sees what TensorFlow itself writes to stderr.
    proc = run_script("--graph=" + mobilenet.graph, "--image=" + mobilenet.image)
    assert proc.returncode == 1
    assert "output layer 'softmax' is not in the graph" in one_line_error(proc.stderr)


def test_bad_flag_values_are_one_line_errors(mobilenet, capsys):
    base = ["label_image", "--graph=" + mobilenet.graph, "--image=" + mobilenet.image,
            "--output_layer=" + OUTPUT]
    for bad in ["--top_k=0", "--input_std=0", "--crop_fraction=1.5", "--input_height=abc",
                "--input_height=299", "--no_such_flag=1", "stray_argument"]:
        assert tool.run(base + [bad]) == 1, bad
        one_line_error(capsys.readouterr().err)


# --- feeds, on tiny graphs ---------------------------------------------------------------------

def test_string_input_gets_the_encoded_file(tmp_path):
    def build():
        contents = tf.compat.v1.placeholder(tf.string, [], name="DecodeJpeg/contents")
        pixels = tf.cast(tf.io.decode_jpeg(contents, channels=3, name="DecodeJpeg"), tf.float32)
        tf.nn.softmax(tf.reduce_mean(pixels, axis=[0, 1]) / 25.0, name="softmax")
    graph = save_graph(tmp_path / "decode.pb", build)
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    image = tmp_path / "red.jpg"
    image.write_bytes(tf.io.encode_jpeg(red).numpy())
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\n")

    top = tool.label_image(graph, str(image), str(labels), input_layer="DecodeJpeg/contents")
    # Blue has no label line, so its index stands in; green and blue tie and keep index order.
    assert [(label, index) for label, index, _ in top] == [("red", 0), ("green", 1), ("2", 2)]


def shape_graph(tmp_path, shape):
    """A graph whose 'scores' are the shape of what was fed to its float input."""
    def build():
        x = tf.compat.v1.placeholder(tf.float32, shape, name="input")
        tf.cast(tf.shape(x), tf.float32, name="softmax")
    return save_graph(tmp_path / "shape.pb", build)


def fed_shape(graph, image, **kwargs):
    top = tool.label_image(graph, image, top_k=10, **kwargs)
    return [int(score) for _, _, score in sorted(top, key=lambda t: t[1])]


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "gray.png"
    path.write_bytes(tf.io.encode_png(np.full((20, 30, 3), 128, np.uint8)).numpy())
    return str(path)


def test_unknown_rank_input_gets_a_batch_of_one(tmp_path, png):
    graph = shape_graph(tmp_path, None)
    assert fed_shape(graph, png, height=5, width=7) == [1, 5, 7, 3]
    assert fed_shape(graph, png) == [1, 299, 299, 3]


def test_rank3_input_gets_one_image(tmp_path, png):
    assert fed_shape(shape_graph(tmp_path, [None, None, 3]), png, height=5, width=7) == [5, 7, 3]


def test_static_height_width_are_the_default_and_enforced(tmp_path, png):
    graph = shape_graph(tmp_path, [1, 8, 6, 3])
    assert fed_shape(graph, png) == [1, 8, 6, 3]
    with pytest.raises(QuantizeGraphError, match="height 8, but 9 was asked"):
        fed_shape(graph, png, height=9)


def qg_graph(tmp_path):
    graph_def = graph_pb2.GraphDef()
    graph_def.node.add(name="input", op="Placeholder").attr["dtype"].type = 1
    graph_def.node.add(name="softmax", op="QgSoftmax", input=["input"])
    path = tmp_path / "qg.pb"
    path.write_bytes(graph_def.SerializeToString())
    return str(path)


def test_qg_ops_need_the_op_library(tmp_path, png, monkeypatch):
    monkeypatch.setitem(sys.modules, "quantize_graph.kernels", None)  # as if not built
    with pytest.raises(QuantizeGraphError, match=r"\(QgSoftmax\), which need its op library"):
        tool.label_image(qg_graph(tmp_path), png)


def test_qg_ops_load_the_op_library_first(tmp_path, png, monkeypatch):
    calls = []
    fake = types.SimpleNamespace(load=lambda: calls.append("load"))
    monkeypatch.setitem(sys.modules, "quantize_graph.kernels", fake)
    # The fake registers no op, so the import still fails, but only after load().
    with pytest.raises(QuantizeGraphError, match="does not import"):
        tool.label_image(qg_graph(tmp_path), png)
    assert calls == ["load"]


# --- preprocessing helpers ---------------------------------------------------------------------

def test_read_labels_plain_and_indexed(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("background\ntench\n12:00 clock\n\n")
    assert preprocess.read_labels(str(plain)) == ["background", "tench", "12:00 clock"]
    indexed = tmp_path / "indexed.txt"
    indexed.write_text("0:background\n1:tench, Tinca tinca\n3: goldfish\n")
    assert preprocess.read_labels(str(indexed)) == ["background", "tench, Tinca tinca", "2",
                                                    "goldfish"]


def test_read_labels_of_the_shared_model(mobilenet):
    labels = preprocess.read_labels(mobilenet.labels)
    assert len(labels) == 1001 and labels[0] == "background" and labels[653] == "military uniform"


def test_read_image_normalises_and_resizes(png):
    image = preprocess.read_image(png, 4, 6, mean=128.0, std=2.0)
    assert image.shape == (4, 6, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image, 0.0)


def test_read_image_takes_the_first_gif_frame(tmp_path):
    def frame(local_palette):  # one 1x1 frame whose pixel is palette entry 0
        return b",\0\0\0\0\1\0\1\0" + local_palette + b"\2\2D\1\0"
    red_then_green = (b"GIF89a\1\0\1\0\x80\0\0" + b"\xff\0\0\0\0\0" + frame(b"\0")
                      + frame(b"\x80" + b"\0\xff\0\0\0\0") + b";")
    gif = tmp_path / "anim.gif"
    gif.write_bytes(red_then_green)
    image = preprocess.read_image(str(gif), 2, 2, mean=0, std=255)
    np.testing.assert_allclose(image, np.broadcast_to([1.0, 0.0, 0.0], (2, 2, 3)))


def test_read_image_errors_name_the_file(tmp_path):
    with pytest.raises(QuantizeGraphError, match="'.*missing.jpg' does not exist"):
        preprocess.read_image(str(tmp_path / "missing.jpg"), 4, 4, 0, 1)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    with pytest.raises(QuantizeGraphError, match="cannot decode image '.*junk.jpg'"):
        preprocess.read_image(str(junk), 4, 4, 0, 1)


def test_list_images_is_recursive_sorted_and_case_blind(tmp_path):
    for name in ["b.PNG", "a.jpg", "sub/c.JpEg", "sub/d.gif", "sub/e.bmp", "notes.txt"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [Path(p).relative_to(tmp_path).as_posix()
             for p in preprocess.list_images(str(tmp_path))]
    assert found == ["a.jpg", "b.PNG", "sub/c.JpEg", "sub/d.gif", "sub/e.bmp"]
