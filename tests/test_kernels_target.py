"""--target=kernels: the lowering to the project's Qg ops (kernels/OPS.md), and the lowered graph
run against float once the op library is built."""
import collections

import numpy as np
import pytest

from quantize_graph.pipeline import Options, run_pipeline
from tests.graphs import residual_graph


def _calibration(seed=1, count=16):
    return np.random.default_rng(seed).uniform(-1, 1, [count, 12, 12, 3]).astype(np.float32)


def _lowered():
    graph_def, inp, out = residual_graph()
    options = Options(target="kernels", calibration_inputs={inp: _calibration()})
    return graph_def, run_pipeline(graph_def, [out], options, [inp])


def test_every_pattern_is_lowered_to_qg_ops():
    _, (q, report) = _lowered()
    ops = collections.Counter(n.op for n in q.node if n.op != "Const")
    assert ops == {"Placeholder": 1, "QgQuantize": 1, "QgQuantizedConv2D": 2,
                   "QgQuantizedDepthwiseConv2D": 1, "QgQuantizedMaxPool": 1, "QgQuantizedAvgPool": 1,
                   "QgQuantizedConcat": 1, "Reshape": 1, "QgQuantizedMatMul": 1, "Softmax": 1}
    # Only the softmax stays float: the signed image enters int8 (affine quint8), the residual
    # Add is the second conv's summand, the logits come out of the MatMul as float.
    assert set(report.stayed_float) == {"softmax"}
    nodes = {n.name: n for n in q.node}
    res = next(n for n in q.node if n.op == "QgQuantizedConv2D" and n.attr["num_summand"].i == 1)
    assert res.attr["activation"].s == b"relu" and len(res.input) == 11
    assert nodes["logits"].op == "QgQuantizedMatMul" and nodes["logits"].attr["out_type"].type == 1


def test_ranges_hold_zero_exactly():
    from quantize_graph.lowering.kernels import affine_range
    for lo, hi in [(-1.0, 1.0), (-0.3, 5.0), (0.0, 6.0), (0.2, 0.9), (-2.0, -0.5)]:
        a, b = affine_range(lo, hi)
        scale = (b - a) / 255
        assert a <= min(lo, 0) + scale and b >= max(hi, 0) - scale
        assert abs(-a / scale - round(-a / scale)) < 1e-6


def test_weights_are_symmetric_per_channel_with_8_bits():
    from quantize_graph.weight_schemes import symmetric_codes
    w = np.random.default_rng(0).normal(0, 1, [3, 3, 4, 5]).astype(np.float32)
    w[..., 2] *= 100
    codes, scales = symmetric_codes(w, 3)
    assert codes.dtype == np.int8 and np.abs(codes).max() == 127 and scales.shape == (5,)
    assert np.abs(codes * scales - w).max(axis=(0, 1, 2)).max() <= scales.max() * 1.0 + 1e-6
    assert np.all(np.abs(codes * scales - w) <= scales + 1e-6)


def test_conv_weight_pairs_fit_the_byte_kernel():
    """Adjacent same-sign codes along K (the kernel's (kh, kw, C) order) sum to at most 128, so
    the AVX2 byte kernel runs exactly; an odd C makes pairs straddle two taps."""
    from quantize_graph.weight_schemes import symmetric_codes
    rng = np.random.default_rng(1)
    for cin in (4, 3):
        w = rng.normal(0, 1, [3, 3, cin, 6]).astype(np.float32)
        w[0, 0, :2, 1] = 5.0   # a same-sign pair as big as the channel's largest weight
        codes, scales = symmetric_codes(w, 3, pair_limited=True)
        k = codes.reshape(-1, 6).astype(np.int32)
        k = np.concatenate([k, np.zeros((len(k) % 2, 6), np.int32)])
        even, odd = k[0::2], k[1::2]
        same = np.sign(even) == np.sign(odd)
        assert np.abs(np.where(same, np.abs(even) + np.abs(odd), 0)).max() <= 128
        assert np.all(np.abs(codes * scales - w) <= scales + 1e-6)
        assert np.abs(codes[..., 1]).max() <= 64   # that channel gave up one bit


def test_runs_close_to_float():
    kernels = pytest.importorskip("quantize_graph.kernels", reason="the Qg op library is not in this tree")
    if not kernels.is_built():
        pytest.skip("the Qg op library is not built (pip install -e . builds it)")
    from quantize_graph.runner import run_graph
    graph_def, (q, _) = _lowered()
    x = _calibration(seed=2, count=8)
    [want] = run_graph(graph_def, ["logits:0"], {"input:0": x})
    [got] = run_graph(q, ["logits:0"], {"input:0": x})
    assert np.abs(got - want).max() <= 0.05 * np.abs(want).max()


def test_an_add_of_two_conv_branches_is_fused_once():
    """A projection shortcut: Add(conv_a + bias, conv_b + bias) + Relu. One branch takes the
    Add as its summand; the other is lowered alone and feeds it."""
    import tensorflow as tf
    rng = np.random.default_rng(3)
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 12, 12, 3], name="input")
        branches = []
        for i in range(2):
            w = tf.constant(rng.normal(0, .3, [1 + 2 * i, 1 + 2 * i, 3, 4]).astype(np.float32))
            b = tf.constant(rng.normal(0, .1, 4).astype(np.float32))
            branches.append(tf.nn.bias_add(tf.nn.conv2d(x, w, 1, "SAME"), b))
        tf.nn.relu(tf.add(branches[0], branches[1]), name="out")
    options = Options(target="kernels", calibration_inputs={"input": _calibration()})
    q, report = run_pipeline(g.as_graph_def(), ["out"], options, ["input"])
    convs = [n for n in q.node if n.op == "QgQuantizedConv2D"]
    assert len(convs) == 2 and sorted(n.attr["num_summand"].i for n in convs) == [0, 1]
    assert not {"Add", "BiasAdd", "Conv2D", "Relu"} & {n.op for n in q.node}
    assert report.stayed_float == {}


def test_zero_pad_before_valid_stride2_conv_folds_into_same():
    # MobileNet-v2's stride-2 blocks (Keras: ZeroPadding2D + VALID conv): the Pad folds into the
    # Qg op as SAME padding (the kernels pad with the zero point, real 0), so no float Pad, no
    # QgDequantize / QgQuantize around it; a Pad unlike SAME's stays.
    import tensorflow as tf
    from quantize_graph.runner import run_graph
    rng = np.random.default_rng(4)

    def graph(pads):
        g = tf.Graph()
        with g.as_default():
            x = tf.compat.v1.placeholder(tf.float32, [None, 9, 9, 8], name="input")
            w0 = tf.constant(rng.normal(0, .3, [1, 1, 8, 8]).astype(np.float32))
            y = tf.nn.relu6(tf.nn.conv2d(x, w0, 1, "VALID"))
            y = tf.pad(y, [[0, 0], pads, pads, [0, 0]])
            wd = tf.constant(rng.normal(0, .3, [3, 3, 8, 1]).astype(np.float32))
            y = tf.nn.relu6(tf.nn.depthwise_conv2d(y, wd, [1, 2, 2, 1], "VALID"))
            w1 = tf.constant(rng.normal(0, .3, [3, 3, 8, 4]).astype(np.float32))
            y = tf.pad(y, [[0, 0], [1, 1], [1, 1], [0, 0]])
            tf.nn.relu(tf.nn.conv2d(y, w1, 2, "VALID"), name="out")
        return g.as_graph_def()

    calibration = rng.uniform(-1, 1, [16, 9, 9, 8]).astype(np.float32)
    graph_def = graph([1, 1])  # 9 -> SAME with k3 s2 adds (1, 1); 5 -> (1, 1) too
    q, _ = run_pipeline(graph_def, ["out"], Options(target="kernels",
                                                     calibration_inputs={"input": calibration}),
                        ["input"])
    ops = collections.Counter(n.op for n in q.node if n.op != "Const")
    assert ops["Pad"] == 0 and ops["QgQuantize"] == 1 and ops["QgDequantize"] == 1, ops
    assert all(n.attr["padding"].s == b"SAME" for n in q.node
               if n.op in ("QgQuantizedDepthwiseConv2D", "QgQuantizedConv2D") and
               n.attr["strides"].list.i[1] == 2)
    kernels = pytest.importorskip("quantize_graph.kernels")
    if kernels.is_built():
        x = rng.uniform(-1, 1, [4, 9, 9, 8]).astype(np.float32)
        [want] = run_graph(graph_def, ["out:0"], {"input:0": x})
        [got] = run_graph(q, ["out:0"], {"input:0": x})
        assert np.abs(got - want).max() <= 0.05 * np.abs(want).max()
    q, _ = run_pipeline(graph([0, 1]), ["out"], Options(
        target="kernels", calibration_inputs={"input": calibration}), ["input"])
    # (0, 1) on 9 is not SAME's (1, 1); the second conv then reads 4x4, where SAME adds (0, 1)
    assert collections.Counter(n.op for n in q.node)["Pad"] == 2
