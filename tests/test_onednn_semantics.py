"""Pins the semantics of stock TF's fused oneDNN int8 ops (see docs/onednn_notes.md).

oneDNN's custom ops are read from TF_ENABLE_ONEDNN_OPTS when TensorFlow is imported, and on CPUs
without AVX-512 VNNI it defaults to off. The checks therefore run in a subprocess (this file run
as a script) with TF_ENABLE_ONEDNN_OPTS=1; it prints one JSON line per check, so a crash in one
check keeps the results of the ones before it. Every test is skipped when the probe (a tiny fused
conv) does not run the _Mkl kernel.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve()


def _run_worker(onednn, only=None, timeout=120):
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="2")
    args = [sys.executable, str(HERE)] + ([only] if only else [])
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            results[rec.pop("check")] = rec
    return results, proc


@pytest.fixture(scope="module")
def onednn():
    results, proc = _run_worker("1")
    probe = results.get("probe")
    if not probe or not probe.get("ok"):
        pytest.skip("fused oneDNN int8 ops do not run in this TensorFlow: %s"
                    % (probe or proc.stderr[-300:]))
    return results, proc


def _get(onednn, name):
    results, proc = onednn
    if name not in results:
        pytest.fail("check %r produced no result (worker rc=%s): %s"
                    % (name, proc.returncode, proc.stderr[-500:]))
    return results[name]


def test_probe_rewrites_to_mkl_kernel(onednn):
    r = _get(onednn, "probe")
    assert "_MklQuantizedConv2DWithBiasAndReluAndRequantize" in r["ops"]


def test_probe_without_onednn_reports_missing_output():
    results, proc = _run_worker("0", only="probe")
    if "probe" not in results:
        pytest.fail("probe worker died: " + proc.stderr[-500:])
    r = results["probe"]
    assert not r["ok"]
    assert "Missing 0-th output" in r["error"]


def test_conv_per_channel_float_bias_relu_requantize(onednn):
    # 7-bit weights (|q| <= 63): no int16 saturation, so the exact integer model must hold.
    assert _get(onednn, "conv_perchannel_7bit")["maxdiff"] <= 1


def test_conv_qint32_bias_scale_is_input_times_filter_scale(onednn):
    assert _get(onednn, "conv_qint32_bias")["maxdiff"] <= 1


def test_conv_8bit_weights_match_exact_or_pairwise_saturation(onednn):
    # On AVX2 (no VNNI) oneDNN uses vpmaddubsw: adjacent input-channel pairs saturate to int16.
    r = _get(onednn, "conv_8bit_saturation")
    assert min(r["maxdiff_exact"], r["maxdiff_saturating"]) == 0


def test_conv_relu6_by_output_range(onednn):
    assert _get(onednn, "conv_relu6")["maxdiff"] <= 1


def test_conv_quint8_input_ignores_negative_min(onednn):
    # quint8 input is SCALED: scale = max(|min|,|max|)/255, zero point 0.
    assert _get(onednn, "conv_negative_min_input")["maxdiff"] <= 1


def test_conv_qint8_output_symmetric(onednn):
    assert _get(onednn, "conv_qint8_out")["maxdiff"] <= 1


def test_conv_sum_relu_summand_own_range(onednn):
    assert _get(onednn, "conv_sum")["maxdiff"] <= 1


def test_depthwise_per_channel(onednn):
    assert _get(onednn, "depthwise")["maxdiff"] <= 1


def test_matmul_requantize_and_dequantize(onednn):
    r = _get(onednn, "matmul")
    assert r["maxdiff_requantize"] <= 1
    assert r["max_rel_err_dequantize"] < 1e-4


def test_maxpool_avgpool(onednn):
    r = _get(onednn, "pools")
    assert r["maxpool_maxdiff"] == 0
    assert r["avgpool_maxdiff"] <= 0.5 + 1e-6
    assert r["ops"] == ["_MklQuantizedAvgPool", "_MklQuantizedMaxPool"]


def test_concat_with_differing_ranges(onednn):
    r = _get(onednn, "concat")
    assert r["out_range"] == [0.0, 6.0]
    assert r["maxdiff_steps"] <= 1


def test_quantizev2_scaled_half_to_even_runs_mkl(onednn):
    r = _get(onednn, "quantizev2")
    assert r["maxdiff"] == 0
    assert r["ops"] == ["_MklQuantizeV2"]


# --------------------------------------------------------------------------------------------
# Worker: runs in a subprocess with TF_ENABLE_ONEDNN_OPTS set by the parent.


def _worker(only=None):  # pragma: no cover - runs in a subprocess
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.framework import attr_value_pb2

    tf1 = tf.compat.v1
    tf1.disable_eager_execution()
    R = tf.raw_ops
    rng = np.random.default_rng(0)

    def emit(check, **kw):
        print(json.dumps(dict(check=check, **kw)), flush=True)

    def run(build, feeds=None, want_ops=False):
        g = tf.Graph()
        with g.as_default():
            out, feed = build()
            cfg = tf1.ConfigProto(intra_op_parallelism_threads=2, inter_op_parallelism_threads=2)
            with tf1.Session(graph=g, config=cfg) as s:
                md = tf1.RunMetadata()
                res = s.run(out, feed, options=tf1.RunOptions(output_partition_graphs=True),
                            run_metadata=md)
        ops = sorted({n.op for pg in md.partition_graphs for n in pg.node if n.op.startswith("_Mkl")})
        return (res, ops) if want_ops else res

    def im2col(x, k):  # SAME padding, stride 1
        n, h, w, c = x.shape
        p = k // 2
        xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
        cols = np.zeros((n, h, w, k, k, c), np.int64)
        for i in range(k):
            for j in range(k):
                cols[:, :, :, i, j, :] = xp[:, i:i + h, j:j + w, :]
        return cols

    def conv_acc(xq, wq, saturate=False):
        cols = im2col(xq.astype(np.int64), wq.shape[0])
        w = wq.astype(np.int64)
        if not saturate:
            return np.einsum("nhwijc,ijco->nhwo", cols, w)
        prod = np.einsum("nhwijc,ijco->nhwijco", cols, w)
        s = prod.reshape(prod.shape[:5] + (w.shape[2] // 2, 2, w.shape[3])).sum(6)
        return np.clip(s, -32768, 32767).sum((3, 4, 5))

    def q_out(y, hi, signed=False):
        lim = 127 if signed else 255
        return np.clip(np.round(y * lim / hi), -128 if signed else 0, lim)

    def fused_conv(op, xq, wq, fmax, bias, in_range, out_range, out_type=tf.quint8, summand=None):
        def build():
            x = tf1.placeholder(tf.quint8, xq.shape)
            kw = dict(input=x, filter=tf.constant(wq, tf.qint8),
                      bias=tf.constant(bias[0], bias[1]) if isinstance(bias, tuple) else tf.constant(bias),
                      min_input=in_range[0], max_input=in_range[1],
                      min_filter=tf.constant(-fmax), max_filter=tf.constant(fmax),
                      min_freezed_output=out_range[0], max_freezed_output=out_range[1],
                      strides=[1, 1, 1, 1], padding="SAME", out_type=out_type)
            feed = {x: xq}
            if summand is not None:
                sf, smax = summand
                sp = tf1.placeholder(tf.float32, sf.shape)
                feed[sp] = sf
                # the summand must be produced in-graph and have no other consumer
                sq = R.QuantizeV2(input=sp, min_range=tf.constant(0.0), max_range=tf.constant(smax),
                                  T=tf.quint8, mode="SCALED", round_mode="HALF_TO_EVEN")[0]
                kw.update(summand=sq, min_summand=0.0, max_summand=smax)
            return getattr(R, op)(**kw), feed
        return run(build, want_ops=True)

    # ---- probe
    if only in (None, "probe"):
        try:
            (y, _, _), ops = fused_conv("QuantizedConv2DWithBiasAndReluAndRequantize",
                                        np.full((1, 4, 4, 2), 255, np.uint8), np.ones((1, 1, 2, 2), np.int8),
                                        np.ones(2, np.float32), np.zeros(2, np.float32), (0.0, 1.0), (0.0, 2.0))
            ok = "_MklQuantizedConv2DWithBiasAndReluAndRequantize" in ops and int(y.ravel()[0]) == 2
            emit("probe", ok=ok, ops=ops, error="")
        except Exception as e:  # noqa: BLE001
            emit("probe", ok=False, ops=[], error=str(e).strip().splitlines()[-1][:300]
                 if "Missing" not in str(e) else "Missing 0-th output")
            return
    if only == "probe":
        return

    N, H, W, Ci, Co = 1, 9, 9, 16, 24
    xf = rng.uniform(0, 6, (N, H, W, Ci))
    xq = np.clip(np.round(xf * 255 / 6), 0, 255).astype(np.uint8)
    w = rng.standard_normal((3, 3, Ci, Co)) * 0.1 * rng.uniform(0.2, 3, Co)
    b = (rng.standard_normal(Co) * 0.5).astype(np.float32)
    m = np.abs(w).max((0, 1, 2))
    wq7 = np.round(w / m * 63).astype(np.int8)
    f7 = (m * 127 / 63).astype(np.float32)             # max_filter for 7-bit weights
    sx, sw7 = 6 / 255, f7.astype(np.float64) / 127
    A7 = conv_acc(xq, wq7)
    RELU = "QuantizedConv2DWithBiasAndReluAndRequantize"

    (y, mn, mx), _ = fused_conv(RELU, xq, wq7, f7, b, (0.0, 6.0), (0.0, 8.0))
    emit("conv_perchannel_7bit", maxdiff=float(np.abs(y - q_out(np.maximum(A7 * sx * sw7 + b, 0), 8)).max()),
         out_range=[float(mn), float(mx)])

    bq = np.round(b / (sx * sw7)).astype(np.int32)
    (y, _, _), _ = fused_conv(RELU, xq, wq7, f7, (bq, tf.qint32), (0.0, 6.0), (0.0, 8.0))
    emit("conv_qint32_bias", maxdiff=float(np.abs(y - q_out(np.maximum((A7 + bq) * sx * sw7, 0), 8)).max()))

    wq8 = np.round(w / m * 127).astype(np.int8)
    f8 = m.astype(np.float32)
    (y, _, _), _ = fused_conv(RELU, xq, wq8, f8, b, (0.0, 6.0), (0.0, 8.0))
    d = {}
    for name, sat in (("exact", False), ("saturating", True)):
        ref = q_out(np.maximum(conv_acc(xq, wq8, sat) * sx * f8 / 127 + b, 0), 8)
        d["maxdiff_" + name] = float(np.abs(y - ref).max())
    emit("conv_8bit_saturation", **d)

    (y, mn, mx), _ = fused_conv(RELU, xq, wq7, f7, b, (0.0, 6.0), (0.0, 1.5))
    emit("conv_relu6", maxdiff=float(np.abs(y - q_out(np.minimum(np.maximum(A7 * sx * sw7 + b, 0), 1.5), 1.5)).max()))

    (y, _, _), _ = fused_conv(RELU, xq, wq7, f7, b, (-8.0, 6.0), (0.0, 8.0))
    emit("conv_negative_min_input", maxdiff=float(np.abs(y - q_out(np.maximum(A7 * (8 / 255) * sw7 + b, 0), 8)).max()))

    (y, _, _), _ = fused_conv("QuantizedConv2DWithBiasAndRequantize", xq, wq7, f7, b, (0.0, 6.0), (-4.0, 4.0),
                              out_type=tf.qint8)
    emit("conv_qint8_out", maxdiff=float(np.abs(y - q_out(A7 * sx * sw7 + b, 4, signed=True)).max()))

    sf = rng.uniform(-1, 4, (N, H, W, Co)).astype(np.float32)
    (y, _, _), _ = fused_conv("QuantizedConv2DWithBiasSumAndReluAndRequantize", xq, wq7, f7, b, (0.0, 6.0),
                              (0.0, 8.0), summand=(sf, 4.0))
    sdq = np.clip(np.round(sf * 255 / 4), 0, 255) * 4 / 255
    emit("conv_sum", maxdiff=float(np.abs(y - q_out(np.maximum(A7 * sx * sw7 + b + sdq, 0), 8)).max()))

    # ---- depthwise, 8-bit per-channel weights (no saturation in the depthwise kernel)
    C = 16
    wd = rng.standard_normal((3, 3, C, 1)) * rng.uniform(0.2, 2, C)[None, None, :, None]
    md_ = np.abs(wd).max((0, 1, 3))
    wdq = np.round(wd / md_[None, None, :, None] * 127).astype(np.int8)
    bd = (rng.standard_normal(C) * 0.5).astype(np.float32)
    accd = np.einsum("nhwijc,ijc->nhwc", im2col(xq.astype(np.int64), 3), wdq[..., 0].astype(np.int64))

    def build_dw():
        x = tf1.placeholder(tf.quint8, xq.shape)
        o = R.QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize(
            input=x, filter=tf.constant(wdq, tf.qint8), bias=tf.constant(bd), min_input=0.0, max_input=6.0,
            min_filter=tf.constant(-md_.astype(np.float32)), max_filter=tf.constant(md_.astype(np.float32)),
            min_freezed_output=0.0, max_freezed_output=6.0, strides=[1, 1, 1, 1], padding="SAME",
            out_type=tf.quint8)
        return o[0], {x: xq}
    y = run(build_dw)
    emit("depthwise", maxdiff=float(np.abs(y - q_out(np.maximum(accd * sx * md_ / 127 + bd, 0), 6)).max()))

    # ---- matmul, per-tensor 7-bit weights, SCALED
    K, Nn = 256, 40
    a = np.clip(np.round(rng.uniform(0, 6, (4, K)) * 255 / 6), 0, 255).astype(np.uint8)
    bm_f = rng.standard_normal((K, Nn)) * 0.05
    mt = np.abs(bm_f).max()
    bmq = np.round(bm_f / mt * 63).astype(np.int8)
    m7 = np.float32(mt * 127 / 63)
    bias_m = (rng.standard_normal(Nn) * 0.5).astype(np.float32)
    accm = a.astype(np.int64) @ bmq.astype(np.int64)
    ref = accm * sx * float(m7) / 127 + bias_m

    def build_mm(op):
        def build():
            ap = tf1.placeholder(tf.quint8, a.shape)
            kw = dict(a=ap, b=tf.constant(bmq, tf.qint8), bias=tf.constant(bias_m), min_a=0.0, max_a=6.0,
                      min_b=tf.constant(-m7), max_b=tf.constant(m7), min_freezed_output=0.0,
                      max_freezed_output=8.0, input_quant_mode="SCALED")
            if op == "req":
                o = R.QuantizedMatMulWithBiasAndReluAndRequantize(Toutput=tf.quint8, **kw)[0]
            else:
                o = R.QuantizedMatMulWithBiasAndDequantize(Toutput=tf.float32, **kw)
            return o, {ap: a}
        return build
    yr = run(build_mm("req"))
    yd = run(build_mm("deq"))
    emit("matmul", maxdiff_requantize=float(np.abs(yr - q_out(np.maximum(ref, 0), 8)).max()),
         max_rel_err_dequantize=float(np.abs(yd - ref).max() / np.abs(ref).max()))

    # ---- pools
    xp_ = np.clip(np.round(rng.uniform(0, 6, (1, 11, 11, 16)) * 255 / 6), 0, 255).astype(np.uint8)

    def build_pools():
        x = tf1.placeholder(tf.quint8, xp_.shape)
        kw = dict(input=x, min_input=0.0, max_input=6.0, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding="SAME")
        return [R.QuantizedMaxPool(**kw)[0], R.QuantizedAvgPool(**kw)[0]], {x: xp_}
    (ymax, yavg), ops = run(build_pools, want_ops=True)
    with tf.Graph().as_default(), tf1.Session() as s:
        xf_ = tf.constant(xp_.astype(np.float32))
        rmax, ravg = s.run([tf.nn.max_pool2d(xf_, 3, 2, "SAME"), tf.nn.avg_pool2d(xf_, 3, 2, "SAME")])
    emit("pools", maxpool_maxdiff=float(np.abs(ymax - rmax).max()), avgpool_maxdiff=float(np.abs(yavg - ravg).max()),
         ops=ops)

    # ---- concat, differing ranges
    ca = np.round(rng.uniform(0, 3, (1, 5, 5, 8)) * 255 / 3).astype(np.uint8)
    cb = np.round(rng.uniform(0, 6, (1, 5, 5, 4)) * 255 / 6).astype(np.uint8)

    def build_concat():
        pa, pb = tf1.placeholder(tf.quint8, ca.shape), tf1.placeholder(tf.quint8, cb.shape)
        consts = [tf.constant(np.float32(v)) for v in (0.0, 0.0, 3.0, 6.0)]
        op = tf1.get_default_graph()._create_op_internal(
            "QuantizedConcatV2", [pa, pb, tf.constant(3)] + consts,
            attrs={"N": attr_value_pb2.AttrValue(i=2), "T": attr_value_pb2.AttrValue(type=tf.quint8.as_datatype_enum),
                   "Tidx": attr_value_pb2.AttrValue(type=tf.int32.as_datatype_enum)})
        return list(op.outputs), {pa: ca, pb: cb}
    y, mn, mx = run(build_concat)
    ref = np.concatenate([ca.astype(np.float64) * 3 / 255, cb.astype(np.float64) * 6 / 255], 3)
    emit("concat", out_range=[float(mn), float(mx)],
         maxdiff_steps=float(np.abs(y.astype(np.float64) * float(mx) / 255 - ref).max() / (float(mx) / 255)))

    # ---- QuantizeV2
    xq_f = rng.uniform(-1, 7, (1, 8, 8, 16)).astype(np.float32)

    def build_qv2():
        x = tf1.placeholder(tf.float32, xq_f.shape)
        return R.QuantizeV2(input=x, min_range=tf.constant(0.0), max_range=tf.constant(6.0), T=tf.quint8,
                            mode="SCALED", round_mode="HALF_TO_EVEN")[0], {x: xq_f}
    y, ops = run(build_qv2, want_ops=True)
    emit("quantizev2", maxdiff=float(np.abs(y - np.clip(np.round(xq_f * 255 / 6), 0, 255)).max()), ops=ops)


if __name__ == "__main__":
    _worker(sys.argv[1] if len(sys.argv) > 1 else None)
