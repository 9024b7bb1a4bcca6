"""The CUDA path's checks that run without a GPU (about 30 s, most of it two nvcc -ptx runs).

On a GPU machine the kernels themselves are checked by `make gpu-test` (tools/gpu_test.py);
here: that runner skips cleanly, its ctypes mirror of qg_cuda.h matches the C layout, the
header is plain C/C++, the conv/GEMM kernel really picks mma.sync on sm_80+ and dp4a on sm_75
with no FMA contraction in the epilogue, and a built GPU library loads into tensorflow-cpu.
"""
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CUDA_HOME = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda"))
NVCC = shutil.which("nvcc") or str(CUDA_HOME / "bin/nvcc")
HEADER = REPO / "kernels/cuda/qg_cuda.h"
REFERENCE = REPO / "quantize_graph/kernels/numpy_reference.py"

# Runs a script with TensorFlow made unimportable: the GPU machine has no TensorFlow.
NO_TF = ("import sys, runpy; sys.modules['tensorflow'] = None; "
         "sys.argv = ['gpu_test.py'] + sys.argv[1:]; "
         "runpy.run_path('tools/gpu_test.py', run_name='__main__')")


def run_gpu_test(*args, timeout=120):
    return subprocess.run([sys.executable, "-c", NO_TF, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def import_gpu_test():
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import gpu_test
    finally:
        sys.path.pop(0)
    return gpu_test


def test_gpu_test_skips_with_reason_without_gpu():
    gpu_test = import_gpu_test()
    if gpu_test.gpu_unavailable_reason() is None:
        pytest.skip("this machine has a GPU: make gpu-test runs the real checks")
    r = run_gpu_test("--lib", "/nonexistent.so")
    assert r.returncode == 77, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_test: skipped: "), r.stdout


@pytest.mark.skipif(not REFERENCE.is_file(), reason="numpy_reference.py (CPU branch) not here yet")
def test_gpu_test_drives_the_reference_without_tensorflow():
    # The reference stands in for the GPU: every case, every reference call and comparison of
    # the runner, with TensorFlow unimportable (as on the GPU machine).
    r = run_gpu_test("--dry-run", "--quick")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "FAIL" not in r.stdout
    assert re.search(r"gpu_test: ok: 0 failing of \d+ checks", r.stdout)


def compile_c(tmp_path, source, lang, run=True):
    """Compiles source with gcc/g++ (no nvcc) against qg_cuda.h; runs it and returns stdout."""
    compiler = shutil.which("g++" if lang == "c++" else "gcc")
    if compiler is None or not (CUDA_HOME / "include/cuda_runtime_api.h").is_file():
        pytest.skip("needs gcc/g++ and the CUDA headers")
    src = tmp_path / ("t.cc" if lang == "c++" else "t.c")
    src.write_text(source)
    exe = tmp_path / "t"
    std = "-std=c++17" if lang == "c++" else "-std=c99"
    cmd = [compiler, std, "-Wall", "-Wextra", "-Werror", "-I", str(REPO / "kernels/cuda"),
           "-I", str(CUDA_HOME / "include"), str(src)]
    r = subprocess.run(cmd + (["-o", str(exe)] if run else ["-fsyntax-only"]),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    if run:
        return subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return ""


@pytest.mark.parametrize("lang", ["c", "c++"])
def test_launcher_header_is_plain_c_and_cpp(tmp_path, lang):
    # Every launcher's declaration, type-checked by the host compiler alone.
    compile_c(tmp_path, textwrap.dedent("""
        #include "qg_cuda.h"
        void use(void);
        void use(void) {
          cudaError_t (*conv)(const uint8_t*, const void*, const qg_conv_shape*,
                              const qg_epilogue*, void*, cudaStream_t) = qg_cuda_conv2d;
          cudaError_t (*mm)(const uint8_t*, const void*, int, int, int, const qg_epilogue*,
                            void*, cudaStream_t) = qg_cuda_matmul;
          cudaError_t (*pool)(const uint8_t*, const qg_pool_shape*, uint8_t*, cudaStream_t) =
              qg_cuda_avg_pool;
          const void* all[] = {(const void*)conv, (const void*)mm, (const void*)pool,
              (const void*)qg_cuda_depthwise_conv2d, (const void*)qg_cuda_pack_filter,
              (const void*)qg_cuda_packed_filter_bytes, (const void*)qg_cuda_quantize,
              (const void*)qg_cuda_dequantize, (const void*)qg_cuda_requantize,
              (const void*)qg_cuda_max_pool, (const void*)qg_cuda_concat,
              (const void*)qg_cuda_conv_output_size};
          (void)all;
        }
        """), lang, run=False)


def test_gpu_test_ctypes_structs_match_the_header(tmp_path):
    gpu_test = import_gpu_test()
    fields = {"qg_conv_shape": gpu_test.ConvShape, "qg_epilogue": gpu_test.Epilogue,
              "qg_pool_shape": gpu_test.PoolShape}
    lines = []
    for c_name, cls in fields.items():
        lines.append(f'printf("{c_name} size %d\\n", (int)sizeof({c_name}));')
        for name, _ in cls._fields_:
            lines.append(f'printf("{c_name} {name} %d\\n", (int)offsetof({c_name}, {name}));')
    out = compile_c(tmp_path, "#include <stddef.h>\n#include <stdio.h>\n#include \"qg_cuda.h\"\n"
                    "int main(void) {\n" + "\n".join(lines) + "\nreturn 0;\n}\n", "c")
    for line in out.splitlines():
        c_name, field, value = line.split()
        cls = fields[c_name]
        python = ctypes_sizeof(cls) if field == "size" else getattr(cls, field).offset
        assert python == int(value), f"{c_name}.{field}: ctypes {python}, C {value}"


def ctypes_sizeof(cls):
    import ctypes
    return ctypes.sizeof(cls)


@pytest.mark.skipif(not Path(NVCC).exists(), reason="needs nvcc")
def test_igemm_picks_tensor_cores_on_sm80_and_dp4a_on_sm75_without_fma(tmp_path):
    ptx = {}
    for arch in ("compute_75", "compute_80"):
        out = tmp_path / f"{arch}.ptx"
        subprocess.run([NVCC, "-std=c++17", "--fmad=false", f"-arch={arch}", "-ptx",
                        str(REPO / "kernels/cuda/igemm.cu"), "-o", str(out)], check=True,
                       capture_output=True, text=True, timeout=300)
        ptx[arch] = out.read_text()
    assert "mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32" in ptx["compute_80"]
    assert "ldmatrix.sync.aligned.m8n8.x4.shared.b16" in ptx["compute_80"]
    assert "dp4a" not in ptx["compute_80"]
    assert "dp4a.u32.s32" in ptx["compute_75"]
    assert "mma.sync" not in ptx["compute_75"]
    for text in ptx.values():  # the epilogue: separate multiply and add, as OPS.md demands
        assert "fma.rn.f32" not in text
        assert "mul.rn.f32" in text and "add.rn.f32" in text


GPU_LIB = REPO / "build/cuda/_qg_ops_gpu.so"
QG_OPS = ["QgQuantize", "QgDequantize", "QgRequantize", "QgQuantizedConv2D",
          "QgQuantizedDepthwiseConv2D", "QgQuantizedMatMul", "QgQuantizedMaxPool",
          "QgQuantizedAvgPool", "QgQuantizedConcat"]


@pytest.mark.skipif(not GPU_LIB.is_file(), reason="make cuda has not been run")
def test_gpu_library_loads_into_tensorflow_cpu_with_a_gpu_kernel_per_op():
    # The GPU variant links cudart statically, so it loads where no CUDA runtime is installed.
    # Its kernels' HostMemory names must be argument names of the registered ops.
    script = textwrap.dedent(f"""
        import tensorflow as tf
        from tensorflow.python.framework import kernels, op_def_registry
        tf.load_op_library({str(GPU_LIB)!r})
        for op in {QG_OPS!r}:
            op_def = op_def_registry.get(op)
            if op_def is None:
                print(op, "unregistered")
                continue
            names = {{a.name for a in op_def.input_arg}} | {{a.name for a in op_def.output_arg}}
            gpu = [k for k in kernels.get_registered_kernels_for_op(op).kernel
                   if k.device_type == "GPU"]
            bad = sorted(h for k in gpu for h in k.host_memory_arg if h not in names)
            print(op, len(gpu), ",".join(bad) or "-")
        """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    result = dict((line.split(" ", 1)) for line in r.stdout.strip().splitlines())
    if all(v == "unregistered" for v in result.values()):
        pytest.skip("no Qg op registrations in the library yet (CPU branch not merged)")
    for op in QG_OPS:
        assert result[op] == "1 -", f"{op}: {result[op]} (want one GPU kernel, valid HostMemory)"


LAUNCHER_LIB = REPO / "build/cuda/libqg_cuda.so"


@pytest.mark.skipif(not LAUNCHER_LIB.is_file(), reason="make cuda-launchers has not been run")
def test_launcher_library_host_side_without_gpu():
    gpu_test = import_gpu_test()
    lib = gpu_test.load_launchers(LAUNCHER_LIB)
    # TF's SAME/VALID rules: (size, window, stride, dilation, padding) -> (out, pad before).
    cases = {(299, 3, 2, 1, "VALID"): (149, 0), (299, 3, 2, 1, "SAME"): (150, 1),
             (17, 7, 1, 1, "SAME"): (17, 3), (15, 3, 1, 2, "SAME"): (15, 2),
             (4, 5, 1, 1, "VALID"): (0, 0), (8, 8, 1, 1, "VALID"): (1, 0),
             (35, 3, 2, 1, "VALID"): (17, 0), (0, 3, 1, 1, "SAME"): (0, 0)}
    for args, want in cases.items():
        assert gpu_test.output_size(lib, *args) == want, args
    with pytest.raises(ValueError):
        gpu_test.output_size(lib, 5, 3, 0, 1, "SAME")
    # Packed filter: [n rounded to 128][k rounded to 64] bytes + n_pad int32 column sums.
    assert lib.qg_cuda_packed_filter_bytes(27, 32) == 128 * 64 + 128 * 4
    assert lib.qg_cuda_packed_filter_bytes(2048, 1000) == 1024 * 2048 + 1024 * 4
    assert lib.qg_cuda_packed_filter_bytes(0, 5) == 128 * 64 + 128 * 4
    # Empty work is a no-op; real work without a GPU is an error code, not a crash.
    assert lib.qg_cuda_quantize(None, 0, -1.0, 1.0, None, None) == 0
    if gpu_test.gpu_unavailable_reason() is not None:
        assert lib.qg_cuda_quantize(None, 10, -1.0, 1.0, None, None) != 0


def test_epilogue_range_parameters_follow_ops_md(tmp_path):
    # The host half of the epilogue (qg_common.cuh, compiled here by g++ without nvcc): scale,
    # zero point, the quint8 clamp bounds per activation and the summand factor, against
    # OPS.md's formulas evaluated in numpy float32.
    import numpy as np
    rng = np.random.default_rng(7)
    ranges = [(-1.0, 1.0), (0.0, 6.0), (-0.3, 0.2), (-2.5, 7.75), (0.0, 1e-4), (-1e-3, 50.0),
              (-10.0, 0.5)] + [tuple(sorted((float(np.float32(-abs(a))), float(np.float32(b)))))
                               for a, b in rng.uniform(0.01, 8.0, (20, 2))]
    lines = []
    for i, (lo_x, hi_x) in enumerate(ranges):
        lo_o, hi_o = ranges[(i + 3) % len(ranges)]
        lo_s, hi_s = ranges[(i + 5) % len(ranges)]
        for act in (0, 1, 2):
            lines.append(f"show({lo_x!r}f, {hi_x!r}f, {lo_o!r}f, {hi_o!r}f, {lo_s!r}f, "
                         f"{hi_s!r}f, {act});")
    out = compile_c(tmp_path, textwrap.dedent("""
        #include <stdio.h>
        #include "qg_common.cuh"
        static void show(float a, float b, float c, float d, float e, float f, int act) {
          qg_epilogue ep = {};
          ep.min_input = a; ep.max_input = b; ep.min_output = c; ep.max_output = d;
          ep.min_summand = e; ep.max_summand = f; ep.activation = (qg_activation)act;
          ep.out_type = QG_OUT_QUINT8; ep.summand = (const uint8_t*)&ep;  /* non-null */
          qg_cuda::EpilogueArgs r = qg_cuda::make_epilogue(ep);
          printf("%a %d %a %a %d %d %a %d\\n", r.scale_x, r.zp_x, r.scale_out, r.zp_out_f, r.lo,
                 r.hi, r.summand_mul, r.zp_s);
        }
        int main() {
        """) + "\n".join(lines) + "\nreturn 0;\n}\n", "c++")
    f32 = np.float32

    def params(lo, hi):
        scale = (f32(hi) - f32(lo)) / f32(255)
        return scale, int(np.clip(np.rint(-f32(lo) / scale), 0, 255))

    got = out.splitlines()
    k = 0
    for i, (lo_x, hi_x) in enumerate(ranges):
        lo_o, hi_o = ranges[(i + 3) % len(ranges)]
        lo_s, hi_s = ranges[(i + 5) % len(ranges)]
        for act in (0, 1, 2):
            sx, zx = params(lo_x, hi_x)
            so, zo = params(lo_o, hi_o)
            ss, zs = params(lo_s, hi_s)
            lo = zo if act in (1, 2) else 0
            hi = int(min(255, zo + np.rint(f32(6) / so))) if act == 2 else 255
            f = got[k].split()
            k += 1
            assert float.fromhex(f[0]) == sx and int(f[1]) == zx, (lo_x, hi_x)
            assert float.fromhex(f[2]) == so and float.fromhex(f[3]) == zo, (lo_o, hi_o)
            assert (int(f[4]), int(f[5])) == (lo, hi), (lo_o, hi_o, act)
            assert float.fromhex(f[6]) == f32(ss) / f32(so) and int(f[7]) == zs
