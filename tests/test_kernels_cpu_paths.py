"""QG_CPU_PATH: every GEMM path this CPU has gives identical results; forcing a path the CPU
lacks (or a bad name) is a clear error, not an illegal instruction. Each path runs in its own
process (the path is chosen when the library loads): this file run as a script is the worker.
The pool and concat kernels follow the same path choice; on every path their outputs must equal
the NumPy reference exactly."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent


def _worker(out_path):
    import tensorflow as tf
    if os.environ.get("QG_TEST_THREADS"):  # TF's intra-op pool: before the first op runs
        tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["QG_TEST_THREADS"]))

    from quantize_graph import kernels
    qg = kernels.load()
    path = qg.qg_cpu_path().numpy().decode()
    print("PATH", path, flush=True)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(0, 256, (2, 15, 13, 37), dtype=np.uint8), tf.quint8)
    w = tf.constant(rng.integers(-127, 128, (3, 3, 37, 45), dtype=np.int8), tf.qint8)
    fs = np.full(45, 1.0, np.float32)
    acc = qg.qg_quantized_conv2d(x, w, fs, np.zeros(45, np.float32), -7.0, 248.0, 0.0, 1.0,
                                 [], [], [], strides=[1, 2, 1, 1], padding="SAME",
                                 dilations=[1, 1, 2, 1], out_type=tf.float32)[0]
    q = qg.qg_quantized_conv2d(x, w, fs * 1e-3, np.ones(45, np.float32), -1.0, 1.0, -2.0, 6.0,
                               [], [], [], strides=[1, 1, 1, 1], padding="VALID",
                               activation="relu6")[0]
    a = tf.constant(rng.integers(0, 256, (3, 999), dtype=np.uint8), tf.quint8)
    b = tf.constant(rng.integers(-127, 128, (999, 70), dtype=np.int8), tf.qint8)
    mm = qg.qg_quantized_mat_mul(a, b, np.ones(70, np.float32), np.zeros(70, np.float32), -1.0,
                                 254.0, 0.0, 1.0, [], [], [], out_type=tf.float32)[0]
    # weights whose pairs fit int16: the AVX2 path runs its byte kernel here
    w7 = tf.constant(rng.integers(-64, 65, (3, 3, 37, 45), dtype=np.int8), tf.qint8)
    acc7 = qg.qg_quantized_conv2d(x, w7, fs, np.zeros(45, np.float32), -7.0, 248.0, 0.0, 1.0,
                                  [], [], [], strides=[1, 1, 1, 1], padding="SAME",
                                  out_type=tf.float32)[0]
    # padding taps skipped (filter rows that see only padding above or below the input: row
    # blocks on the avx2 / vnni im2col paths, tiles of the vnni implicit GEMM; filter columns
    # left and right for 1 x k filters, whose GEMM rows then run column by column), nonzero zero
    # point, pair-limited weights so avx2 runs its byte kernel
    trim = {}
    for key, shape, k, stride, dil in (("trim7x1", (2, 17, 17, 8), (7, 1), 1, 1),
                                       ("trim5", (2, 24, 26, 12), (5, 5), 1, 1),
                                       ("trim3s2", (2, 30, 26, 16), (3, 3), 2, 2),
                                       ("trim3", (3, 13, 40, 20), (3, 3), 1, 1),
                                       ("trim1x7", (2, 9, 17, 8), (1, 7), 1, 1),
                                       ("trim1x5s2", (2, 23, 30, 12), (1, 5), 2, 2)):
        xt = tf.constant(rng.integers(0, 256, shape, dtype=np.uint8), tf.quint8)
        wt = tf.constant(rng.integers(-64, 65, k + (shape[3], 24), dtype=np.int8), tf.qint8)
        trim[key] = qg.qg_quantized_conv2d(
            xt, wt, np.ones(24, np.float32), np.zeros(24, np.float32), -30.0, 225.0, 0.0, 1.0,
            [], [], [], strides=[1, stride, stride, 1], padding="SAME",
            dilations=[1, dil, dil, 1], out_type=tf.float32)[0].numpy()
    # depthwise: multiplier 1 runs the AVX2 loop (blocks of 32 channels) on avx2, the AVX-512
    # one (blocks of 64) on vnni and amx, interior and border columns; multiplier 2 the portable
    # loops on every path
    dw = {}
    for key, c, mult, stride, padding, dil in (("dw40", 40, 1, 1, "SAME", 1),
                                               ("dw17", 17, 1, 2, "SAME", 1),
                                               ("dw72", 72, 1, 1, "VALID", 2),
                                               ("dw5m2", 5, 2, 2, "SAME", 1)):
        xd = tf.constant(rng.integers(0, 256, (2, 12, 11, c), dtype=np.uint8), tf.quint8)
        wd = tf.constant(rng.integers(-128, 128, (3, 3, c, mult), dtype=np.int8), tf.qint8)
        n = c * mult
        dw[key] = qg.qg_quantized_depthwise_conv2d(
            xd, wd, np.ones(n, np.float32), np.zeros(n, np.float32), -93.0, 162.0, 0.0, 1.0,
            strides=[1, stride, stride, 1], padding=padding, dilations=[1, dil, dil, 1],
            out_type=tf.float32)[0].numpy()
    dq = qg.qg_quantized_depthwise_conv2d(
        xd, wd, np.full(n, 2e-3, np.float32), np.ones(n, np.float32), -1.0, 1.0, 0.0, 6.0,
        strides=[1, 1, 1, 1], padding="SAME", activation="relu6")[0]
    np.savez(out_path, acc=acc.numpy(), q=tf.cast(q, tf.int32).numpy(), mm=mm.numpy(),
             acc7=acc7.numpy(), dq=tf.cast(dq, tf.int32).numpy(), **dw, **trim,
             **_pool_concat_outputs(qg))


def _pool_concat_outputs(qg):
    from tests.kernels_helpers import POOL_CASES, concat_cases, nhwc, np_out, pool_input, u8
    out = {}
    for i, case in enumerate(POOL_CASES):
        x = pool_input(case, i)
        _, ksize, strides, padding, _ = case
        for name, op in (("max", qg.qg_quantized_max_pool), ("avg", qg.qg_quantized_avg_pool)):
            out[f"{name}{i}"] = np_out(op(u8(x), 0.0, 6.0, ksize=nhwc(ksize),
                                          strides=nhwc(strides), padding=padding)[0])
    for i, (values, mins, maxes, mn, mx, axis) in enumerate(concat_cases()):
        out[f"concat{i}"] = np_out(qg.qg_quantized_concat([u8(v) for v in values], mins, maxes,
                                                          mn, mx, axis=axis)[0])
    return out


def _pool_concat_reference():
    from quantize_graph.kernels import numpy_reference as R
    from tests.kernels_helpers import POOL_CASES, concat_cases, pool_input
    want = {}
    for i, case in enumerate(POOL_CASES):
        x = pool_input(case, i)
        _, ksize, strides, padding, _ = case
        want[f"max{i}"] = R.max_pool(x, ksize, strides, padding)
        want[f"avg{i}"] = R.avg_pool(x, ksize, strides, padding)
    for i, (values, mins, maxes, mn, mx, axis) in enumerate(concat_cases()):
        want[f"concat{i}"] = R.concat(values, mins, maxes, mn, mx, axis)
    return want


def _run(path_name, tmp_path, threads=None):
    out = tmp_path / f"{path_name}{threads or ''}.npz"
    env = dict(os.environ, QG_CPU_PATH=path_name, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if threads:
        env["QG_TEST_THREADS"] = str(threads)
    proc = subprocess.run([sys.executable, str(HERE), str(out)], env=env, capture_output=True,
                          text=True, timeout=120)
    return proc, out


@pytest.fixture(scope="module")
def built():
    from tests.kernels_helpers import load_or_skip
    load_or_skip()


def _cpu_has(flag):
    try:
        return flag in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


def test_portable_and_simd_paths_identical(built, tmp_path):
    proc, portable = _run("portable", tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "PATH portable" in proc.stdout
    ref = np.load(portable)
    # the accumulators really are the exact sums (the reference is checked elsewhere too)
    assert ref["acc"].shape == (2, 8, 13, 45) and ref["mm"].shape == (3, 70)
    pool_concat = _pool_concat_reference()
    for key, want in pool_concat.items():
        np.testing.assert_array_equal(ref[key], want, err_msg=f"portable vs reference: {key}")
    others = [p for p, flag in (("avx2", "avx2"), ("vnni", "avx512_vnni"), ("amx", "amx_int8"))
              if _cpu_has(flag)]
    if not others:
        pytest.skip("this CPU has neither AVX2 nor AVX-512 VNNI: only the portable path runs")
    for name in others:
        proc, out = _run(name, tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"PATH {name}" in proc.stdout
        got = np.load(out)
        for key in ("acc", "q", "mm", "acc7", "dw40", "dw17", "dw72", "dw5m2", "dq", "trim7x1",
                    "trim5", "trim3s2", "trim3", "trim1x7", "trim1x5s2"):
            np.testing.assert_array_equal(got[key], ref[key], err_msg=f"{name} vs portable: {key}")
        for key, want in pool_concat.items():
            np.testing.assert_array_equal(got[key], want, err_msg=f"{name} vs reference: {key}")
    # The work split (rows or columns per thread, units claimed by pool tasks) may not change
    # a byte: the fastest path again on 1 and on 5 threads (an odd count: 5 row parts).
    for threads in (1, 5):
        proc, out = _run(others[-1], tmp_path, threads)
        assert proc.returncode == 0, proc.stderr[-2000:]
        got = np.load(out)
        for key in ref.files:
            if key in pool_concat:
                np.testing.assert_array_equal(got[key], pool_concat[key], err_msg=f"{key}")
            else:
                np.testing.assert_array_equal(got[key], ref[key],
                                              err_msg=f"{others[-1]}, {threads} threads: {key}")


@pytest.mark.parametrize("value", ["vnni", "amx", "avx3"])
def test_forcing_an_unavailable_path_is_an_error(built, tmp_path, value):
    if value == "vnni" and _cpu_has("avx512_vnni"):
        pytest.skip("this CPU has AVX-512 VNNI, so forcing it is valid")
    if value == "amx" and _cpu_has("amx_int8"):
        pytest.skip("this CPU has AMX, so forcing it is valid")
    proc, out = _run(value, tmp_path)
    assert proc.returncode != 0
    assert "QG_CPU_PATH" in proc.stderr
    assert "FailedPrecondition" in proc.stderr or "FAILED_PRECONDITION" in proc.stderr
    assert "Illegal instruction" not in proc.stderr and proc.returncode > 0
    assert not out.exists()


if __name__ == "__main__":
    _worker(sys.argv[1])
