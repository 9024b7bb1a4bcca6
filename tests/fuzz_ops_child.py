"""Runs seeded random calls of the Qg ops, one line per case, for tests/test_fuzz.py.

    python -m tests.fuzz_ops_child SEED FIRST COUNT

Prints "start I" before case I and "done I ok", "done I invalid <message>" or
"done I WRONG <why>" after it (flushed), so that the parent, running this in a subprocess,
knows which case crashed or hung the process and can go on from the next one. A case that
runs is compared with the NumPy reference (quantize_graph/kernels/numpy_reference.py) when its
window is small enough for the reference.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def _range(rng):
    """Mostly valid ranges, sometimes NaN, Inf, empty or reversed."""
    kind = rng.integers(40)
    if kind == 0:
        return float(rng.choice([np.nan, np.inf, -np.inf])), 1.0
    if kind == 1:
        return 1.0, 1.0
    if kind == 2:
        return 2.0, -1.0
    if kind == 3:
        return -1e38, 1e38
    lo = float(-rng.uniform(0, 3)) if rng.integers(2) else 0.0
    return lo, lo + float(rng.uniform(0.01, 6))


def _nhwc(rng, big):
    """A [1, h, w, 1] attribute, sometimes zero, huge or of the wrong length."""
    kind = rng.integers(30)
    if kind == 0:
        return [1, 0, 1, 1]
    if kind == 1:
        return [1, 1, 1]
    if kind == 2:
        return [2, 1, 1, 1]
    if kind == 3:
        return [1, big, big, 1]
    if kind == 4:
        return [1, int(rng.integers(1, big)), 1, 1]
    return [1, int(rng.integers(1, 4)), int(rng.integers(1, 4)), 1]


def make_case(rng):
    """(op name, kwargs for the op wrapper, reference function or None)."""
    op = ["conv", "depthwise", "matmul", "max_pool", "avg_pool", "concat", "quantize",
          "requantize"][int(rng.integers(8))]
    n, h, w = int(rng.integers(0, 3)), int(rng.integers(0, 9)), int(rng.integers(0, 9))
    c = int(rng.choice([0, 1, 3, 8, 17]))
    if rng.integers(20) == 0:
        c = int(rng.choice([1100, 7400]))  # deep reductions: GEMM K blocks, the int32 limit
        h = w = min(h, 4)
    x = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
    lo, hi = _range(rng)
    out_lo, out_hi = _range(rng)
    big = 2 ** int(rng.integers(20, 31))
    padding = str(rng.choice(["SAME", "VALID", "SAME", "VALID", "EXPLICIT"]))
    if op in ("conv", "depthwise"):
        kh, kw = int(rng.integers(0, 4)), int(rng.integers(1, 4))
        cin = c if rng.integers(10) else c + 1
        cout = int(rng.integers(0, 5))
        f = rng.integers(-128, 128, (kh, kw, cin, cout), dtype=np.int8)
        channels = cout if op == "conv" else cin * cout
        if rng.integers(10) == 0:
            channels += 1
        scale = rng.uniform(0.001, 0.1, channels).astype(np.float32)
        if rng.integers(15) == 0 and channels:
            scale[0] = np.nan
        args = dict(x=x, f=f, scale=scale, bias=rng.uniform(-1, 1, channels).astype(np.float32),
                    ranges=(lo, hi, out_lo, out_hi), strides=_nhwc(rng, big),
                    dilations=_nhwc(rng, big), padding=padding,
                    activation=str(rng.choice(["none", "relu", "relu6"])),
                    out_type=str(rng.choice(["quint8", "float"])))
        return op, args
    if op == "matmul":
        m = int(rng.integers(0, 5))
        k = int(rng.choice([0, 1, 5, 64, 300, 65793, 65794, 72000])) if rng.integers(3) == 0 \
            else int(rng.integers(1, 40))
        nn = int(rng.integers(0, 6))
        a = rng.integers(0, 256, (m, k), dtype=np.uint8)
        b = rng.integers(-128, 128, (k if rng.integers(10) else k + 1, nn), dtype=np.int8)
        scale = rng.uniform(0.001, 0.1, nn).astype(np.float32)
        return op, dict(a=a, b=b, scale=scale, bias=rng.uniform(-1, 1, nn).astype(np.float32),
                        ranges=(lo, hi, out_lo, out_hi),
                        activation=str(rng.choice(["none", "relu", "relu6"])),
                        out_type=str(rng.choice(["quint8", "float"])))
    if op in ("max_pool", "avg_pool"):
        return op, dict(x=x, ranges=(lo, hi), ksize=_nhwc(rng, big), strides=_nhwc(rng, big),
                        padding=padding)
    if op == "concat":
        count = int(rng.integers(1, 4))
        axis = int(rng.integers(-5, 5))
        values = [rng.integers(0, 256, (n, h, w, c if rng.integers(8) else c + 1), dtype=np.uint8)
                  for _ in range(count)]
        return op, dict(values=values, ranges=[_range(rng) for _ in range(count)],
                        out=(out_lo, out_hi), axis=axis)
    if op == "quantize":
        v = rng.normal(0, 3, (n, h, w, c)).astype(np.float32)
        if rng.integers(4) == 0 and v.size:
            v.flat[0] = np.nan
        return op, dict(v=v, ranges=(lo, hi))
    acc = rng.integers(-2 ** 31, 2 ** 31, (n, h, w, c), dtype=np.int64).astype(np.int32)
    scale = rng.uniform(-0.01, 0.01, int(rng.choice([c, 1, c + 1]))).astype(np.float32)
    return "requantize", dict(acc=acc, scale=scale, ranges=(out_lo, out_hi))


def run_case(m, tf, ref, op, a):
    """Runs the op; returns None when it ran (and matched the reference where checked)."""
    # The reference is checked only where no tensor is empty (its reshapes need values).
    checkable = all(v.size for v in a.values() if isinstance(v, np.ndarray))
    u8 = lambda v: tf.constant(v, tf.quint8)  # noqa: E731
    f32 = lambda v: tf.constant(v, tf.float32)  # noqa: E731
    if op in ("conv", "depthwise"):
        lo, hi, olo, ohi = a["ranges"]
        common = [u8(a["x"]), tf.constant(a["f"], tf.qint8), f32(a["scale"]), f32(a["bias"]),
                  f32(lo), f32(hi), f32(olo), f32(ohi)]
        attrs = dict(strides=a["strides"], padding=a["padding"], dilations=a["dilations"],
                     activation=a["activation"], out_type=_dtype(tf, a["out_type"]))
        if op == "conv":
            out = m.qg_quantized_conv2d(*common, [], [], [], **attrs)[0]
            fn = ref.conv2d
        else:
            out = m.qg_quantized_depthwise_conv2d(*common, **attrs)[0]
            fn = ref.depthwise_conv2d
        f = a["f"]
        if checkable and f.shape[0] * f.shape[1] <= 16 and a["strides"][1] < 100 and a["strides"][2] < 100:
            want = fn(a["x"], lo, hi, f, a["scale"], a["bias"], olo, ohi, a["strides"][1:3],
                      a["padding"], a["dilations"][1:3], a["activation"], a["out_type"])
            return _compare(tf, out, want)
        return None
    if op == "matmul":
        lo, hi, olo, ohi = a["ranges"]
        out = m.qg_quantized_mat_mul(u8(a["a"]), tf.constant(a["b"], tf.qint8), f32(a["scale"]),
                                     f32(a["bias"]), f32(lo), f32(hi), f32(olo), f32(ohi), [], [],
                                     [], activation=a["activation"],
                                     out_type=_dtype(tf, a["out_type"]))[0]
        if checkable and a["a"].shape[1] <= 4096:
            want = ref.matmul(a["a"], lo, hi, a["b"], a["scale"], a["bias"], olo, ohi,
                              a["activation"], a["out_type"])
            return _compare(tf, out, want)
        return None
    if op in ("max_pool", "avg_pool"):
        lo, hi = a["ranges"]
        fn = m.qg_quantized_max_pool if op == "max_pool" else m.qg_quantized_avg_pool
        out = fn(u8(a["x"]), f32(lo), f32(hi), ksize=a["ksize"], strides=a["strides"],
                 padding=a["padding"])[0]
        k, s = a["ksize"], a["strides"]
        if checkable and k[1] * k[2] <= 64 and s[1] < 100 and s[2] < 100:
            want = (ref.max_pool if op == "max_pool" else ref.avg_pool)(a["x"], k[1:3], s[1:3],
                                                                        a["padding"])
            return _compare(tf, out, want)
        return None
    if op == "concat":
        out = m.qg_quantized_concat([u8(v) for v in a["values"]],
                                    [f32(r[0]) for r in a["ranges"]],
                                    [f32(r[1]) for r in a["ranges"]], f32(a["out"][0]),
                                    f32(a["out"][1]), axis=a["axis"])[0]
        return None
    if op == "quantize":
        m.qg_quantize(f32(a["v"]), f32(a["ranges"][0]), f32(a["ranges"][1]))
        return None
    m.qg_requantize(tf.constant(a["acc"], tf.qint32), f32(a["scale"]), f32(a["ranges"][0]),
                    f32(a["ranges"][1]))
    return None


def _dtype(tf, name):
    return tf.float32 if name == "float" else tf.quint8


def _compare(tf, out, want):
    got = tf.cast(out, tf.int32).numpy() if out.dtype == tf.quint8 else out.numpy()
    want = np.asarray(want)
    if got.shape != want.shape:
        return "shape %s, the reference %s" % (got.shape, want.shape)
    if got.dtype.kind == "f":
        if not np.allclose(got, want, rtol=1e-5, atol=1e-5, equal_nan=True):
            return "float result differs from the reference"
    elif not np.array_equal(got, want.astype(got.dtype)):
        return "%d codes differ from the reference" % int((got != want).sum())
    return None


def main(seed, first, count):
    import tensorflow as tf
    from quantize_graph import kernels
    from quantize_graph.kernels import numpy_reference as ref
    m = kernels.load()
    rng = np.random.default_rng(seed)
    cases = [make_case(rng) for _ in range(first + count)]
    for i in range(first, first + count):
        op, args = cases[i]
        print("start %d %s" % (i, op), flush=True)
        try:
            wrong = run_case(m, tf, ref, op, args)
        except tf.errors.InvalidArgumentError as e:
            print("done %d invalid %s" % (i, " ".join(e.message.split())[:150]), flush=True)
            continue
        print("done %d %s" % (i, "WRONG " + wrong if wrong else "ok"), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
