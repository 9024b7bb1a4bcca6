"""Builds the Qg CPU op library (quantize_graph/kernels/_qg_ops.so) with g++ and TF's flags.

Used by setup.py's build_ext (`pip install -e .`) and by `make kernels`
(`python kernels/build_cpu.py`). Objects go to build/qg_cpu/ and are rebuilt only when a source
or header is newer. TensorFlow's compile/link flags come from `tf.sysconfig`, read in a child
interpreter so this also works inside pip's isolated build environment.
"""
import glob
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CC_DIR = os.path.join(ROOT, "kernels", "cc")
OUTPUT = os.path.join(ROOT, "quantize_graph", "kernels", "_qg_ops.so")
BUILD_DIR = os.path.join(ROOT, "build", "qg_cpu")

# -ffp-contract=off: the epilogue must not be fused into FMAs (kernels/OPS.md). No -march:
# the SIMD paths are enabled per function (target attributes) and chosen at run time.
CXXFLAGS = ["-std=c++17", "-O3", "-fPIC", "-ffp-contract=off", "-Wno-deprecated-declarations",
            "--param", "destructive-interference-size=128"]


def sources():
    """CPU sources: op registrations, CPU kernels, the GEMM core (not the *_gpu.cc files)."""
    files = glob.glob(os.path.join(CC_DIR, "*.cc")) + glob.glob(os.path.join(CC_DIR, "ops", "*.cc")) \
        + glob.glob(os.path.join(CC_DIR, "gemm", "*.cc"))
    # gemm_check.cc is the standalone `make gemm-check` program (it has a main()).
    return sorted(f for f in files if not f.endswith(("_gpu.cc", "gemm_check.cc")))


def tf_flags(python=None):
    """(compile flags, link flags) of the installed TensorFlow."""
    code = ("import tensorflow as tf; print(' '.join(tf.sysconfig.get_compile_flags())); "
            "print(' '.join(tf.sysconfig.get_link_flags()))")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONNOUSERSITE")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    out = subprocess.run([python or sys.executable, "-c", code], env=env, capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise RuntimeError("cannot read TensorFlow's build flags (is tensorflow installed?):\n"
                           + out.stderr[-2000:])
    lines = out.stdout.strip().splitlines()[-2:]
    return lines[0].split(), lines[1].split()


def _newest_header():
    headers = glob.glob(os.path.join(CC_DIR, "**", "*.h"), recursive=True)
    return max((os.path.getmtime(h) for h in headers), default=0)


def build(output=OUTPUT, jobs=2, verbose=True):
    cflags, lflags = tf_flags()
    os.makedirs(BUILD_DIR, exist_ok=True)
    newest_header = _newest_header()
    todo, objects = [], []
    for src in sources():
        obj = os.path.join(BUILD_DIR, os.path.relpath(src, CC_DIR).replace(os.sep, "_") + ".o")
        objects.append(obj)
        if not os.path.exists(obj) or os.path.getmtime(obj) < max(os.path.getmtime(src),
                                                                   newest_header):
            todo.append((src, obj))

    def compile_one(item):
        src, obj = item
        cmd = ["g++", *CXXFLAGS, *cflags, "-I" + CC_DIR, "-c", src, "-o", obj]
        if verbose:
            print("compiling", os.path.relpath(src, ROOT), flush=True)
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"g++ failed on {src}:\n{res.stderr[-4000:]}")

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(compile_one, todo))
    if todo or not os.path.exists(output):
        tmp = output + ".tmp"
        cmd = ["g++", "-shared", "-o", tmp, *objects, *lflags]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"linking {output} failed:\n{res.stderr[-4000:]}")
        os.replace(tmp, output)
        if verbose:
            print("built", os.path.relpath(output, ROOT), flush=True)
    return output


if __name__ == "__main__":
    try:
        build()
    except RuntimeError as e:
        sys.exit(f"build_cpu: error: {e}")
