"""The byte GEMM kernels (and QgQuantize, and the depthwise loops) against numpy_reference.py,
on every path this CPU has: the AMX tdpbusd kernel (16-row tiles, K padded to 64, rows in
place), the AVX-512 VNNI vpdpbusd kernel (any weights; 12 x 32 tiles, row and column tails, rows
read in place, the masked AVX-512 epilogue, the implicit GEMM of stride-1 convs) and the AVX2
vpmaddubsw kernel (pair-limited weights). Shapes are
odd on purpose: rows not a multiple of 12, columns not a multiple of 16 or 32, K not a multiple
of 4, the stem's K = 27, strides, dilations, borders, summands, quint8 and float outputs. Each
path runs in its own process (QG_CPU_PATH is read when the library loads): this file run as a
script is the worker, printing one line per case."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent

# (name, x shape, w shape [kh, kw, C_in, C_out], strides, padding, dilations, activation,
#  out_type, with summand)
CONV_CASES = [
    ("3x3 s2x1 dil1x2", (2, 15, 13, 37), (3, 3, 37, 45), (2, 1), "SAME", (1, 2), "none",
     "float", False),
    ("1x1 in place, 63 rows, N=70", (1, 7, 9, 64), (1, 1, 64, 70), (1, 1), "VALID", (1, 1),
     "relu6", "quint8", True),
    ("1x1 K=35 packed", (2, 5, 7, 35), (1, 1, 35, 16), (1, 1), "SAME", (1, 1), "relu",
     "quint8", False),
    ("stem K=27", (1, 29, 31, 3), (3, 3, 3, 33), (2, 2), "VALID", (1, 1), "relu", "quint8",
     False),
    # short window rows (kw * C <= 16 bytes) copied as 16-byte moves: borders (SAME), several
    # images, the input's last bytes (16-byte reads would run past it), dilated rows, K = 9..75
    ("stem SAME K=27 2 images", (2, 17, 21, 3), (3, 3, 3, 16), (2, 2), "SAME", (1, 1), "relu6",
     "quint8", False),
    ("3x3 C=4 dil2x1 SAME", (1, 12, 15, 4), (3, 3, 4, 24), (1, 1), "SAME", (2, 1), "none",
     "float", False),
    ("5x5 C=3 VALID K=75", (1, 13, 14, 3), (5, 5, 3, 20), (1, 1), "VALID", (1, 1), "relu",
     "quint8", False),
    ("3x3 C=1 SAME K=9", (2, 9, 40, 1), (3, 3, 1, 8), (1, 1), "SAME", (1, 1), "none", "quint8",
     True),
    # rows of 17..32 bytes as 32-byte moves: ResNet's 7x7/2 stem on RGB (21 bytes), 30 bytes
    ("7x7/2 SAME C=3 K=147 2 images", (2, 23, 21, 3), (7, 7, 3, 20), (2, 2), "SAME", (1, 1),
     "relu", "quint8", False),
    ("5x5/2 VALID C=6 K=150", (1, 17, 19, 6), (5, 5, 6, 24), (2, 2), "VALID", (1, 1), "none",
     "float", True),
    ("5x5 SAME", (1, 11, 10, 12), (5, 5, 12, 48), (1, 1), "SAME", (1, 1), "none", "quint8",
     True),
    ("1x1 s2 float summand", (1, 9, 8, 40), (1, 1, 40, 100), (2, 2), "SAME", (1, 1), "relu",
     "float", True),
    ("1x1 1225 rows", (1, 35, 35, 48), (1, 1, 48, 64), (1, 1), "VALID", (1, 1), "relu",
     "quint8", False),
    ("3x3 s2 VALID N=17", (3, 9, 9, 20), (3, 3, 20, 17), (2, 2), "VALID", (1, 1), "relu6",
     "quint8", False),
    # stride 1, taps wide enough for the AMX path's implicit GEMM (padded input, virtual rows
    # across the padding, several images, column tails, rows not a multiple of 16)
    ("3x3 SAME implicit C=64", (2, 9, 11, 64), (3, 3, 64, 40), (1, 1), "SAME", (1, 1), "relu",
     "quint8", True),
    ("7x1 SAME implicit", (3, 13, 5, 64), (7, 1, 64, 33), (1, 1), "SAME", (1, 1), "none",
     "float", False),
    ("3x3 VALID implicit C=80", (3, 10, 20, 80), (3, 3, 80, 50), (1, 1), "VALID", (1, 1),
     "relu6", "float", True),
    ("1x3 SAME implicit C=128", (1, 4, 30, 128), (1, 3, 128, 96), (1, 1), "SAME", (1, 1),
     "relu", "quint8", False),
    # the VNNI path's implicit GEMM: spans not a multiple of 4 (C = 3: each filter row's 9
    # bytes padded to 12), only the 16-column kernel (N = 16), 32 + 16 columns (N = 80), rows
    # not a multiple of 12 across several images
    ("3x3 SAME implicit C=3 N=16", (2, 7, 9, 3), (3, 3, 3, 16), (1, 1), "SAME", (1, 1),
     "relu", "quint8", False),
    ("5x5 VALID implicit C=20 N=80", (2, 14, 13, 20), (5, 5, 20, 80), (1, 1), "VALID", (1, 1),
     "relu6", "quint8", True),
]
# Depthwise, multiplier 1 (the AVX-512 loop on vnni/amx: blocks of 64 channels, the last one
# partial, and stride-1 runs as "virtual pixels" of lcm(64, C) bytes with real pixels left over;
# the AVX2 loop on avx2): (name, x shape, window, strides, padding, dilations, activation,
# out_type).
DEPTHWISE_CASES = [
    ("C=1 s1 SAME", (2, 7, 150, 1), (3, 3), (1, 1), "SAME", (1, 1), "relu6", "quint8"),
    ("C=7 s1 SAME", (1, 9, 140, 7), (3, 3), (1, 1), "SAME", (1, 1), "none", "quint8"),
    ("C=8 s1 VALID dil2", (2, 11, 40, 8), (3, 3), (1, 1), "VALID", (2, 2), "relu6", "quint8"),
    ("C=33 s1 SAME", (1, 8, 23, 33), (3, 3), (1, 1), "SAME", (1, 1), "relu", "quint8"),
    ("C=65 s2 SAME", (2, 9, 13, 65), (3, 3), (2, 2), "SAME", (1, 1), "relu6", "quint8"),
    ("C=97 s1 VALID 5x3", (1, 10, 19, 97), (5, 3), (1, 1), "VALID", (1, 1), "none", "quint8"),
    ("C=144 s1 SAME", (1, 6, 17, 144), (3, 3), (1, 1), "SAME", (1, 1), "relu6", "quint8"),
    ("C=96 s2 VALID", (1, 13, 12, 96), (3, 3), (2, 2), "VALID", (1, 1), "relu6", "quint8"),
    ("C=33 s1 float", (2, 7, 21, 33), (3, 3), (1, 1), "SAME", (1, 1), "relu", "float"),
    ("C=65 s3x1 float", (1, 11, 9, 65), (2, 4), (3, 1), "SAME", (1, 2), "none", "float"),
]
# (name, M, K, N, out_type)
MATMUL_CASES = [
    ("13x1001x37", 13, 1001, 37, "quint8"),
    ("1x2048x1000", 1, 2048, 1000, "float"),
    ("25x64x32 in place", 25, 64, 32, "quint8"),
]
RANGE_X = (-7.0, 248.0)  # zero point 7
RANGE_OUT = (-2.0, 6.0)
RANGE_S = (-1.5, 3.0)


def _weights(rng, shape, pair_limited):
    """Full qint8 codes, or codes whose same-sign K-neighbours sum to at most 128."""
    hi = 64 if pair_limited else 127
    return rng.integers(-hi, hi + 1, shape, dtype=np.int8)


def _inputs(seed, pair_limited):
    rng = np.random.default_rng(seed)
    convs = []
    for case in CONV_CASES:
        _, xs, ws, _, _, _, _, _, with_summand = case
        x = rng.integers(0, 256, xs, dtype=np.uint8)
        w = _weights(rng, ws, pair_limited)
        fs = rng.uniform(1e-4, 3e-3, ws[3]).astype(np.float32)
        bias = rng.uniform(-1, 1, ws[3]).astype(np.float32)
        convs.append((case, x, w, fs, bias, rng.integers(0, 256, (1,), dtype=np.uint8)[0],
                      with_summand))
    mms = []
    for case in MATMUL_CASES:
        _, m, k, n, _ = case
        a = rng.integers(0, 256, (m, k), dtype=np.uint8)
        b = _weights(rng, (k, n), pair_limited)
        mms.append((case, a, b, rng.uniform(1e-4, 1e-3, n).astype(np.float32),
                    rng.uniform(-1, 1, n).astype(np.float32)))
    return convs, mms


def _summand(shape, seed):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _conv_out_shape(case):
    from quantize_graph.kernels import numpy_reference as R
    _, xs, ws, strides, padding, dil, _, _, _ = case
    return (xs[0], R._out_size(xs[1], ws[0], strides[0], dil[0], padding)[0],
            R._out_size(xs[2], ws[1], strides[1], dil[1], padding)[0], ws[3])


def _worker():
    import tensorflow as tf

    from quantize_graph import kernels
    from quantize_graph.kernels import numpy_reference as R
    from tests.kernels_helpers import np_out, nhwc, s8, u8
    qg = kernels.load()
    print("PATH", qg.qg_cpu_path().numpy().decode(), flush=True)
    for pair_limited in (False, True):
        convs, mms = _inputs(1 + pair_limited, pair_limited)
        for i, (case, x, w, fs, bias, _, with_summand) in enumerate(convs):
            name, _, _, strides, padding, dil, act, out_type, _ = case
            kwargs, args = {}, ([], [], [])
            if with_summand:
                s = _summand(_conv_out_shape(case), i)
                kwargs = dict(summand=s, min_summand=RANGE_S[0], max_summand=RANGE_S[1])
                args = ([u8(s)], [np.float32(RANGE_S[0])], [np.float32(RANGE_S[1])])
            got = np_out(qg.qg_quantized_conv2d(
                u8(x), s8(w), fs, bias, *RANGE_X, *RANGE_OUT, *args, strides=nhwc(strides),
                padding=padding, dilations=nhwc(dil), activation=act,
                out_type=tf.float32 if out_type == "float" else tf.quint8)[0])
            want = R.conv2d(x, *RANGE_X, w, fs, bias, *RANGE_OUT, strides, padding, dil,
                            activation=act, out_type=out_type, **kwargs)
            _report(f"conv {name} pair_limited={pair_limited}", got, want, out_type)
        for case, a, b, fs, bias in mms:
            name, _, _, _, out_type = case
            got = np_out(qg.qg_quantized_mat_mul(
                u8(a), s8(b), fs, bias, *RANGE_X, *RANGE_OUT, [], [], [],
                out_type=tf.float32 if out_type == "float" else tf.quint8)[0])
            want = R.matmul(a, *RANGE_X, b, fs, bias, *RANGE_OUT, out_type=out_type)
            _report(f"matmul {name} pair_limited={pair_limited}", got, want, out_type)
    rng = np.random.default_rng(11)
    for name, xs, win, strides, padding, dil, act, out_type in DEPTHWISE_CASES:
        c = xs[3]
        x = rng.integers(0, 256, xs, dtype=np.uint8)
        w = rng.integers(-128, 128, win + (c, 1), dtype=np.int8)  # -128 too
        fs = rng.uniform(1e-3, 2e-2, c).astype(np.float32)
        bias = rng.uniform(-1, 1, c).astype(np.float32)
        got = np_out(qg.qg_quantized_depthwise_conv2d(
            u8(x), s8(w), fs, bias, *RANGE_X, *RANGE_OUT, strides=nhwc(strides),
            padding=padding, dilations=nhwc(dil), activation=act,
            out_type=tf.float32 if out_type == "float" else tf.quint8)[0])
        want = R.depthwise_conv2d(x, *RANGE_X, w, fs, bias, *RANGE_OUT, strides, padding, dil,
                                  act, out_type)
        _report(f"depthwise {name}", got, want, out_type)
    # QgQuantize at the graph's edge (AVX-512 on the vnni path): ties, NaN, infinities, a tail
    rng = np.random.default_rng(3)
    x = rng.uniform(-3, 9, 1037).astype(np.float32)
    x[:8] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 2.5 * (12.0 / 255)]
    x[8:40] = (np.arange(32) - 10.5).astype(np.float32) * np.float32(12.0 / 255)
    got = np_out(qg.qg_quantize(x.reshape(1, 17, 61), -3.0, 9.0)[0]).reshape(-1)
    _report("quantize 1037", got, R.quantize(x, -3.0, 9.0).reshape(-1), "quint8")


def _report(name, got, want, out_type):
    if out_type == "float":  # float outputs to rounding (OPS.md), 8-bit ones exactly
        same = got.shape == want.shape and np.allclose(got, want, rtol=1e-5, atol=1e-5)
    else:
        same = got.shape == want.shape and np.array_equal(got, want)
    print(("OK " if same else "MISMATCH ") + name, flush=True)


def _cpu_has(flag):
    try:
        return flag in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


@pytest.fixture(scope="module")
def built():
    from tests.kernels_helpers import load_or_skip
    load_or_skip()


@pytest.mark.parametrize("path,flag", [("amx", "amx_int8"), ("vnni", "avx512_vnni"),
                                       ("avx2", "avx2"), ("portable", None)])
def test_byte_kernels_match_the_reference(built, path, flag):
    if flag is not None and not _cpu_has(flag):
        pytest.skip(f"this CPU lacks {flag}: the {path} path cannot run here")
    env = dict(os.environ, QG_CPU_PATH=path, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(HERE)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"PATH {path}" in proc.stdout
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("OK", "MISMATCH"))]
    assert len(lines) == 2 * (len(CONV_CASES) + len(MATMUL_CASES)) + len(DEPTHWISE_CASES) + 1, \
        proc.stdout
    bad = [line for line in lines if line.startswith("MISMATCH")]
    assert not bad, "\n".join(bad)


if __name__ == "__main__":
    _worker()
