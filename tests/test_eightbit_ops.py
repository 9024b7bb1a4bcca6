"""Each quantizable op, built in a small float graph, against its eightbit (reference) graph.

Tolerance: the max abs error relative to the float output's range (max - min). One 8-bit
step is 1/255 = 0.4% of a range; single ops must stay within 2%, chains of ops within 5%.
"""
import collections

import numpy as np
import pytest
import tensorflow as tf

import quantize_graph as qg
from quantize_graph.passes.strip_redundant import count_cancelling_pairs
from quantize_graph.runner import run_graph

SINGLE_OP_TOL = 0.02
CHAIN_TOL = 0.05
RNG = np.random.RandomState(42)


def build(fn, input_shape, input_dtype=tf.float32):
    """Builds fn(input) in a fresh graph; the result tensor is named `output` via Identity."""
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(input_dtype, input_shape, name="input")
        outs = fn(x)
        if not isinstance(outs, (list, tuple)):
            outs = [outs]
        names = []
        for i, o in enumerate(outs):
            name = "output" if len(outs) == 1 else "output_%d" % i
            tf.identity(o, name=name)
            names.append(name)
    return g.as_graph_def(), names


def const(shape, scale=0.5, seed=0):
    return tf.constant(np.random.RandomState(seed).randn(*shape).astype(np.float32) * scale)


def ops(graph_def):
    return collections.Counter(n.op for n in graph_def.node)


def relative_error(graph_def, quantized, outputs, x):
    ref = run_graph(graph_def, [o + ":0" for o in outputs], {"input:0": x})
    got = run_graph(quantized, [o + ":0" for o in outputs], {"input:0": x})
    errs = []
    for r, q in zip(ref, got):
        span = float(r.max() - r.min()) or 1.0
        errs.append(float(np.abs(r.astype(np.float64) - q).max()) / span)
    return max(errs)


def check(fn, shape, tol, **options):
    graph_def, outputs = build(fn, shape)
    quantized = qg.quantize(graph_def, outputs, mode="eightbit", **options)
    x = RNG.uniform(-1, 1, size=shape).astype(np.float32)
    err = relative_error(graph_def, quantized, outputs, x)
    assert err <= tol, "error %.4f of the output range exceeds %.2f" % (err, tol)
    return quantized


def test_conv_same_padding_odd_kernel():
    # 4x4 kernel with SAME padding pads unevenly (1 before, 2 after).
    q = check(lambda x: tf.nn.conv2d(x, const([4, 4, 3, 5]), [1, 1, 1, 1], "SAME"), [1, 9, 9, 3],
              SINGLE_OP_TOL)
    assert ops(q)["QuantizedConv2D"] == 1 and ops(q)["Conv2D"] == 0


def test_conv_stride2_same():
    q = check(lambda x: tf.nn.conv2d(x, const([3, 3, 3, 4]), [1, 2, 2, 1], "SAME"), [2, 10, 10, 3],
              SINGLE_OP_TOL)
    assert ops(q)["QuantizedConv2D"] == 1


def test_conv_valid():
    check(lambda x: tf.nn.conv2d(x, const([3, 3, 2, 4]), [1, 1, 1, 1], "VALID"), [1, 7, 7, 2],
          SINGLE_OP_TOL)


def test_dilated_conv_stays_float():
    graph_def, outputs = build(
        lambda x: tf.nn.conv2d(x, const([3, 3, 2, 4]), [1, 1, 1, 1], "SAME", dilations=2), [1, 9, 9, 2])
    q = qg.quantize(graph_def, outputs, mode="eightbit")
    assert ops(q)["Conv2D"] == 1 and ops(q)["QuantizedConv2D"] == 0


def test_matmul():
    q = check(lambda x: tf.matmul(x, const([6, 3])), [4, 6], SINGLE_OP_TOL)
    assert ops(q)["QuantizedMatMul"] == 1


def test_matmul_transpose_b():
    check(lambda x: tf.matmul(x, const([3, 6]), transpose_b=True), [4, 6], SINGLE_OP_TOL)


def test_tiny_matmul_with_constant_input():
    # Every input value equal: the measured range has min == max.
    graph_def, outputs = build(lambda x: tf.matmul(x, const([2, 2])), [1, 2])
    quantized = qg.quantize(graph_def, outputs, mode="eightbit")
    x = np.full([1, 2], 0.5, np.float32)
    ref = run_graph(graph_def, ["output:0"], {"input:0": x})[0]
    got = run_graph(quantized, ["output:0"], {"input:0": x})[0]
    np.testing.assert_allclose(got, ref, atol=0.02 * max(1.0, np.abs(ref).max()))


def test_bias_add():
    q = check(lambda x: tf.nn.bias_add(x, const([5], 1.0)), [2, 4, 4, 5], SINGLE_OP_TOL)
    assert ops(q)["QuantizedBiasAdd"] == 1


@pytest.mark.parametrize("act,qop", [(tf.nn.relu, "QuantizedRelu"), (tf.nn.relu6, "QuantizedRelu6")])
def test_activations(act, qop):
    q = check(lambda x: act(x * 8.0), [2, 5, 5, 3], SINGLE_OP_TOL)
    assert ops(q)[qop] == 1


@pytest.mark.parametrize("pool,qop", [(tf.nn.max_pool2d, "QuantizedMaxPool"),
                                      (tf.nn.avg_pool2d, "QuantizedAvgPool")])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_pools(pool, qop, padding):
    q = check(lambda x: pool(x, 3, 2, padding), [1, 9, 9, 4], SINGLE_OP_TOL)
    assert ops(q)[qop] == 1


def _concat_v1(values, axis):
    return tf.raw_ops.Concat(concat_dim=axis, values=values)


@pytest.mark.parametrize("concat,op", [(lambda v, a: tf.concat(v, a), "ConcatV2"),
                                       (_concat_v1, "Concat")])
def test_concat_inputs_with_different_ranges(concat, op):
    def fn(x):
        return concat([tf.nn.relu(x), tf.nn.relu(x * 4.0 + 1.0)], 3)
    graph_def, outputs = build(fn, [1, 4, 4, 2])
    assert ops(graph_def)[op] == 1
    q = check(fn, [1, 4, 4, 2], SINGLE_OP_TOL)
    assert ops(q)["QuantizedConcat"] == 1


def test_reshape():
    q = check(lambda x: tf.reshape(tf.nn.relu(x), [2, -1]), [2, 3, 3, 2], SINGLE_OP_TOL)
    assert ops(q)["QuantizedReshape"] == 1


def test_identity_chain_is_stripped():
    q = check(lambda x: tf.identity(tf.identity(tf.nn.relu(tf.identity(x)))), [1, 4, 4, 2],
              SINGLE_OP_TOL)
    # Only the user's output Identity survives.
    assert ops(q)["Identity"] == 1


def test_conv_relu_pool_conv_chain_stays_8bit():
    def fn(x):
        y = tf.nn.relu(tf.nn.conv2d(x, const([3, 3, 3, 8], seed=1), [1, 1, 1, 1], "SAME"))
        y = tf.nn.max_pool2d(y, 2, 2, "VALID")
        return tf.nn.conv2d(y, const([1, 1, 8, 4], seed=2), [1, 1, 1, 1], "VALID")
    q = check(fn, [1, 8, 8, 3], CHAIN_TOL)
    counts = ops(q)
    assert count_cancelling_pairs(q) == 0
    # One QuantizeV2 for the graph input, and the last conv's int32 result turned to float
    # exactly (Bitcast, Cast, Mul): 8 bits in between, no Dequantize.
    assert counts["QuantizeV2"] == 1 and counts["Dequantize"] == 0 and counts["Bitcast"] == 1
    assert counts["QuantizedConv2D"] == 2 and counts["QuantizedRelu"] == 1
    assert counts["QuantizedMaxPool"] == 1


def test_without_strip_redundant_the_pairs_remain():
    graph_def, outputs = build(lambda x: tf.nn.max_pool2d(tf.nn.relu(x), 2, 2, "VALID"), [1, 4, 4, 2])
    q = qg.quantize(graph_def, outputs, mode="eightbit", strip_redundant_quantization=False)
    assert count_cancelling_pairs(q) == 1


def test_multiple_outputs_split_concat():
    def fn(x):
        a, b = tf.split(tf.nn.relu(x), 2, axis=3)
        return [tf.concat([b, a], 3), tf.nn.max_pool2d(a, 2, 2, "VALID")]
    q = check(fn, [1, 4, 4, 4], SINGLE_OP_TOL)
    assert ops(q)["Split"] == 1 and ops(q)["QuantizedConcat"] == 1


def test_int32_concat_and_reshape_untouched():
    def fn(x):
        shape = tf.concat([tf.constant([2], tf.int32), tf.constant([-1], tf.int32)], 0)
        ints = tf.concat([tf.reshape(x, shape), tf.reshape(x, shape)], 1)
        return ints
    graph_def, outputs = build(fn, [2, 3], tf.int32)
    q = qg.quantize(graph_def, outputs, mode="eightbit")
    assert ops(q)["QuantizedConcat"] == 0 and ops(q)["QuantizedReshape"] == 0
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    np.testing.assert_array_equal(run_graph(q, ["output:0"], {"input:0": x})[0],
                                  run_graph(graph_def, ["output:0"], {"input:0": x})[0])


def test_fallback_range_leaves_no_requantization_range():
    def fn(x):
        return tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, const([3, 3, 3, 4]), [1, 1, 1, 1], "SAME"),
                                         const([4])))
    graph_def, outputs = build(fn, [1, 6, 6, 3])
    q = qg.quantize(graph_def, outputs, mode="eightbit", fallback_range=(-8.0, 8.0))
    assert ops(q)["RequantizationRange"] == 0 and ops(q)["Min"] == 0
    x = RNG.uniform(-1, 1, [1, 6, 6, 3]).astype(np.float32)
    assert relative_error(graph_def, q, outputs, x) <= CHAIN_TOL


def test_fake_quant_ranges_leave_no_requantization_range():
    def fn(x):
        x = tf.quantization.fake_quant_with_min_max_vars(x, -1.0, 1.0)
        y = tf.nn.conv2d(x, const([3, 3, 3, 4]), [1, 1, 1, 1], "SAME")
        y = tf.quantization.fake_quant_with_min_max_vars(y, -6.0, 6.0)
        y = tf.matmul(tf.reshape(y, [1, -1]), const([144, 5]))
        return tf.quantization.fake_quant_with_min_max_vars(y, -20.0, 20.0)
    graph_def, outputs = build(fn, [1, 6, 6, 3])
    q = qg.quantize(graph_def, outputs, mode="eightbit")
    assert ops(q)["RequantizationRange"] == 0
    assert ops(q)["QuantizedConv2D"] == 1 and ops(q)["QuantizedMatMul"] == 1
    x = RNG.uniform(-1, 1, [1, 6, 6, 3]).astype(np.float32)
    assert relative_error(graph_def, q, outputs, x) <= CHAIN_TOL


def test_quantized_input_makes_a_quint8_placeholder():
    def fn(x):
        return tf.nn.max_pool2d(tf.nn.relu(tf.nn.conv2d(x, const([3, 3, 3, 4]), [1, 1, 1, 1], "SAME")),
                                2, 2, "VALID")
    graph_def, outputs = build(fn, [1, 6, 6, 3])
    q = qg.quantize(graph_def, outputs, mode="eightbit", quantized_input_range=(0.0, 1.0))
    placeholder = [n for n in q.node if n.op == "Placeholder"][0]
    assert placeholder.name == "input" and placeholder.attr["dtype"].type == tf.quint8.as_datatype_enum
    assert count_cancelling_pairs(q) == 0
    codes = RNG.randint(0, 256, [1, 6, 6, 3]).astype(np.uint8)
    ref = run_graph(graph_def, ["output:0"], {"input:0": codes.astype(np.float32) / 255.0})[0]
    got = run_graph(q, ["output:0"], {"input:0": codes})[0]
    assert np.abs(ref - got).max() <= CHAIN_TOL * (ref.max() - ref.min())


def test_excluded_ops_and_nodes_stay_float():
    def fn(x):
        return tf.nn.relu(tf.nn.conv2d(x, const([3, 3, 3, 4]), [1, 1, 1, 1], "SAME", name="conv"),
                          name="act")
    graph_def, outputs = build(fn, [1, 6, 6, 3])
    q = qg.quantize(graph_def, outputs, mode="eightbit", excluded_ops=["Relu"])
    assert ops(q)["Relu"] == 1 and ops(q)["QuantizedConv2D"] == 1
    q = qg.quantize(graph_def, outputs, mode="eightbit", excluded_nodes=["conv"])
    assert ops(q)["Conv2D"] == 1 and ops(q)["QuantizedRelu"] == 1


def test_concat_with_negative_axis():
    # Keras' Concatenate uses axis -1, which QuantizedConcat rejects as such.
    q = check(lambda x: tf.concat([tf.nn.relu(x), tf.nn.relu(-x)], -1), [1, 4, 4, 2], SINGLE_OP_TOL)
    assert ops(q)["QuantizedConcat"] == 1
