#!/usr/bin/env python3
"""Standalone GPU test of the Qg CUDA launchers (kernels/cuda/), no TensorFlow.

    python3 tools/gpu_test.py --lib build/cuda/libqg_cuda.so [--quick] [--no-bench] [--json F]

(`make gpu-test` builds the library and runs this.) It
  1. checks every CUDA launcher against quantize_graph/kernels/numpy_reference.py on random
     shapes and on Inception-v3's conv/matmul shapes: int32 accumulators and quint8 outputs must
     be identical, float outputs equal to within float32 rounding;
  2. times int8 conv / GEMM against cuBLAS FP32 and TF32 (PyTorch GEMM on each conv's im2col
     shape) and cuDNN (torch conv2d) at batch 1 and 32, and prints a table (--json: also JSON).
Device memory comes from PyTorch (or CuPy, correctness only). Exit status: 0 all checks pass,
1 a check failed or the set-up is broken, 77 skipped: no CUDA driver or no GPU here.
"""
import argparse
import ctypes
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SKIP = 77

# ---------------------------------------------------------------------------------------------
# Is there a GPU? (CUDA driver API through ctypes: works with neither torch nor cupy imported.)


def gpu_unavailable_reason():
    """None if a CUDA device is usable, else a one-line reason."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "no CUDA driver (libcuda.so.1 not found)"
    rc = cuda.cuInit(0)
    if rc != 0:
        return f"CUDA driver present but cuInit failed (CUresult {rc}): no usable GPU"
    count = ctypes.c_int(0)
    rc = cuda.cuDeviceGetCount(ctypes.byref(count))
    if rc != 0 or count.value == 0:
        return "no CUDA device"
    return None


# ---------------------------------------------------------------------------------------------
# The reference: loaded from its file, so the quantize_graph package (which imports
# TensorFlow) is never imported.


def load_reference(path):
    spec = importlib.util.spec_from_file_location("qg_numpy_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def first(result):
    """Reference functions may return the array or (array, min, max)."""
    return result[0] if isinstance(result, tuple) else result


# ---------------------------------------------------------------------------------------------
# The launcher library (kernels/cuda/qg_cuda.h) through ctypes.

ACT = {"none": 0, "relu": 1, "relu6": 2}
OUT = {"quint8": 0, "float": 1, "int32": 2}
OUT_DTYPE = {"quint8": np.uint8, "float": np.float32, "int32": np.int32}


class ConvShape(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int) for n in (
        "batch", "in_h", "in_w", "in_c", "filter_h", "filter_w", "out_c", "stride_h",
        "stride_w", "dilation_h", "dilation_w", "pad_top", "pad_left", "out_h", "out_w")]


class Epilogue(ctypes.Structure):
    _fields_ = [("filter_scale", ctypes.c_void_p), ("bias", ctypes.c_void_p),
                ("min_input", ctypes.c_float), ("max_input", ctypes.c_float),
                ("min_output", ctypes.c_float), ("max_output", ctypes.c_float),
                ("activation", ctypes.c_int), ("out_type", ctypes.c_int),
                ("summand", ctypes.c_void_p),
                ("min_summand", ctypes.c_float), ("max_summand", ctypes.c_float)]


class PoolShape(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int) for n in (
        "batch", "in_h", "in_w", "channels", "window_h", "window_w", "stride_h", "stride_w",
        "pad_top", "pad_left", "out_h", "out_w")]


def load_launchers(path):
    lib = ctypes.CDLL(str(path))
    P, I, I64, F, S = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_float, ctypes.c_size_t
    sig = {
        "qg_cuda_conv_output_size": (I, [I, I, I, I, I, ctypes.POINTER(I), ctypes.POINTER(I)]),
        "qg_cuda_packed_filter_bytes": (S, [I, I]),
        "qg_cuda_pack_filter": (I, [P, I, I, P, P]),
        "qg_cuda_conv2d": (I, [P, P, ctypes.POINTER(ConvShape), ctypes.POINTER(Epilogue), P, P]),
        "qg_cuda_matmul": (I, [P, P, I, I, I, ctypes.POINTER(Epilogue), P, P]),
        "qg_cuda_depthwise_conv2d": (I, [P, P, ctypes.POINTER(ConvShape),
                                         ctypes.POINTER(Epilogue), P, P]),
        "qg_cuda_quantize": (I, [P, I64, F, F, P, P]),
        "qg_cuda_dequantize": (I, [P, I64, F, F, P, P]),
        "qg_cuda_requantize": (I, [P, I64, I, P, F, F, P, P]),
        "qg_cuda_max_pool": (I, [P, ctypes.POINTER(PoolShape), P, P]),
        "qg_cuda_avg_pool": (I, [P, ctypes.POINTER(PoolShape), P, P]),
        "qg_cuda_concat": (I, [ctypes.POINTER(P), ctypes.POINTER(I64), ctypes.POINTER(F),
                               ctypes.POINTER(F), I, I64, I64, F, F, P, P]),
    }
    for name, (restype, argtypes) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def check_launch(rc, what):
    if rc != 0:
        raise RuntimeError(f"{what}: launcher returned cudaError_t {rc}")


def output_size(lib, size, window, stride, dilation, padding):
    out, pad = ctypes.c_int(), ctypes.c_int()
    rc = lib.qg_cuda_conv_output_size(size, window, stride, dilation, padding == "SAME",
                                      ctypes.byref(out), ctypes.byref(pad))
    if rc != 0:
        raise ValueError(f"bad geometry: size {size}, window {window}, stride {stride}")
    return out.value, pad.value


# ---------------------------------------------------------------------------------------------
# Device memory: PyTorch (also the cuBLAS/cuDNN baseline) or CuPy.


class TorchDevice:
    name = "torch"

    def __init__(self):
        import torch
        self.torch = torch
        self.device = torch.device("cuda")
        torch.cuda.init()
        self.description = torch.cuda.get_device_name(0)

    def put(self, a):
        return self.torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def empty(self, shape, dtype):
        t = {np.uint8: self.torch.uint8, np.int8: self.torch.int8, np.int32: self.torch.int32,
             np.float32: self.torch.float32}[np.dtype(dtype).type]
        return self.torch.empty(tuple(int(d) for d in shape), dtype=t, device=self.device)

    def bytes(self, n):
        return self.torch.empty(max(int(n), 1), dtype=self.torch.uint8, device=self.device)

    @staticmethod
    def ptr(t):
        return t.data_ptr()

    def get(self, t):
        self.torch.cuda.synchronize()
        return t.cpu().numpy()

    def stream(self):
        return self.torch.cuda.current_stream().cuda_stream

    def sync(self):
        self.torch.cuda.synchronize()

    def time_ms(self, fn, runs, warmup=3, repeats=5):
        """Median over `repeats` of the mean time of `runs` back-to-back calls (CUDA events)."""
        for _ in range(warmup):
            fn()
        self.sync()
        samples = []
        for _ in range(repeats):
            start = self.torch.cuda.Event(enable_timing=True)
            end = self.torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(runs):
                fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) / runs)
        return statistics.median(samples)


class CupyDevice:
    name = "cupy"

    def __init__(self):
        import cupy
        self.cp = cupy
        props = cupy.cuda.runtime.getDeviceProperties(0)
        self.description = props["name"].decode() if isinstance(props["name"], bytes) \
            else str(props["name"])

    def put(self, a):
        return self.cp.asarray(np.ascontiguousarray(a))

    def empty(self, shape, dtype):
        return self.cp.empty(tuple(int(d) for d in shape), dtype=dtype)

    def bytes(self, n):
        return self.cp.empty(max(int(n), 1), dtype=np.uint8)

    @staticmethod
    def ptr(a):
        return a.data.ptr

    def get(self, a):
        self.sync()
        return self.cp.asnumpy(a)

    def stream(self):
        return self.cp.cuda.get_current_stream().ptr

    def sync(self):
        self.cp.cuda.runtime.deviceSynchronize()

    def time_ms(self, fn, runs, warmup=3, repeats=5):
        for _ in range(warmup):
            fn()
        self.sync()
        samples = []
        for _ in range(repeats):
            start, end = self.cp.cuda.Event(), self.cp.cuda.Event()
            start.record()
            for _ in range(runs):
                fn()
            end.record()
            end.synchronize()
            samples.append(self.cp.cuda.get_elapsed_time(start, end) / runs)
        return statistics.median(samples)


def open_device():
    errors = []
    for cls in (TorchDevice, CupyDevice):
        try:
            return cls()
        except Exception as e:  # ImportError, or a framework without CUDA support
            errors.append(f"{cls.name}: {e}")
    raise RuntimeError("neither PyTorch nor CuPy can allocate GPU memory (" +
                       "; ".join(errors) + ")")


# ---------------------------------------------------------------------------------------------
# The GPU side of each op: numpy in, numpy out, through the launchers.


class Gpu:
    def __init__(self, lib, dev):
        self.lib, self.dev = lib, dev

    def _epilogue(self, keep, filter_scale, bias, min_x, max_x, min_out, max_out, activation,
                  out_type, summand, min_summand, max_summand):
        d = self.dev
        fs, b = d.put(filter_scale.astype(np.float32)), d.put(bias.astype(np.float32))
        keep += [fs, b]
        ep = Epilogue(d.ptr(fs), d.ptr(b), min_x, max_x, min_out, max_out, ACT[activation],
                      OUT[out_type], None, 0.0, 0.0)
        if summand is not None:
            s = d.put(summand)
            keep.append(s)
            ep.summand, ep.min_summand, ep.max_summand = d.ptr(s), min_summand, max_summand
        return ep

    def pack(self, w2d):
        """[k][n] int8 -> packed device buffer (kept by the caller)."""
        d = self.dev
        k, n = w2d.shape
        w = d.put(w2d.astype(np.int8))
        packed = d.bytes(self.lib.qg_cuda_packed_filter_bytes(k, n))
        check_launch(self.lib.qg_cuda_pack_filter(d.ptr(w), k, n, d.ptr(packed), d.stream()),
                     "pack_filter")
        d.sync()
        return packed

    def conv_shape(self, x_shape, w_shape, strides, padding, dilations, depthwise=False):
        n, h, w, c = x_shape
        kh, kw, _, co = w_shape
        oh, pt = output_size(self.lib, h, kh, strides[0], dilations[0], padding)
        ow, pl = output_size(self.lib, w, kw, strides[1], dilations[1], padding)
        return ConvShape(n, h, w, c, kh, kw, c * co if depthwise else co, strides[0],
                         strides[1], dilations[0], dilations[1], pt, pl, oh, ow)

    def conv2d(self, q_x, min_x, max_x, q_w, filter_scale, bias, min_out, max_out, strides,
               padding, dilations, activation="none", out_type="quint8", summand=None,
               min_summand=None, max_summand=None, packed=None):
        d, keep = self.dev, []
        s = self.conv_shape(q_x.shape, q_w.shape, strides, padding, dilations)
        if packed is None:
            packed = self.pack(q_w.reshape(-1, q_w.shape[3]))
        x = d.put(q_x)
        out = d.empty((s.batch, s.out_h, s.out_w, s.out_c), OUT_DTYPE[out_type])
        ep = self._epilogue(keep, filter_scale, bias, min_x, max_x, min_out, max_out,
                            activation, out_type, summand, min_summand, max_summand)
        check_launch(self.lib.qg_cuda_conv2d(d.ptr(x), d.ptr(packed), ctypes.byref(s),
                                             ctypes.byref(ep), d.ptr(out), d.stream()), "conv2d")
        return d.get(out)

    def depthwise_conv2d(self, q_x, min_x, max_x, q_w, filter_scale, bias, min_out, max_out,
                         strides, padding, dilations, activation="none", out_type="quint8"):
        d, keep = self.dev, []
        s = self.conv_shape(q_x.shape, q_w.shape, strides, padding, dilations, depthwise=True)
        x, w = d.put(q_x), d.put(q_w.astype(np.int8))
        out = d.empty((s.batch, s.out_h, s.out_w, s.out_c), OUT_DTYPE[out_type])
        ep = self._epilogue(keep, filter_scale, bias, min_x, max_x, min_out, max_out,
                            activation, out_type, None, None, None)
        check_launch(self.lib.qg_cuda_depthwise_conv2d(d.ptr(x), d.ptr(w), ctypes.byref(s),
                                                       ctypes.byref(ep), d.ptr(out),
                                                       d.stream()), "depthwise_conv2d")
        return d.get(out)

    def matmul(self, q_a, min_a, max_a, q_b, b_scale, bias, min_out, max_out,
               activation="none", out_type="quint8", summand=None, min_summand=None,
               max_summand=None):
        d, keep = self.dev, []
        m, k = q_a.shape
        n = q_b.shape[1]
        packed = self.pack(q_b)
        a = d.put(q_a)
        out = d.empty((m, n), OUT_DTYPE[out_type])
        ep = self._epilogue(keep, b_scale, bias, min_a, max_a, min_out, max_out, activation,
                            out_type, summand, min_summand, max_summand)
        check_launch(self.lib.qg_cuda_matmul(d.ptr(a), d.ptr(packed), m, k, n, ctypes.byref(ep),
                                             d.ptr(out), d.stream()), "matmul")
        return d.get(out)

    def quantize(self, x, min_v, max_v):
        d = self.dev
        xd, out = d.put(x.astype(np.float32)), d.empty(x.shape, np.uint8)
        check_launch(self.lib.qg_cuda_quantize(d.ptr(xd), x.size, min_v, max_v, d.ptr(out),
                                               d.stream()), "quantize")
        return d.get(out)

    def dequantize(self, q, min_v, max_v):
        d = self.dev
        qd, out = d.put(q), d.empty(q.shape, np.float32)
        check_launch(self.lib.qg_cuda_dequantize(d.ptr(qd), q.size, min_v, max_v, d.ptr(out),
                                                 d.stream()), "dequantize")
        return d.get(out)

    def requantize(self, acc, input_scale, min_out, max_out):
        d = self.dev
        scale = np.atleast_1d(np.asarray(input_scale, np.float32))
        ad, sd, out = d.put(acc.astype(np.int32)), d.put(scale), d.empty(acc.shape, np.uint8)
        check_launch(self.lib.qg_cuda_requantize(d.ptr(ad), acc.size, scale.size, d.ptr(sd),
                                                 min_out, max_out, d.ptr(out), d.stream()),
                     "requantize")
        return d.get(out)

    def _pool(self, fn, q, ksize, strides, padding):
        d = self.dev
        n, h, w, c = q.shape
        oh, pt = output_size(self.lib, h, ksize[0], strides[0], 1, padding)
        ow, pl = output_size(self.lib, w, ksize[1], strides[1], 1, padding)
        s = PoolShape(n, h, w, c, ksize[0], ksize[1], strides[0], strides[1], pt, pl, oh, ow)
        x, out = d.put(q), d.empty((n, oh, ow, c), np.uint8)
        check_launch(fn(d.ptr(x), ctypes.byref(s), d.ptr(out), d.stream()), "pool")
        return d.get(out)

    def max_pool(self, q, ksize, strides, padding):
        return self._pool(self.lib.qg_cuda_max_pool, q, ksize, strides, padding)

    def avg_pool(self, q, ksize, strides, padding):
        return self._pool(self.lib.qg_cuda_avg_pool, q, ksize, strides, padding)

    def concat(self, values, mins, maxes, min_out, max_out, axis):
        d = self.dev
        rank = values[0].ndim
        axis = axis % rank
        shape = list(values[0].shape)
        shape[axis] = sum(v.shape[axis] for v in values)
        outer = int(np.prod(shape[:axis], dtype=np.int64))
        inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
        dv = [d.put(v) for v in values]
        out = d.empty(shape, np.uint8)
        n = len(values)
        ptrs = (ctypes.c_void_p * n)(*[d.ptr(v) for v in dv])
        sizes = (ctypes.c_int64 * n)(*[v.shape[axis] for v in values])
        lo = (ctypes.c_float * n)(*mins)
        hi = (ctypes.c_float * n)(*maxes)
        check_launch(self.lib.qg_cuda_concat(ptrs, sizes, lo, hi, n, outer, inner, min_out,
                                             max_out, d.ptr(out), d.stream()), "concat")
        return d.get(out)


class ReferenceAsGpu:
    """--dry-run: the reference stands in for the GPU, to check this script's own plumbing
    (case generation, reference signatures, comparisons) on a machine without a GPU."""

    def __init__(self, ref):
        self.ref = ref

    def conv2d(self, q_x, min_x, max_x, q_w, *args, out_type="quint8", **kw):
        if out_type == "int32":
            strides, padding, dilations = args[4], args[5], args[6]
            zp = self.ref.range_params(min_x, max_x)[1]
            return self.ref.conv2d_acc(q_x, zp, q_w, strides, padding, dilations)
        return first(self.ref.conv2d(q_x, min_x, max_x, q_w, *args, out_type=out_type, **kw))

    def depthwise_conv2d(self, q_x, min_x, max_x, q_w, *args, out_type="quint8", **kw):
        if out_type == "int32":
            strides, padding, dilations = args[4], args[5], args[6]
            zp = self.ref.range_params(min_x, max_x)[1]
            return self.ref.depthwise_conv2d_acc(q_x, zp, q_w, strides, padding, dilations)
        return first(self.ref.depthwise_conv2d(q_x, min_x, max_x, q_w, *args,
                                               out_type=out_type, **kw))

    def matmul(self, q_a, min_a, max_a, q_b, *args, out_type="quint8", **kw):
        if out_type == "int32":
            return self.ref.matmul_acc(q_a, self.ref.range_params(min_a, max_a)[1], q_b)
        return first(self.ref.matmul(q_a, min_a, max_a, q_b, *args, out_type=out_type, **kw))

    def __getattr__(self, name):
        fn = getattr(self.ref, name)
        return lambda *a, **kw: first(fn(*a, **kw))


# ---------------------------------------------------------------------------------------------
# Cases.

# Inception-v3 (Keras InceptionV3, 299x299 input): (name, H, W, C_in, C_out, kh, kw, stride,
# padding). The 1x1/3x3/5x5 convs of the 35x35 blocks, the 1x7/7x1 pairs of the 17x17 blocks,
# the 1x3/3x1 pairs of the 8x8 blocks and the grid reductions.
INCEPTION_CONVS = [
    ("conv 299x299x3->32 3x3/2", 299, 299, 3, 32, 3, 3, 2, "VALID"),
    ("conv 149x149x32->32 3x3", 149, 149, 32, 32, 3, 3, 1, "VALID"),
    ("conv 147x147x32->64 3x3", 147, 147, 32, 64, 3, 3, 1, "SAME"),
    ("conv 73x73x64->80 1x1", 73, 73, 64, 80, 1, 1, 1, "VALID"),
    ("conv 73x73x80->192 3x3", 73, 73, 80, 192, 3, 3, 1, "VALID"),
    ("conv 35x35x192->64 1x1", 35, 35, 192, 64, 1, 1, 1, "SAME"),
    ("conv 35x35x48->64 5x5", 35, 35, 48, 64, 5, 5, 1, "SAME"),
    ("conv 35x35x64->96 3x3", 35, 35, 64, 96, 3, 3, 1, "SAME"),
    ("conv 35x35x288->384 3x3/2", 35, 35, 288, 384, 3, 3, 2, "VALID"),
    ("conv 17x17x768->192 1x1", 17, 17, 768, 192, 1, 1, 1, "SAME"),
    ("conv 17x17x192->192 1x7", 17, 17, 192, 192, 1, 7, 1, "SAME"),
    ("conv 17x17x192->192 7x1", 17, 17, 192, 192, 7, 1, 1, "SAME"),
    ("conv 17x17x192->320 3x3/2", 17, 17, 192, 320, 3, 3, 2, "VALID"),
    ("conv 8x8x1280->320 1x1", 8, 8, 1280, 320, 1, 1, 1, "SAME"),
    ("conv 8x8x448->384 3x3", 8, 8, 448, 384, 3, 3, 1, "SAME"),
    ("conv 8x8x384->384 1x3", 8, 8, 384, 384, 1, 3, 1, "SAME"),
    ("conv 8x8x2048->192 1x1", 8, 8, 2048, 192, 1, 1, 1, "SAME"),
]
INCEPTION_MATMUL = ("matmul 2048->1000", 2048, 1000)

# Random conv shapes: odd channel counts (the byte-gather path), C_in % 16 == 0 (the 128-bit
# path), strides, dilations, both paddings, batch > 1, tiny outputs, C_out not a multiple of 8.
# (n, h, w, c_in, c_out, kh, kw, strides, padding, dilations)
RANDOM_CONVS = [
    (1, 7, 9, 3, 5, 3, 3, (1, 1), "SAME", (1, 1)),
    (2, 11, 10, 16, 24, 3, 3, (2, 2), "SAME", (1, 1)),
    (2, 13, 12, 20, 33, 3, 2, (1, 2), "VALID", (1, 1)),
    (1, 15, 15, 32, 17, 3, 3, (1, 1), "SAME", (2, 2)),
    (3, 6, 5, 48, 130, 1, 1, (1, 1), "VALID", (1, 1)),
    (1, 9, 9, 64, 64, 5, 5, (2, 1), "SAME", (1, 1)),
    (1, 4, 4, 7, 9, 5, 5, (1, 1), "SAME", (1, 1)),      # window larger than the image
    (2, 3, 3, 16, 8, 3, 3, (1, 1), "VALID", (1, 1)),    # 1x1 output
    (4, 40, 40, 32, 160, 3, 3, (1, 1), "SAME", (1, 1)),  # enough blocks for the 128x128 tiles
]
RANDOM_MATMULS = [(1, 16, 8), (7, 33, 19), (64, 256, 130), (200, 2048, 1000), (3, 1, 5)]
RANDOM_DEPTHWISE = [  # (n, h, w, c, multiplier, kh, kw, strides, padding, dilations)
    (1, 9, 9, 8, 1, 3, 3, (1, 1), "SAME", (1, 1)),
    (2, 12, 11, 5, 2, 3, 3, (2, 2), "SAME", (1, 1)),
    (1, 14, 14, 16, 1, 3, 3, (1, 1), "VALID", (2, 2)),
    (1, 7, 7, 32, 3, 5, 5, (1, 1), "SAME", (1, 1)),
]


def random_range(rng, nonneg=False):
    lo = 0.0 if nonneg or rng.random() < 0.3 else -float(rng.uniform(0.05, 3.0))
    hi = float(rng.uniform(0.5, 6.0))
    return float(np.float32(lo)), float(np.float32(hi))


def output_range(rng, y):
    """A quint8 range that covers most of y (some saturation, most values inside)."""
    lo, hi = np.percentile(y, 1), np.percentile(y, 99)
    lo = min(float(lo), 0.0) - 1e-3
    hi = max(float(hi), 1e-2)
    return float(np.float32(lo)), float(np.float32(hi))


class Checker:
    def __init__(self):
        self.rows = []
        self.failures = 0

    def compare(self, case, what, got, want, exact=True):
        got, want = np.asarray(got), np.asarray(want)
        if got.shape != want.shape:
            ok, detail = False, f"shape {got.shape} != reference {want.shape}"
        else:
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            worst = float(diff.max()) if diff.size else 0.0
            n_bad = int(np.count_nonzero(diff)) if exact else int(np.count_nonzero(
                diff > 1e-6 * np.maximum(1.0, np.abs(want.astype(np.float64)))))
            ok = n_bad == 0
            detail = "exact" if worst == 0 else f"max |diff| {worst:g}, {n_bad} of {diff.size} off"
        self.failures += not ok
        self.rows.append({"case": case, "check": what, "ok": ok, "detail": detail})
        print(f"{'PASS' if ok else 'FAIL'}  {case}: {what}: {detail}", flush=True)


def conv_case(rng, gpu, ref, check, name, q_x, q_w, strides, padding, dilations,
              depthwise=False, all_epilogues=True):
    c_out = q_w.shape[2] * q_w.shape[3] if depthwise else q_w.shape[3]
    min_x, max_x = random_range(rng)
    fs = rng.uniform(0.002, 0.03, c_out).astype(np.float32)
    bias = rng.normal(0.0, 0.5, c_out).astype(np.float32)
    gpu_fn = gpu.depthwise_conv2d if depthwise else gpu.conv2d
    ref_fn = ref.depthwise_conv2d if depthwise else ref.conv2d
    acc_fn = ref.depthwise_conv2d_acc if depthwise else ref.conv2d_acc
    zp_x = ref.range_params(min_x, max_x)[1]
    geom = (strides, padding, dilations)

    acc_ref = acc_fn(q_x, zp_x, q_w, *geom)
    acc = gpu_fn(q_x, min_x, max_x, q_w, fs, bias, 0.0, 1.0, *geom, out_type="int32")
    check.compare(name, "int32 accumulators", acc, acc_ref)

    y = first(ref_fn(q_x, min_x, max_x, q_w, fs, bias, 0.0, 1.0, *geom, out_type="float"))
    min_o, max_o = output_range(rng, y)
    for act in (("none", "relu", "relu6") if all_epilogues else ("relu",)):
        args = (q_x, min_x, max_x, q_w, fs, bias, min_o, max_o, *geom)
        check.compare(name, f"quint8 {act}", gpu_fn(*args, activation=act),
                      first(ref_fn(*args, activation=act)))
        if all_epilogues:
            check.compare(name, f"float {act}", gpu_fn(*args, activation=act, out_type="float"),
                          first(ref_fn(*args, activation=act, out_type="float")), exact=False)
    if not depthwise and all_epilogues:
        summand = rng.integers(0, 256, acc_ref.shape, dtype=np.uint8)
        min_s, max_s = random_range(rng)
        args = (q_x, min_x, max_x, q_w, fs, bias, min_o, max_o, *geom)
        kw = dict(summand=summand, min_summand=min_s, max_summand=max_s)
        check.compare(name, "quint8 relu + summand", gpu_fn(*args, activation="relu", **kw),
                      first(ref_fn(*args, activation="relu", **kw)))
        check.compare(name, "float + summand", gpu_fn(*args, out_type="float", **kw),
                      first(ref_fn(*args, out_type="float", **kw)), exact=False)


def matmul_case(rng, gpu, ref, check, name, m, k, n, all_epilogues=True):
    q_a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    q_b = rng.integers(-127, 128, (k, n), dtype=np.int8)
    min_a, max_a = random_range(rng)
    bs = rng.uniform(0.001, 0.02, n).astype(np.float32)
    bias = rng.normal(0.0, 0.5, n).astype(np.float32)
    acc_ref = ref.matmul_acc(q_a, ref.range_params(min_a, max_a)[1], q_b)
    check.compare(name, "int32 accumulators",
                  gpu.matmul(q_a, min_a, max_a, q_b, bs, bias, 0.0, 1.0, out_type="int32"),
                  acc_ref)
    y = first(ref.matmul(q_a, min_a, max_a, q_b, bs, bias, 0.0, 1.0, out_type="float"))
    min_o, max_o = output_range(rng, y)
    args = (q_a, min_a, max_a, q_b, bs, bias, min_o, max_o)
    for act in (("none", "relu", "relu6") if all_epilogues else ("none",)):
        check.compare(name, f"quint8 {act}", gpu.matmul(*args, activation=act),
                      first(ref.matmul(*args, activation=act)))
    if all_epilogues:
        check.compare(name, "float relu", gpu.matmul(*args, activation="relu", out_type="float"),
                      first(ref.matmul(*args, activation="relu", out_type="float")), exact=False)
        summand = rng.integers(0, 256, (m, n), dtype=np.uint8)
        min_s, max_s = random_range(rng)
        kw = dict(summand=summand, min_summand=min_s, max_summand=max_s)
        check.compare(name, "quint8 + summand", gpu.matmul(*args, **kw),
                      first(ref.matmul(*args, **kw)))


def elementwise_cases(rng, gpu, ref, check):
    for shape in [(1000,), (3, 17, 5), (2, 35, 35, 64)]:
        min_v, max_v = random_range(rng)
        x = rng.uniform(min_v * 1.2 - 0.1, max_v * 1.2, shape).astype(np.float32)
        name = f"quantize {shape} [{min_v:.3f}, {max_v:.3f}]"
        check.compare(name, "quint8", gpu.quantize(x, min_v, max_v),
                      first(ref.quantize(x, min_v, max_v)))
        q = rng.integers(0, 256, shape, dtype=np.uint8)
        check.compare(f"dequantize {shape}", "float", gpu.dequantize(q, min_v, max_v),
                      first(ref.dequantize(q, min_v, max_v)), exact=False)
        acc = rng.integers(-40000, 40000, shape, dtype=np.int32)
        per_channel = rng.uniform(1e-5, 1e-4, shape[-1]).astype(np.float32)
        for scale, kind in ((per_channel, "per channel"), (np.float32(3e-5), "one scale")):
            min_o, max_o = random_range(rng)
            check.compare(f"requantize {shape} {kind}", "quint8",
                          gpu.requantize(acc, scale, min_o, max_o),
                          first(ref.requantize(acc, scale, min_o, max_o)))


def pool_cases(rng, gpu, ref, check):
    for shape, ksize, strides, padding in [
            ((1, 147, 147, 64), (3, 3), (2, 2), "VALID"),   # Inception's max pools
            ((1, 35, 35, 192), (3, 3), (1, 1), "SAME"),     # Inception's avg pools
            ((2, 8, 8, 2048), (8, 8), (1, 1), "VALID"),     # the global average pool
            ((2, 9, 7, 5), (2, 3), (2, 2), "SAME")]:
        q = rng.integers(0, 256, shape, dtype=np.uint8)
        name = f"pool {shape} {ksize}/{strides} {padding}"
        check.compare(name, "max", gpu.max_pool(q, ksize, strides, padding),
                      first(ref.max_pool(q, ksize, strides, padding)))
        check.compare(name, "avg", gpu.avg_pool(q, ksize, strides, padding),
                      first(ref.avg_pool(q, ksize, strides, padding)))


def concat_cases(rng, gpu, ref, check):
    for shapes, axis in [([(1, 35, 35, 64), (1, 35, 35, 64), (1, 35, 35, 96), (1, 35, 35, 32)], 3),
                         ([(2, 3, 4), (2, 5, 4)], 1), ([(4, 6), (4, 1), (4, 3)], -1),
                         ([(3, 2)], 0)]:
        values = [rng.integers(0, 256, s, dtype=np.uint8) for s in shapes]
        ranges = [random_range(rng) for _ in shapes]
        min_o, max_o = min(r[0] for r in ranges), max(r[1] for r in ranges)
        mins, maxes = [r[0] for r in ranges], [r[1] for r in ranges]
        check.compare(f"concat {len(shapes)} inputs axis {axis}", "quint8",
                      gpu.concat(values, mins, maxes, min_o, max_o, axis),
                      first(ref.concat(values, mins, maxes, min_o, max_o, axis)))
    # Same range everywhere: an exact copy.
    values = [rng.integers(0, 256, (2, 4, 3), dtype=np.uint8) for _ in range(2)]
    check.compare("concat same ranges", "copy",
                  gpu.concat(values, [-1.0, -1.0], [2.0, 2.0], -1.0, 2.0, 2),
                  np.concatenate(values, axis=2))


def correctness(gpu, ref, check, seed, quick):
    rng = np.random.default_rng(seed)
    elementwise_cases(rng, gpu, ref, check)
    pool_cases(rng, gpu, ref, check)
    concat_cases(rng, gpu, ref, check)
    for (n, h, w, ci, co, kh, kw, st, pad, dil) in RANDOM_CONVS[:4] if quick else RANDOM_CONVS:
        q_x = rng.integers(0, 256, (n, h, w, ci), dtype=np.uint8)
        q_w = rng.integers(-127, 128, (kh, kw, ci, co), dtype=np.int8)
        conv_case(rng, gpu, ref, check, f"conv {n}x{h}x{w}x{ci}->{co} {kh}x{kw}/{st} {pad} "
                  f"dil {dil}", q_x, q_w, st, pad, dil)
    for (n, h, w, c, mult, kh, kw, st, pad, dil) in RANDOM_DEPTHWISE:
        q_x = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
        q_w = rng.integers(-127, 128, (kh, kw, c, mult), dtype=np.int8)
        conv_case(rng, gpu, ref, check, f"depthwise {n}x{h}x{w}x{c} x{mult} {kh}x{kw}/{st} "
                  f"{pad} dil {dil}", q_x, q_w, st, pad, dil, depthwise=True)
    for m, k, n in RANDOM_MATMULS[:3] if quick else RANDOM_MATMULS:
        matmul_case(rng, gpu, ref, check, f"matmul {m}x{k} * {k}x{n}", m, k, n)
    if quick:
        return
    for name, h, w, ci, co, kh, kw, st, pad in INCEPTION_CONVS:
        q_x = rng.integers(0, 256, (1, h, w, ci), dtype=np.uint8)
        q_w = rng.integers(-127, 128, (kh, kw, ci, co), dtype=np.int8)
        conv_case(rng, gpu, ref, check, "inception " + name, q_x, q_w, (st, st), pad, (1, 1),
                  all_epilogues=False)
    name, k, n = INCEPTION_MATMUL
    for batch in (1, 32):
        matmul_case(rng, gpu, ref, check, f"inception {name} batch {batch}", batch, k, n,
                    all_epilogues=False)


# ---------------------------------------------------------------------------------------------
# Timing: int8 (ours) vs cuBLAS FP32 / TF32 GEMM on the im2col shape, and cuDNN conv.


def benchmark(gpu, dev, runs, batches, quick):
    torch = dev.torch
    rng = np.random.default_rng(0)
    rows = []
    shapes = [(name, h, w, ci, co, kh, kw, st, pad) for name, h, w, ci, co, kh, kw, st, pad
              in INCEPTION_CONVS]
    if quick:
        shapes = shapes[2:3] + shapes[-4:-3]
    for batch in batches:
        for name, h, w, ci, co, kh, kw, st, pad in shapes + [("matmul", 1, 1, 2048, 1000, 1, 1,
                                                              1, "VALID")]:
            s = gpu.conv_shape((batch, h, w, ci), (kh, kw, ci, co), (st, st), pad, (1, 1))
            m, k, n = batch * s.out_h * s.out_w, kh * kw * ci, co
            x = dev.put(rng.integers(0, 256, (batch, h, w, ci), dtype=np.uint8))
            packed = gpu.pack(rng.integers(-127, 128, (k, n), dtype=np.int8))
            fs = dev.put(np.full(n, 0.01, np.float32))
            bias = dev.put(np.zeros(n, np.float32))
            out = dev.empty((m, n), np.uint8)
            ep = Epilogue(dev.ptr(fs), dev.ptr(bias), -1.0, 1.0, 0.0, 6.0, ACT["relu"],
                          OUT["quint8"], None, 0.0, 0.0)
            stream = dev.stream()
            lib = gpu.lib

            def int8():
                lib.qg_cuda_conv2d(dev.ptr(x), dev.ptr(packed), ctypes.byref(s),
                                   ctypes.byref(ep), dev.ptr(out), stream)

            check_launch(lib.qg_cuda_conv2d(dev.ptr(x), dev.ptr(packed), ctypes.byref(s),
                                            ctypes.byref(ep), dev.ptr(out), stream), name)
            t_int8 = dev.time_ms(int8, runs)
            a = torch.randn(m, k, device="cuda")
            b = torch.randn(k, n, device="cuda")
            times = {}
            for tf32 in (False, True):
                torch.backends.cuda.matmul.allow_tf32 = tf32
                torch.backends.cudnn.allow_tf32 = tf32
                times["gemm_tf32" if tf32 else "gemm_fp32"] = dev.time_ms(lambda: a @ b, runs)
                if name != "matmul":
                    xf = torch.randn(batch, ci, h, w, device="cuda").to(
                        memory_format=torch.channels_last)
                    wf = torch.randn(co, ci, kh, kw, device="cuda").to(
                        memory_format=torch.channels_last)
                    padding = "same" if pad == "SAME" else 0
                    times["cudnn_tf32" if tf32 else "cudnn_fp32"] = dev.time_ms(
                        lambda: torch.nn.functional.conv2d(xf, wf, stride=st, padding=padding),
                        runs)
                    del xf, wf
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            del a, b
            gemm_ops = 2.0 * m * n * k
            row = {"layer": "inception " + name if name != "matmul" else "inception matmul "
                   "2048->1000", "batch": batch, "m": m, "n": n, "k": k, "int8_ms": t_int8,
                   "int8_tops": gemm_ops / t_int8 / 1e9, **{f"{key}_ms": v for key, v in
                                                             times.items()}}
            row["speedup_vs_tf32_gemm"] = times["gemm_tf32"] / t_int8
            rows.append(row)
            print(f"timed {row['layer']} batch {batch}", file=sys.stderr, flush=True)
    return rows


def print_table(rows):
    head = (f"{'layer':<38} {'batch':>5} {'int8 ms':>9} {'TOPS':>6} {'fp32 gemm':>10} "
            f"{'tf32 gemm':>10} {'cudnn fp32':>10} {'cudnn tf32':>10} {'x tf32':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        def ms(key):
            return f"{r[key]:10.4f}" if key in r else f"{'-':>10}"
        print(f"{r['layer']:<38} {r['batch']:>5} {r['int8_ms']:9.4f} {r['int8_tops']:6.1f} "
              f"{ms('gemm_fp32_ms')} {ms('gemm_tf32_ms')} {ms('cudnn_fp32_ms')} "
              f"{ms('cudnn_tf32_ms')} {r['speedup_vs_tf32_gemm']:7.2f}")
    print("ms: median of 5 x mean of back-to-back runs (CUDA events). int8: our conv with the "
          "fused relu+requantize epilogue, filter packed once. gemm: cuBLAS via torch.matmul on "
          "the im2col shape (M=batch*OH*OW, K=kh*kw*C_in, N=C_out), im2col itself not timed. "
          "cudnn: torch conv2d, channels_last. x tf32 = tf32 gemm ms / int8 ms. Small layers "
          "at batch 1 may be bound by each call's host cost (ctypes here, PyTorch dispatch "
          "there), not by the GPU.")


# ---------------------------------------------------------------------------------------------


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--lib", default=str(REPO / "build/cuda/libqg_cuda.so"),
                   help="launcher-only library (make cuda-launchers)")
    p.add_argument("--reference", default=str(REPO / "quantize_graph/kernels/numpy_reference.py"))
    p.add_argument("--quick", action="store_true", help="fewer shapes (a smoke test)")
    p.add_argument("--no-bench", action="store_true", help="correctness only")
    p.add_argument("--runs", type=int, default=20, help="timed calls per sample")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--json", metavar="FILE", help="also write results as JSON ('-': stdout)")
    p.add_argument("--dry-run", action="store_true",
                   help="no GPU: the reference stands in for the launchers (checks this script)")
    args = p.parse_args(argv)

    if not args.dry_run:
        reason = gpu_unavailable_reason()
        if reason:
            print(f"gpu_test: skipped: {reason}")
            return SKIP
    if not Path(args.reference).is_file():
        print(f"gpu_test: error: {args.reference} not found (the CPU reference of the Qg ops)",
              file=sys.stderr)
        return 1
    ref = load_reference(args.reference)
    check = Checker()
    result = {"correctness": check.rows}
    if args.dry_run:
        correctness(ReferenceAsGpu(ref), ref, check, args.seed, args.quick)
    else:
        if not Path(args.lib).is_file():
            print(f"gpu_test: error: {args.lib} not found (make cuda-launchers)", file=sys.stderr)
            return 1
        try:
            dev = open_device()
            gpu = Gpu(load_launchers(args.lib), dev)
        except (OSError, RuntimeError, AttributeError) as e:
            print(f"gpu_test: error: {e}", file=sys.stderr)
            return 1
        result["device"] = dev.description
        print(f"device: {dev.description} (memory through {dev.name})", flush=True)
        start = time.time()
        correctness(gpu, ref, check, args.seed, args.quick)
        print(f"correctness: {len(check.rows) - check.failures} of {len(check.rows)} checks pass "
              f"({time.time() - start:.0f} s)", flush=True)
        if not args.no_bench:
            if dev.name != "torch":
                print("timing skipped: needs PyTorch (cuBLAS/cuDNN baselines)")
            else:
                rows = benchmark(gpu, dev, args.runs, (1, 32), args.quick)
                print_table(rows)
                result["timing"] = rows
    if args.json:
        text = json.dumps(result, indent=1)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    print(f"gpu_test: {'FAILED' if check.failures else 'ok'}: {check.failures} failing of "
          f"{len(check.rows)} checks")
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
