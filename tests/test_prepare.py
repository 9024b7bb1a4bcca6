"""The prepare stage: training-node stripping, constant folding and every batch-norm form.

Folding is exact arithmetic rearranged, so prepared graphs must match float within 1e-4
relative to the output's magnitude.
"""
import collections

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import graph_pb2
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

import quantize_graph as qg
from quantize_graph.graph.nodes import create_node, make_const, set_attr_bool, set_attr_dtype, set_attr_float
from quantize_graph.passes.prepare import prepare
from quantize_graph.runner import run_graph

TOL = 1e-4
RNG = np.random.RandomState(7)
C = 6


def rand(*shape, lo=-1.0, hi=1.0):
    return RNG.uniform(lo, hi, size=shape).astype(np.float32)


BN = dict(gamma=rand(C, lo=0.5, hi=2.0), beta=rand(C), mean=rand(C), var=rand(C, lo=0.01, hi=3.0))


def ops(graph_def):
    return collections.Counter(n.op for n in graph_def.node)


def check_prepared(graph_def, shape, output="output"):
    prepared = prepare(graph_def, ["input"], [output])
    x = rand(*shape)
    ref = run_graph(graph_def, [output + ":0"], {"input:0": x})[0]
    got = run_graph(prepared, [output + ":0"], {"input:0": x})[0]
    assert np.abs(ref - got).max() <= TOL * max(1.0, np.abs(ref).max())
    return prepared


def build(fn, shape=(1, 7, 7, 3)):
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, shape, name="input")
        tf.identity(fn(x), name="output")
    return g.as_graph_def()


def conv(x, out=C):
    return tf.nn.conv2d(x, tf.constant(rand(3, 3, int(x.shape[-1]), out)), [1, 1, 1, 1], "SAME")


def assert_folded(prepared, weight_op="Conv2D"):
    counts = ops(prepared)
    assert counts[weight_op] == 1 and counts["BiasAdd"] == 1
    for op in ("Mul", "Add", "AddV2", "Rsqrt", "Sub", "FusedBatchNorm", "FusedBatchNormV3",
               "BatchNormWithGlobalNormalization"):
        assert counts[op] == 0, "%s left after folding: %s" % (op, dict(counts))


def test_fused_batch_norm_v3():
    def fn(x):
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(conv(x), BN["gamma"], BN["beta"], BN["mean"],
                                                   BN["var"], epsilon=1e-3, is_training=False)
        return y
    assert_folded(check_prepared(build(fn), [1, 7, 7, 3]))


def test_fused_batch_norm_v1_after_bias_add():
    def fn(x):
        y = tf.nn.bias_add(conv(x), tf.constant(rand(C)))
        return tf.raw_ops.FusedBatchNorm(x=y, scale=BN["gamma"], offset=BN["beta"], mean=BN["mean"],
                                         variance=BN["var"], epsilon=1e-3, is_training=False)[0]
    assert_folded(check_prepared(build(fn), [1, 7, 7, 3]))


def test_decomposed_keras_form():
    # What tf.nn.batch_normalization (Keras 3) computes: x * inv + (beta - mean * inv).
    def fn(x):
        inv = tf.math.rsqrt(tf.constant(BN["var"]) + 1e-3) * BN["gamma"]
        return conv(x) * inv + (BN["beta"] - BN["mean"] * inv)
    assert_folded(check_prepared(build(fn), [1, 7, 7, 3]))


def test_decomposed_form_after_matmul():
    def fn(x):
        y = tf.matmul(x, tf.constant(rand(5, C)))
        inv = tf.math.rsqrt(tf.constant(BN["var"]) + 1e-3)
        return tf.add(tf.multiply(inv, y), BN["beta"] - BN["mean"] * inv)  # constant first
    assert_folded(check_prepared(build(fn, (3, 5)), [3, 5]), "MatMul")


def test_depthwise_batch_norm():
    def fn(x):
        y = tf.nn.depthwise_conv2d(x, tf.constant(rand(3, 3, 3, 2)), [1, 1, 1, 1], "SAME")
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(y, BN["gamma"], BN["beta"], BN["mean"], BN["var"],
                                                   is_training=False)
        return y
    assert_folded(check_prepared(build(fn), [1, 7, 7, 3]), "DepthwiseConv2dNative")


def _legacy_bn_graph(scale_after_normalization):
    """Conv2D -> BatchNormWithGlobalNormalization, as in the 2015 Inception graph (producer 8)."""
    g = graph_pb2.GraphDef()
    g.versions.producer = 8
    x = create_node("Placeholder", "input", [])
    set_attr_dtype(x, "dtype", tf.float32)
    w = make_const("w", rand(3, 3, 3, C))
    c = create_node("Conv2D", "conv", ["input", "w"])
    set_attr_dtype(c, "T", tf.float32)
    c.attr["strides"].list.i.extend([1, 1, 1, 1])
    c.attr["padding"].s = b"SAME"
    consts = [make_const(k, BN[k]) for k in ("mean", "var", "beta", "gamma")]
    bn = create_node("BatchNormWithGlobalNormalization", "output",
                     ["conv", "mean", "var", "beta", "gamma"])
    set_attr_dtype(bn, "T", tf.float32)
    set_attr_float(bn, "variance_epsilon", 1e-3)
    set_attr_bool(bn, "scale_after_normalization", scale_after_normalization)
    g.node.extend([x, w, c] + consts + [bn])
    return g


@pytest.mark.parametrize("scale_after", [True, False])
def test_batch_norm_with_global_normalization(scale_after):
    assert_folded(check_prepared(_legacy_bn_graph(scale_after), [1, 7, 7, 3]))


def test_batch_norm_not_after_conv_stays_float():
    def fn(x):
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(tf.nn.relu(x), BN["gamma"][:3], BN["beta"][:3],
                                                   BN["mean"][:3], BN["var"][:3], is_training=False)
        return y
    prepared = check_prepared(build(fn), [1, 7, 7, 3])
    assert ops(prepared)["Mul"] == 1 and ops(prepared)["AddV2"] == 1


def test_identity_check_numerics_and_constant_subgraphs_are_removed():
    def fn(x):
        w = tf.identity(tf.constant(rand(3, 3, 3, C)) * 2.0)
        y = tf.debugging.check_numerics(tf.nn.conv2d(x, w, [1, 1, 1, 1], "SAME"), "bad")
        return tf.identity(tf.identity(y))
    prepared = check_prepared(build(fn), [1, 7, 7, 3])
    counts = ops(prepared)
    assert counts["CheckNumerics"] == 0 and counts["Mul"] == 0
    assert counts["Identity"] == 1  # the output keeps its name


def test_tf2_frozen_keras_model_folds_completely():
    """A TF2 frozen graph: weights behind Identity nodes with control edges to a NoOp."""
    model = tf.keras.Sequential([
        tf.keras.Input([8, 8, 3]),
        tf.keras.layers.Conv2D(4, 3, use_bias=False),
        tf.keras.layers.BatchNormalization(),
        tf.keras.layers.ReLU(),
        tf.keras.layers.GlobalAveragePooling2D(),
        tf.keras.layers.Dense(3, activation="softmax"),
    ])
    bn = model.layers[1]
    bn.set_weights([rand(4, lo=0.5, hi=2), rand(4), rand(4), rand(4, lo=0.1, hi=2)])
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([None, 8, 8, 3], tf.float32, name="input"))
    frozen = convert_variables_to_constants_v2(fn).graph.as_graph_def()
    output = [n.name for n in frozen.node if n.op == "Softmax"][0]
    prepared = check_prepared(frozen, [2, 8, 8, 3], output)
    counts = ops(prepared)
    assert counts["Conv2D"] == 1 and counts["BiasAdd"] == 2 and counts["Rsqrt"] == 0
    assert counts["NoOp"] == 0 and counts["Identity"] == 0
    quantized = qg.quantize(frozen, [output], mode="eightbit", target="reference")
    assert ops(quantized)["QuantizedConv2D"] == 1 and ops(quantized)["QuantizedMatMul"] == 1
