"""Issue 11, one test per class of bad input: tracebacks that must be one-line errors, bad input
that was silently accepted, the Python API's error type, and the Qg ops' overflow and window
limits (a crash there is run in a subprocess so it fails the test instead of killing pytest).
tests/test_fuzz.py covers the same classes with random cases."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from tensorflow.core.framework import graph_pb2

import quantize_graph
from quantize_graph import QuantizeGraphError, kernels
from tests.graphs import conv_relu_pool_graph, matmul_graph, write_graph
from tests.test_fuzz import run_cli

REPO = Path(__file__).resolve().parent.parent


def _graph():
    graph, _, _ = conv_relu_pool_graph()
    return graph


def _edit(graph, name, edit):
    out = graph_pb2.GraphDef()
    out.CopyFrom(graph)
    edit(next(n for n in out.node if n.name == name))
    return out


def _conv_filter(graph):
    return next(n.input[1] for n in graph.node if n.op == "Conv2D")


def _set_floats(node, values):
    tensor = node.attr["value"].tensor
    tensor.tensor_content = np.asarray(values, np.float32).tobytes()
    del tensor.tensor_shape.dim[:]
    for d in np.shape(values):
        tensor.tensor_shape.dim.add().size = d


def _one_line(code, err, *words):
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert lines[0].startswith("quantize_graph: error: ") and "internal error" not in lines[0], err
    for word in words:
        assert word in lines[0], (word, lines[0])


GRAPH = _graph()
FILTER = _conv_filter(GRAPH)

# (id, graph edit, words the one error line must hold); each ran before with a traceback or
# was rewritten into a graph that does not import.
BAD_GRAPHS = [
    # The value's dtype differs from the node's: TF's Const kernel aborted the process.
    ("const_value_dtype", lambda g: _edit(g, FILTER, lambda n: setattr(n.attr["value"].tensor, "dtype", 3)),
     [FILTER, "dtype int32", "declares float32"]),
    ("const_content_short", lambda g: _edit(g, FILTER, lambda n: setattr(
        n.attr["value"].tensor, "tensor_content", n.attr["value"].tensor.tensor_content[:-4])),
     [FILTER, "dtype and shape"]),
    ("filter_wrong_rank", lambda g: _edit(g, FILTER, lambda n: _set_floats(n, np.ones((3, 3, 3)))),
     ["'conv'", "rank"]),
    ("filter_channels_mismatch", lambda g: _edit(g, FILTER, lambda n: _set_floats(n, np.ones((3, 3, 5, 4)))),
     ["'conv'", "depth"]),
    ("nan_weights", lambda g: _edit(g, FILTER, lambda n: _set_floats(n, np.full((3, 3, 3, 4), np.nan))),
     ["'conv'", FILTER, "NaN or Inf"]),
    ("inf_weights", lambda g: _edit(g, FILTER, lambda n: _set_floats(
        n, np.where(np.eye(4)[:3][None, None] > 0, np.inf, 0.1) * np.ones((3, 3, 3, 4)))),
     ["NaN or Inf"]),
    ("strides_wrong_length", lambda g: _edit(g, "conv", lambda n: n.attr["strides"].list.i.pop()),
     ["'conv' (Conv2D)", "stride"]),
    ("strides_zero", lambda g: _edit(g, "conv", lambda n: n.attr["strides"].list.i.__setitem__(1, 0)),
     ["'conv'", "Stride must be > 0"]),
    ("stride_in_batch_position", lambda g: _edit(g, "conv", lambda n: n.attr["strides"].list.i.__setitem__(0, 2)),
     ["'conv' (Conv2D)", "strides", "batch and channel"]),
    ("ksize_in_channel_position", lambda g: _edit(g, "pool", lambda n: n.attr["ksize"].list.i.__setitem__(3, 2)),
     ["'pool' (MaxPool)", "ksize", "batch and channel"]),
    ("unknown_padding", lambda g: _edit(g, "pool", lambda n: setattr(n.attr["padding"], "s", b"FULL")),
     ["'pool' (MaxPool)", "padding", "FULL"]),
    ("wrong_attr_type", lambda g: _edit(g, "conv", lambda n: (n.attr["strides"].Clear(),
                                                               setattr(n.attr["strides"], "i", 2))),
     ["'conv'", "strides"]),
    ("missing_attr", lambda g: _edit(g, "conv", lambda n: n.attr.pop("padding")),
     ["'conv'", "missing attr 'padding'"]),
    ("unknown_op", lambda g: _edit(g, "relu", lambda n: setattr(n, "op", "Relu7")),
     ["node 'relu'", "unknown op type 'Relu7'", "did you mean"]),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad_input")
    write_graph(GRAPH, d / "model.pb")
    return d


@pytest.mark.parametrize("edit,words", [c[1:] for c in BAD_GRAPHS], ids=[c[0] for c in BAD_GRAPHS])
@pytest.mark.parametrize("mode", ["eightbit", "weights_rounded"])
def test_invalid_graph_is_one_line_and_writes_nothing(tmp_path, edit, words, mode):
    path = write_graph(edit(GRAPH), tmp_path / "bad.pb")
    code, err = run_cli(["--input=" + path, "--output=%s" % (tmp_path / "q.pb"), "--mode=" + mode,
                         "--output_node_names=softmax", "--target=reference"])
    _one_line(code, err, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pb"]


def test_zero_size_weights_are_an_error(tmp_path):
    """A MatMul whose weights have no values (a [0, N] weight for a [M, 0] input) imports
    fine; quantizing them would take the min of nothing."""
    import tensorflow as tf
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [2, 0], name="input")
        tf.matmul(x, tf.constant(np.zeros((0, 3), np.float32)), name="out")
    with pytest.raises(QuantizeGraphError, match="weights .* are empty"):
        quantize_graph.quantize(g.as_graph_def(), ["out"], mode="weights")


BAD_FLAGS = [
    ("test_input_dims_zero", ["--mode=test", "--test_input_dims=0,8,8,3"], ["--test_input_dims", "at least 1"]),
    ("test_input_dims_negative", ["--mode=test", "--test_input_dims=1,-8,8,3"], ["--test_input_dims"]),
    ("excluded_node_missing", ["--mode=eightbit", "--excluded_nodes=cnov"],
     ["excluded node 'cnov'", "did you mean 'conv'"]),
    ("excluded_op_unknown", ["--mode=eightbit", "--excluded_ops=Conv2d"],
     ["excluded op type 'Conv2d'", "did you mean", "Conv2D"]),
    ("bitdepth_above_range", ["--mode=weights_rounded", "--bitdepth=17"], ["--bitdepth", "got 17"]),
    ("bitdepth_below_range", ["--mode=round", "--bitdepth=1"], ["--bitdepth", "got 1"]),
    ("bitdepth_quantize_12", ["--mode=quantize", "--bitdepth=12"], ["8 or 16"]),
    ("infinite_quantized_input", ["--mode=eightbit", "--quantized_input", "--quantized_input_max=inf"],
     ["--quantized_input", "finite"]),
    ("nan_fallback", ["--mode=eightbit", "--quantized_fallback_min=nan", "--quantized_fallback_max=1"],
     ["--quantized_fallback"]),
    ("percentile_nan", ["--mode=eightbit", "--calibration_percentile=nan"], ["--calibration_percentile"]),
    ("input_std_zero", ["--mode=eightbit", "--input_std=0"], ["--input_std"]),
]


@pytest.mark.parametrize("extra,words", [c[1:] for c in BAD_FLAGS], ids=[c[0] for c in BAD_FLAGS])
def test_bad_flag_value_is_one_line(files, tmp_path, extra, words):
    args = ["--input=%s" % (files / "model.pb"), "--output_node_names=softmax"] + extra
    if "--mode=test" not in extra:
        args.append("--output=%s" % (tmp_path / "q.pb"))
    _one_line(*run_cli(args), *words)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag", ["report", "ranges_out"])
@pytest.mark.parametrize("where", ["missing_dir/r.json", "."])
def test_side_output_path_checked_before_the_graph_is_written(files, tmp_path, flag, where):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(0, 1, (12, 8, 8, 3)).astype(np.float32))
    code, err = run_cli(["--input=%s" % (files / "model.pb"), "--output=%s" % (tmp_path / "q.pb"),
                         "--mode=eightbit", "--target=reference", "--output_node_names=softmax",
                         "--calibration_data=%s" % (tmp_path / "x.npy"),
                         "--%s=%s" % (flag, tmp_path / where)])
    _one_line(code, err, "--" + flag)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]  # no quantized graph


CALIBRATION = np.random.default_rng(0).uniform(0, 1, (4, 8, 8, 3)).astype(np.float32)
BAD_CALIBRATION = [
    ("wrong_shape", CALIBRATION[:, :4], ["'input'", "shape 4,4,8,3", "1,8,8,3"]),
    ("wrong_rank", CALIBRATION[0], ["'input'", "shape 8,8,3"]),
    ("complex", CALIBRATION.astype(np.complex64), ["'input'", "complex64"]),
    ("strings", CALIBRATION.astype(str), ["'input'", "real numbers"]),
    ("nan", np.where(CALIBRATION > 0.9, np.nan, CALIBRATION), ["'input'", "NaN or Inf"]),
    ("scalar", np.float32(1), ["'input'", "no examples"]),
]


@pytest.mark.parametrize("data,words", [c[1:] for c in BAD_CALIBRATION], ids=[c[0] for c in BAD_CALIBRATION])
def test_bad_calibration_arrays(files, tmp_path, data, words):
    np.save(tmp_path / "x.npy", data)
    code, err = run_cli(["--input=%s" % (files / "model.pb"), "--output=%s" % (tmp_path / "q.pb"),
                         "--mode=eightbit", "--output_node_names=softmax",
                         "--calibration_data=%s" % (tmp_path / "x.npy")])
    _one_line(code, err, *words)
    with pytest.raises(QuantizeGraphError):  # the API checks the same
        quantize_graph.quantize(GRAPH, ["softmax"], calibration_inputs={"input": data})


def test_corrupt_npz_is_one_line(files, tmp_path):
    np.savez(tmp_path / "x.npz", input=CALIBRATION)
    data = (tmp_path / "x.npz").read_bytes()
    (tmp_path / "x.npz").write_bytes(data[:50] + bytes(60) + data[110:])
    code, err = run_cli(["--input=%s" % (files / "model.pb"), "--output=%s" % (tmp_path / "q.pb"),
                         "--mode=eightbit", "--output_node_names=softmax",
                         "--calibration_data=%s" % (tmp_path / "x.npz")])
    _one_line(code, err, "x.npz")


# ---- the Python API ------------------------------------------------------------------------

API_CASES = [
    ("graph_none", lambda: quantize_graph.quantize(None, ["softmax"]), "GraphDef"),
    ("graph_bytes", lambda: quantize_graph.quantize(b"\x08", ["softmax"]), "GraphDef"),
    ("outputs_int", lambda: quantize_graph.quantize(GRAPH, 3), "output node names"),
    ("unknown_option", lambda: quantize_graph.quantize(GRAPH, ["softmax"], bitdeph=8), "bitdeph"),
    ("bitdepth_string", lambda: quantize_graph.quantize(GRAPH, ["softmax"], bitdepth="8"), "bitdepth"),
    ("range_of_three", lambda: quantize_graph.quantize(GRAPH, ["softmax"], fallback_range=(0, 1, 2)),
     "fallback_range"),
    ("excluded_nodes_string_list", lambda: quantize_graph.quantize(GRAPH, ["softmax"], excluded_nodes=[1]),
     "excluded_nodes"),
    ("excluded_node_missing", lambda: quantize_graph.quantize(GRAPH, ["softmax"], excluded_nodes=["cnov"]),
     "did you mean"),
    ("excluded_op_unknown", lambda: quantize_graph.quantize(GRAPH, ["softmax"], excluded_ops=["MaxPooling"]),
     "'MaxPooling' is not a TensorFlow op type"),
    ("calibration_wrong_key", lambda: quantize_graph.quantize(
        GRAPH, ["softmax"], calibration_inputs={"x": CALIBRATION}), "'x' is not one"),
    ("infinite_fallback", lambda: quantize_graph.quantize(GRAPH, ["softmax"], fallback_range=(0, np.inf)),
     "finite"),
    ("ranges_nan", lambda: quantize_graph.quantize(GRAPH, ["softmax"], ranges={"conv": (np.nan, 1)}),
     "'conv'"),
    ("quantize_file_none", lambda: quantize_graph.quantize_file(None, "q.pb", ["softmax"]), "input_path"),
]


@pytest.mark.parametrize("call,words", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_api_raises_quantize_graph_error(call, words):
    with pytest.raises(QuantizeGraphError, match=words):
        call()


def test_api_accepts_numpy_integers_and_lists():
    """The type checks take what numpy and JSON hand over."""
    graph, _, out = matmul_graph()
    quantize_graph.quantize(graph, out, mode="weights_rounded", bitdepth=np.int64(6),
                            excluded_nodes=["matmul"])


# ---- the original module's behaviour (tensorflow/tools/quantization/quantize_graph_test.py) ---

def _legacy_graph(*nodes):
    g = graph_pb2.GraphDef()
    g.node.extend(nodes)
    return g


def _ops(graph_def):
    return [n.op for n in graph_def.node]


def test_graph_rewriter_keeps_constant_concat_quantized():
    from tensorflow.python.framework import dtypes
    q = quantize_graph
    axis = q.create_constant_node("axis", value=0, dtype=dtypes.int32, shape=[])
    a = q.create_constant_node("a", value=list(range(12)), dtype=dtypes.float32, shape=[2, 2, 3])
    b = q.create_constant_node("b", value=list(range(12, 24)), dtype=dtypes.float32, shape=[2, 2, 3])
    concat = q.create_node("Concat", "concat", ["axis", "a", "b"])
    q.set_attr_int(concat, "N", 2)
    q.set_attr_dtype(concat, "T", dtypes.float32)
    out = q.GraphRewriter(_legacy_graph(axis, a, b, concat), "eightbit", None).rewrite(["concat"])
    ops = _ops(out)
    assert ops.count("QuantizedConcat") == 1 and ops.count("QuantizeV2") == 0
    assert ops.count("Dequantize") == 1
    quint8 = [n for n in out.node if n.op == "Const" and n.attr["dtype"].type == dtypes.quint8.as_datatype_enum]
    assert len(quint8) == 2  # a and b stored as 8-bit codes, quantized up front
    from quantize_graph.runner import run_graph
    got = run_graph(out, ["concat:0"], {})[0]
    np.testing.assert_allclose(got, np.arange(24).reshape(4, 2, 3), atol=24 / 255)


def test_graph_rewriter_matmul_reshape_matmul_ends_in_one_dequantize():
    from tensorflow.python.framework import dtypes
    q = quantize_graph

    def matmul(name, a, b):
        n = q.create_node("MatMul", name, [a, b])
        q.set_attr_dtype(n, "T", dtypes.float32)
        return n
    nodes = [q.create_constant_node("x", value=[0, 1, 2, 3], dtype=dtypes.float32, shape=[4, 1]),
             q.create_constant_node("w1", value=[.5, .6, .7, .8, .9], dtype=dtypes.float32, shape=[1, 5]),
             matmul("m1", "x", "w1"),
             q.create_constant_node("shape", value=[10, 2], dtype=dtypes.int32, shape=[2]),
             q.create_node("Reshape", "reshape", ["m1", "shape"]),
             q.create_constant_node("w2", value=[1.5, 2.5], dtype=dtypes.float32, shape=[2, 1]),
             matmul("m2", "reshape", "w2")]
    q.set_attr_dtype(nodes[4], "T", dtypes.float32)
    ops = _ops(q.GraphRewriter(_legacy_graph(*nodes), "eightbit", None).rewrite(["m2"]))
    assert (ops.count("QuantizeV2"), ops.count("QuantizedReshape"), ops.count("Dequantize")) == (0, 1, 1)


@pytest.mark.parametrize("fallback,named", [((-.5, 15.5), 1), (None, 0)])
def test_graph_rewriter_fallback_constants_named_as_the_original(fallback, named):
    from tensorflow.python.framework import dtypes
    q = quantize_graph
    x = q.create_constant_node("x", value=list(range(1, 11)), dtype=dtypes.float32, shape=[1, 1, 2, 5])
    bias = q.create_constant_node("bias", value=[1, 2, 3, 4, 5], dtype=dtypes.float32, shape=[5])
    add = q.create_node("BiasAdd", "bias_add", ["x", "bias"])
    q.set_attr_dtype(add, "T", dtypes.float32)
    out = q.GraphRewriter(_legacy_graph(x, bias, add), "eightbit", None, fallback).rewrite(["bias_add"])
    names, ops = [n.name for n in out.node], _ops(out)
    assert names.count("fallback_quantization_min_value") == named
    assert names.count("fallback_quantization_max_value") == named
    assert ops.count("Dequantize") == 1 and ops.count("QuantizeV2") == 0
    assert ops.count("RequantizationRange") == (0 if fallback else 1)


def test_graph_rewriter_fake_quant_reader_narrows_to_its_range():
    """A FakeQuant with a fixed range reading a quantized op: the int32 result is requantized to
    that range (one Dequantize), not dequantized exactly; the fallback range is not used."""
    from tensorflow.python.framework import dtypes
    q = quantize_graph
    x = q.create_constant_node("x", value=list(range(1, 11)), dtype=dtypes.float32, shape=[1, 1, 2, 5])
    bias = q.create_constant_node("bias", value=[1, 2, 3, 4, 5], dtype=dtypes.float32, shape=[5])
    add = q.create_node("BiasAdd", "bias_add", ["x", "bias"])
    q.set_attr_dtype(add, "T", dtypes.float32)
    lo = q.create_constant_node("lo", value=-.5, dtype=dtypes.float32, shape=[])
    hi = q.create_constant_node("hi", value=15.5, dtype=dtypes.float32, shape=[])
    fq = q.create_node("FakeQuantWithMinMaxVars", "fq", ["bias_add", "lo", "hi"])
    out = q.GraphRewriter(_legacy_graph(x, bias, add, lo, hi, fq), "eightbit", None,
                          [-100, 100]).rewrite(["fq"])
    ops, names = _ops(out), [n.name for n in out.node]
    assert ops.count("Dequantize") == 1 and ops.count("QuantizeV2") == 0
    assert "fallback_quantization_min_value" not in names
    requant = next(n for n in out.node if n.op == "Requantize")
    ends = {n.name: n for n in out.node}
    from quantize_graph.graph.nodes import const_value
    assert float(const_value(ends[requant.input[4]])) == pytest.approx(15.5, abs=0.07)


# ---- Qg ops: overflow, window and accumulator limits --------------------------------------

OP_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, tensorflow as tf
    from quantize_graph import kernels
    m = kernels.load()
    u8 = lambda a: tf.constant(np.asarray(a, np.uint8), tf.quint8)
    s8 = lambda a: tf.constant(np.asarray(a, np.int8), tf.qint8)
    f = lambda v: tf.constant(v, tf.float32)
    rng = np.random.default_rng(0)

    def run(case):
        if case == "dilated_same":
            x, w = rng.integers(0, 255, (1, 5, 5, 2)), rng.integers(-127, 128, (3, 3, 2, 4))
            r = m.qg_quantized_conv2d(u8(x), s8(w), f([.1] * 4), f([0.] * 4), f(0.), f(1.), f(0.),
                                      f(30.), [], [], [], strides=[1, 1, 1, 1], padding="SAME",
                                      dilations=[1, 2 ** 30, 2 ** 30, 1], out_type=tf.float32)[0]
            # Every tap but the centre reads padding (real 0).
            want = ((x.astype(np.int64)) @ w[1, 1].astype(np.int64)) * (0.1 / 255)
            assert np.allclose(r.numpy(), want, atol=1e-4), "wrong result"
        elif case == "deep_conv":
            x, w = rng.integers(0, 255, (1, 5, 5, 1100)), rng.integers(-127, 128, (3, 3, 1100, 8))
            m.qg_quantized_conv2d(u8(x), s8(w), f([1.] * 8), f([0.] * 8), f(0.), f(1.), f(0.), f(1.),
                                  [], [], [], strides=[1, 1, 1, 1], padding="SAME")
        elif case in ("matmul_k_limit", "matmul_k_over"):
            k = 65793 if case == "matmul_k_limit" else 72000
            a, b = np.full((2, k), 255), np.full((k, 3), -128)
            r = m.qg_quantized_mat_mul(u8(a), s8(b), f([1.] * 3), f([0.] * 3), f(0.), f(255.), f(0.),
                                       f(1.), [], [], [], out_type=tf.float32)[0]
            assert np.allclose(r.numpy(), -128.0 * 255 * k), "wrong result"
        elif case == "avg_pool_huge_window":
            x = rng.integers(0, 255, (1, 6, 6, 2))
            r = m.qg_quantized_avg_pool(u8(x), f(0.), f(1.), ksize=[1, 2 ** 30, 2 ** 30, 1],
                                        strides=[1, 1, 1, 1], padding="SAME")[0]
            got = tf.cast(r, tf.int32).numpy()
            assert (got == np.rint(x.mean(axis=(1, 2)).astype(np.float32))[:, None, None]).all()

    for case in sys.argv[1:]:
        print("start", case, flush=True)
        try:
            run(case)
            print(case, "ran", flush=True)
        except tf.errors.InvalidArgumentError as e:
            print(case, "invalid:", " ".join(e.message.split()), flush=True)
""")

OP_CASES = {"dilated_same": "ran", "deep_conv": "ran", "matmul_k_limit": "ran",
            "matmul_k_over": "invalid: QgQuantizedMatMul: K (columns of a) = 72000 exceeds 65793",
            "avg_pool_huge_window": "ran"}


@pytest.mark.parametrize("path", ["default", "portable"])
def test_qg_op_limits(path):
    """Each of these crashed (SIGSEGV), hung or wrapped the accumulator before; one subprocess
    runs them all, so a crash fails the test and names the case."""
    if not kernels.is_built():
        pytest.skip("Qg op library not built")
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("QG_CPU_PATH", None)
    if path == "portable":
        env["QG_CPU_PATH"] = "portable"
    proc = subprocess.run([sys.executable, "-c", OP_SCRIPT] + list(OP_CASES), env=env,
                          capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if not ln.startswith("start ")]
    assert proc.returncode == 0, (proc.stdout.splitlines()[-1:], proc.stderr[-500:])
    results = dict(ln.split(" ", 1) for ln in lines)
    for case, expect in OP_CASES.items():
        assert results[case].split(":")[0] == expect.split(":")[0], (case, results[case])
        assert expect.split(": ", 1)[-1] in results[case], (case, results[case])
