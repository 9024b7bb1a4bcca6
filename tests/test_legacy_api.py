"""The 2016 tensorflow/tools/quantization/quantize_graph.py module API, as `import quantize_graph`
exposes it: same arguments, results and errors as the original module."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2, graph_pb2

import quantize_graph
from quantize_graph.runner import run_graph
from tests.graphs import conv_relu_pool_graph, matmul_graph


def _rng_input(graph_def, name, seed=0):
    node = next(n for n in graph_def.node if n.name == name)
    shape = [d.size for d in node.attr["shape"].shape.dim]
    return np.random.RandomState(seed).uniform(-1, 1, shape).astype(np.float32)


def _const_node(name, values):
    values = np.asarray(values, np.float32)
    return quantize_graph.create_constant_node(name, values, tf.float32, shape=list(values.shape))


def test_tensorflow_module_path_resolves_to_the_legacy_api():
    from tensorflow.tools.quantization import quantize_graph as old
    assert old.GraphRewriter is quantize_graph.GraphRewriter
    assert old.FLAGS is quantize_graph.FLAGS
    for name in ("create_node", "create_constant_node", "quantize_array", "quantize_weight_eightbit",
                 "quantize_weight_rounded", "node_name_from_input", "set_attr_dtype"):
        assert callable(getattr(old, name)), name


def test_flags_bitdepth_defaults_to_8():
    assert quantize_graph.FLAGS.bitdepth == 8


# --- GraphRewriter -------------------------------------------------------------------------

def test_rewriter_rejects_inverted_input_range():
    graph, _, _ = matmul_graph()
    with pytest.raises(ValueError, match="Invalid quantized_input_range"):
        quantize_graph.GraphRewriter(graph, "eightbit", [1.0, 0.0])
    with pytest.raises(ValueError, match="Invalid quantized_input_range"):
        quantize_graph.GraphRewriter(graph, "eightbit", [1.0, 1.0])


def test_rewriter_rejects_input_range_outside_eightbit():
    graph, _, _ = matmul_graph()
    for mode in ("round", "weights", "quantize"):
        with pytest.raises(ValueError, match="eightbit"):
            quantize_graph.GraphRewriter(graph, mode, [0.0, 1.0])


def test_rewriter_rejects_bad_fallback_range():
    graph, _, _ = matmul_graph()
    with pytest.raises(ValueError, match="Invalid fallback_quantization_range"):
        quantize_graph.GraphRewriter(graph, "eightbit", None, [2.0, -2.0])
    with pytest.raises(ValueError, match="eightbit"):
        quantize_graph.GraphRewriter(graph, "round", None, [-2.0, 2.0])


def test_rewriter_rejects_duplicate_node_names():
    graph, _, _ = matmul_graph()
    graph.node.extend([graph.node[0]])
    with pytest.raises(ValueError, match="Duplicate node names"):
        quantize_graph.GraphRewriter(graph, "eightbit", None)


# Ops each mode's result must contain (so a mode can't silently fall back to the float graph).
MODE_OPS = {"eightbit": "QuantizedMatMul", "weights": "Dequantize", "weights_rounded": "MatMul",
            "round": "FakeQuantWithMinMaxVars", "quantize": "QuantizeV2"}


@pytest.mark.parametrize("mode", sorted(MODE_OPS))
@pytest.mark.parametrize("builder", [matmul_graph, conv_relu_pool_graph])
def test_rewrite_runs_and_approximates_float(mode, builder):
    """Tolerance: max abs error within 2% of the float output's range (8 bits: ~0.4% a step,
    a few steps accumulate across layers)."""
    graph, input_name, output_name = builder()
    x = {input_name + ":0": _rng_input(graph, input_name)}
    want = run_graph(graph, [output_name + ":0"], x)[0]
    rewritten = quantize_graph.GraphRewriter(graph, mode, None).rewrite([output_name])
    assert isinstance(rewritten, graph_pb2.GraphDef)
    assert MODE_OPS[mode] in {n.op for n in rewritten.node}
    got = run_graph(rewritten, [output_name + ":0"], x)[0]
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 0.02 * np.ptp(want)


def test_weights_rounded_limits_distinct_weight_values():
    graph, _, output_name = matmul_graph()
    rewritten = quantize_graph.GraphRewriter(graph, "weights_rounded", None).rewrite([output_name])
    weights = [tf.make_ndarray(n.attr["value"].tensor) for n in rewritten.node
               if n.op == "Const" and n.attr["value"].tensor.tensor_shape.dim]
    assert any(w.size > 2 for w in weights)
    assert all(len(np.unique(w)) <= 256 for w in weights)


def test_rewrite_eightbit_inside_a_graph_context():
    """2016-era scripts call the rewriter inside `with tf.Graph().as_default():`."""
    graph, input_name, output_name = matmul_graph()
    with tf.Graph().as_default():
        rewritten = quantize_graph.GraphRewriter(graph, "eightbit", None).rewrite([output_name])
    assert "QuantizedMatMul" in {n.op for n in rewritten.node}


def test_remove_redundant_quantization():
    """The original module's own test: Dequantize -> QuantizeV2 pairs feeding a QuantizedMatMul
    are removed and the MatMul reads the quint8 constants and their ranges directly."""
    qg = quantize_graph

    def quantized_constant(prefix, graph):
        graph.node.extend([
            qg.create_constant_node(prefix + "_constant", value=(0,), dtype=tf.quint8, shape=[]),
            qg.create_constant_node(prefix + "_constant_min", value=2, dtype=tf.float32, shape=[]),
            qg.create_constant_node(prefix + "_constant_max", value=2, dtype=tf.float32, shape=[])])

    graph = graph_pb2.GraphDef()
    for prefix in ("a", "b"):
        quantized_constant(prefix, graph)
        dequantize = qg.create_node("Dequantize", prefix + "_dequantize", [
            prefix + "_constant", prefix + "_constant_min", prefix + "_constant_max"])
        qg.set_attr_dtype(dequantize, "T", tf.uint8)
        quantize = qg.create_node("QuantizeV2", prefix + "_quantize", [
            prefix + "_dequantize", prefix + "_dequantize:1", prefix + "_dequantize:2"])
        qg.set_attr_dtype(quantize, "T", tf.uint8)
        graph.node.extend([dequantize, quantize])
    mat_mul = qg.create_node("QuantizedMatMul", "mat_mul", [
        "a_quantize", "b_quantize", "a_quantize:1", "a_quantize:2", "b_quantize:1", "b_quantize:2"])
    qg.set_attr_dtype(mat_mul, "T1", tf.uint8)
    qg.set_attr_dtype(mat_mul, "T2", tf.int32)
    graph.node.extend([mat_mul])

    expected = graph_pb2.GraphDef()
    quantized_constant("a", expected)
    quantized_constant("b", expected)
    mat_mul = qg.create_node("QuantizedMatMul", "mat_mul", [
        "a_constant", "b_constant", "a_constant_min", "a_constant_max", "b_constant_min",
        "b_constant_max"])
    qg.set_attr_dtype(mat_mul, "T1", tf.uint8)
    qg.set_attr_dtype(mat_mul, "T2", tf.int32)
    expected.node.extend([mat_mul])

    rewriter = qg.GraphRewriter(graph, [mat_mul.name], quantized_input_range=None)
    output = rewriter.remove_redundant_quantization(graph)
    stripped = tf.compat.v1.graph_util.extract_sub_graph(output, ["mat_mul"])
    assert {n.name: n for n in stripped.node} == {n.name: n for n in expected.node}
    assert "a_quantize" in {n.name for n in graph.node}  # the input graph is not modified


# --- weight helpers ------------------------------------------------------------------------

def test_quantize_array():
    qa = quantize_graph.quantize_array
    arr = np.array([0, 0.3, 0.6, 1])
    np.testing.assert_array_equal(qa(arr, 2), [0.25, 0.25, 0.75, 0.75])
    np.testing.assert_array_equal(qa(arr, 1), [0.5, 0.5, 0.5, 0.5])
    np.testing.assert_array_equal(qa(arr.reshape((2, 2)), 2), [[0.25, 0.25], [0.75, 0.75]])
    for constant in (np.array([1]), np.array([1, 1, 1])):
        assert qa(constant, 10) is constant  # returned unchanged
    with pytest.raises(ValueError):
        qa(np.array([1, 2]), 0)
    with pytest.raises(ValueError):
        qa(np.array([]), 2)


def _evaluate(nodes, name):
    graph = graph_pb2.GraphDef()
    graph.node.extend(nodes)
    return run_graph(graph, [name + ":0"], {})[0]


# (TF's MIN_FIRST Dequantize is one step off QuantizeV2 when min / step is a half-integer, as for
# a symmetric range like [-1, 1]; these ranges avoid that kernel quirk.)
@pytest.mark.parametrize("values", [
    np.linspace(-1.0, 2.0, 24).reshape(2, 3, 4),   # mixed signs
    np.array([[0.5, 0.75], [1.0, 0.6]]),            # all positive: the range is widened to 0
    np.zeros(5),                                    # degenerate range
])
def test_quantize_weight_eightbit(values):
    node = _const_node("w", values)
    nodes = quantize_graph.quantize_weight_eightbit(node, b"MIN_FIRST")
    assert [n.name for n in nodes] == ["w_quint8_const", "w_min", "w_max", "w"]
    const, min_node, max_node, dequantize = nodes
    assert const.op == "Const" and const.attr["dtype"].type == tf.quint8.as_datatype_enum
    assert dequantize.op == "Dequantize" and list(dequantize.input) == [
        "w_quint8_const", "w_min", "w_max"]
    assert dequantize.attr["mode"].s == b"MIN_FIRST"
    lo, hi = float(_evaluate(nodes, "w_min")), float(_evaluate(nodes, "w_max"))
    assert lo <= min(0.0, values.min()) and hi >= values.max() and hi > lo
    got = _evaluate(nodes, "w")
    assert got.shape == values.shape
    np.testing.assert_allclose(got, values, atol=(hi - lo) / 255 + 1e-6)  # within one step


def test_quantize_weight_eightbit_inside_a_graph_context():
    values = [[-1.0, 0.25], [0.5, 2.0]]
    with tf.Graph().as_default():
        nodes = quantize_graph.quantize_weight_eightbit(_const_node("w", values), b"MIN_FIRST")
    np.testing.assert_allclose(_evaluate(nodes, "w"), values, atol=3 / 255)


@pytest.mark.parametrize("bitdepth", [8, 2])
def test_quantize_weight_rounded(monkeypatch, bitdepth):
    monkeypatch.setattr(quantize_graph.FLAGS, "bitdepth", bitdepth)
    values = np.random.RandomState(0).normal(size=(16, 32)).astype(np.float32)
    nodes = quantize_graph.quantize_weight_rounded(_const_node("w", values))
    assert len(nodes) == 1
    node = nodes[0]
    assert node.name == "w" and node.op == "Const"
    assert node.attr["dtype"].type == tf.float32.as_datatype_enum
    rounded = tf.make_ndarray(node.attr["value"].tensor)
    assert rounded.shape == values.shape and rounded.dtype == np.float32
    assert len(np.unique(rounded)) <= 2 ** bitdepth
    step = np.ptp(values) / 2 ** bitdepth
    assert np.abs(rounded - values).max() <= step / 2 + 1e-5


# --- name and node helpers -----------------------------------------------------------------

def test_name_helpers():
    qg = quantize_graph
    assert qg.node_name_from_input("^a:1") == "a"
    assert qg.node_name_from_input("^SomeName:2") == "SomeName"
    assert qg.node_name_from_input("a/b") == "a/b"
    assert qg.unique_node_name_from_input("a:1") == "a__port__1"
    assert qg.unique_node_name_from_input("^SomeName:2") == "__hat__SomeName__port__2"
    assert qg.ensure_tensor_name_has_port("a") == "a:0"
    assert qg.ensure_tensor_name_has_port("a:2") == "a:2"


def test_create_node():
    node = quantize_graph.create_node("Add", "sum", ["a", "b:1", "^c"])
    assert (node.op, node.name, list(node.input)) == ("Add", "sum", ["a", "b:1", "^c"])
    assert not node.attr


def test_create_constant_node():
    node = quantize_graph.create_constant_node("c", [1.0, 2.0, 3.0, 4.0], tf.float32, shape=[2, 2])
    assert (node.op, node.name, list(node.input)) == ("Const", "c", [])
    assert node.attr["dtype"] == attr_value_pb2.AttrValue(type=tf.float32.as_datatype_enum)
    np.testing.assert_array_equal(tf.make_ndarray(node.attr["value"].tensor), [[1, 2], [3, 4]])
    scalar = quantize_graph.create_constant_node("s", 7, tf.int32)
    assert tf.make_ndarray(scalar.attr["value"].tensor) == 7


def test_set_attr_helpers():
    qg = quantize_graph
    AttrValue = attr_value_pb2.AttrValue
    node = qg.create_node("Op", "n", [])
    qg.set_attr_dtype(node, "T", tf.quint8)
    qg.set_attr_shape(node, "shape", [1, None, 3])
    qg.set_attr_tensor(node, "value", [1.5, 2.5], tf.float32, [2])
    qg.set_attr_string(node, "padding", b"SAME")
    qg.set_attr_int_list(node, "strides", [1, 2, 2, 1])
    qg.set_attr_bool(node, "transpose_a", True)
    qg.set_attr_int(node, "N", 3)
    qg.set_attr_float(node, "alpha", 0.5)
    qg.copy_attr(node, "copied", AttrValue(s=b"x"))
    assert node.attr["T"] == AttrValue(type=tf.quint8.as_datatype_enum)
    assert node.attr["shape"] == AttrValue(shape=tf.TensorShape([1, None, 3]).as_proto())
    assert node.attr["value"] == AttrValue(
        tensor=tf.make_tensor_proto([1.5, 2.5], dtype=tf.float32, shape=[2]))
    assert node.attr["padding"] == AttrValue(s=b"SAME")
    assert node.attr["strides"] == AttrValue(list=AttrValue.ListValue(i=[1, 2, 2, 1]))
    assert node.attr["transpose_a"] == AttrValue(b=True)
    assert node.attr["N"] == AttrValue(i=3)
    assert node.attr["alpha"] == AttrValue(f=0.5)
    assert node.attr["copied"] == AttrValue(s=b"x")


def test_legacy_script_in_a_fresh_tf1_style_process(tmp_path):
    """A 2016-style script: eager execution disabled, the old import path, the old helpers."""
    script = tmp_path / "old_script.py"
    script.write_text(
        "import tensorflow as tf\n"
        "tf.compat.v1.disable_eager_execution()\n"
        "import quantize_graph\n"
        "from tensorflow.tools.quantization import quantize_graph as qg\n"
        "from tests.graphs import matmul_graph\n"
        "graph, _, out = matmul_graph()\n"
        "rewritten = qg.GraphRewriter(graph, 'eightbit', None).rewrite([out])\n"
        "node = qg.create_constant_node('w', [[-1.0, 0.5]], tf.float32, shape=[1, 2])\n"
        "nodes = qg.quantize_weight_eightbit(node, b'MIN_FIRST')\n"
        "print(qg.FLAGS.bitdepth, 'QuantizedMatMul' in {n.op for n in rewritten.node},\n"
        "      [n.name for n in nodes])\n")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=repo)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                       cwd=repo, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[0] == (
        "8 True ['w_quint8_const', 'w_min', 'w_max', 'w']"), r.stdout
