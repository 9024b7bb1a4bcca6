"""TF-free NumPy reference of the Qg op contract (kernels/OPS.md).

The CPU kernels, the CUDA launchers and their tests are checked against these functions:
integer accumulators must agree exactly, 8-bit outputs exactly (the epilogue is evaluated in
float32 in the order OPS.md gives, with no fused multiply-add), float outputs to rounding.
Only NumPy is imported (and quantize_graph/graph/shapes.py, by path), so the GPU harness can
use it on a machine without TensorFlow; note
that `import quantize_graph.kernels.numpy_reference` runs the package's `__init__` (which imports
TensorFlow), so without TF load this file by path:
`importlib.util.spec_from_file_location("numpy_reference", ".../numpy_reference.py")`.
"""
import importlib.util
import os

import numpy as np

_F = np.float32


def _f(x):
    return _F(x)


def range_params(min_value, max_value):
    """(scale: np.float32, zero_point: int) of the quint8 range [min, max] (max > min)."""
    mn, mx = _f(min_value), _f(max_value)
    if not (np.isfinite(mn) and np.isfinite(mx)) or mn > mx or mx == mn:
        raise ValueError(f"invalid range [{min_value}, {max_value}]")
    scale = _F((mx - mn) / _F(255.0))
    zp = np.rint(_F(-mn / scale))
    return scale, int(min(max(zp, 0.0), 255.0))


def _clamp_u8(v, lo=0, hi=255):
    return np.clip(np.rint(v), lo, hi).astype(np.uint8)


def quantize(x, min_value, max_value):
    """QgQuantize: q = clamp(rint(x / scale) + zero_point, 0, 255), float32; NaN -> 0."""
    scale, zp = range_params(min_value, max_value)
    v = np.rint(np.asarray(x, np.float32) / scale) + _F(zp)
    return np.fmin(np.fmax(v, _F(0)), _F(255)).astype(np.uint8)  # NaN -> 0


def dequantize(q, min_value, max_value):
    """QgDequantize: x = scale * (float)(q - zero_point)."""
    scale, zp = range_params(min_value, max_value)
    return (scale * (np.asarray(q).astype(np.int32) - zp).astype(np.float32)).astype(np.float32)


def requantize(acc, input_scale, min_out, max_out):
    """QgRequantize: v = (float)acc * (input_scale[c] / scale_out) + zp_out, rint, clamp."""
    scale_out, zp_out = range_params(min_out, max_out)
    m = (np.asarray(input_scale, np.float32) / scale_out).astype(np.float32)
    v = np.asarray(acc, np.int32).astype(np.float32) * m + _F(zp_out)
    return _clamp_u8(v.astype(np.float32))


def _load_shapes():
    """quantize_graph/graph/shapes.py, loaded by path: importing it through the package would
    run quantize_graph/__init__.py, which imports TensorFlow."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "graph",
                        "shapes.py")
    spec = importlib.util.spec_from_file_location("qg_graph_shapes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


window_output_size = _load_shapes().window_output_size


def _out_size(size, k, stride, dilation, padding):
    """(output size, leading padding): what the kernels take."""
    out, before, _ = window_output_size(size, k, stride, dilation, padding)
    return out, before


def _patches(x, fill, kh, kw, strides, padding, dilations):
    """x [N,H,W,C] -> patches [N,OH,OW,kh,kw,C] with `fill` where the window is outside."""
    n, h, w, c = x.shape
    oh, ph = _out_size(h, kh, strides[0], dilations[0], padding)
    ow, pw = _out_size(w, kw, strides[1], dilations[1], padding)
    out = np.full((n, oh, ow, kh, kw, c), fill, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = np.arange(oh) * strides[0] - ph + i * dilations[0]
            cols = np.arange(ow) * strides[1] - pw + j * dilations[1]
            rv, cv = (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)
            sub = x[:, rows[rv]][:, :, cols[cv]]
            out[:, np.flatnonzero(rv)[:, None], np.flatnonzero(cv)[None, :], i, j] = sub
    return out


def conv2d_acc(q_x, zp_x, q_w, strides, padding, dilations):
    """int32 acc[n,oh,ow,co] = sum (q_x - zp_x) * q_w; NHWC input, HWIO filter."""
    kh, kw, ci, co = q_w.shape
    x = np.asarray(q_x).astype(np.int64) - int(zp_x)
    p = _patches(x, 0, kh, kw, strides, padding, dilations)
    acc = p.reshape(p.shape[:3] + (kh * kw * ci,)) @ np.asarray(q_w, np.int64).reshape(-1, co)
    return acc.astype(np.int32)


def depthwise_conv2d_acc(q_x, zp_x, q_w, strides, padding, dilations):
    """Depthwise: filter [kh,kw,C,mult], output channel c * mult + m."""
    kh, kw, c, mult = q_w.shape
    x = np.asarray(q_x).astype(np.int64) - int(zp_x)
    p = _patches(x, 0, kh, kw, strides, padding, dilations)  # [N,OH,OW,kh,kw,C]
    acc = np.einsum("nhwijc,ijcm->nhwcm", p, np.asarray(q_w, np.int64))
    return acc.reshape(acc.shape[:3] + (c * mult,)).astype(np.int32)


def matmul_acc(q_a, zp_a, q_b):
    """int32 acc[m,n] = sum_k (q_a[m,k] - zp_a) * q_b[k,n]."""
    a = np.asarray(q_a).astype(np.int64) - int(zp_a)
    return (a @ np.asarray(q_b, np.int64)).astype(np.int32)


def epilogue(acc, scale_x, filter_scale, bias, min_out, max_out, activation, out_type,
             summand=None, min_summand=None, max_summand=None):
    """OPS.md's epilogue over the last axis (the output channel)."""
    scale_x = _f(scale_x)
    fs = np.asarray(filter_scale, np.float32)
    bias = np.asarray(bias, np.float32)
    accf = np.asarray(acc, np.int32).astype(np.float32)
    if summand is not None:
        scale_s, zp_s = range_params(min_summand, max_summand)
        diff = (np.asarray(summand).astype(np.int32) - zp_s).astype(np.float32)
    if out_type == "float":
        y = (accf * (scale_x * fs).astype(np.float32) + bias).astype(np.float32)
        if summand is not None:
            y = (y + diff * scale_s).astype(np.float32)
        if activation in ("relu", "relu6"):
            y = np.maximum(y, _F(0))
        if activation == "relu6":
            y = np.minimum(y, _F(6))
        return y.astype(np.float32)
    if out_type != "quint8":
        raise ValueError(f"out_type must be quint8 or float, got {out_type!r}")
    scale_out, zp_out = range_params(min_out, max_out)
    m = ((scale_x * fs).astype(np.float32) / scale_out).astype(np.float32)
    b = (bias / scale_out + _F(zp_out)).astype(np.float32)
    v = (accf * m + b).astype(np.float32)
    if summand is not None:
        v = (v + diff * _F(scale_s / scale_out)).astype(np.float32)
    lo = zp_out if activation in ("relu", "relu6") else 0
    hi = min(255, zp_out + int(np.rint(_F(6) / scale_out))) if activation == "relu6" else 255
    return _clamp_u8(v, lo, hi)


def conv2d(q_x, min_x, max_x, q_w, filter_scale, bias, min_out, max_out, strides, padding,
           dilations, activation="none", out_type="quint8", summand=None, min_summand=None,
           max_summand=None):
    scale_x, zp_x = range_params(min_x, max_x)
    acc = conv2d_acc(q_x, zp_x, q_w, strides, padding, dilations)
    return epilogue(acc, scale_x, filter_scale, bias, min_out, max_out, activation, out_type,
                    summand, min_summand, max_summand)


def depthwise_conv2d(q_x, min_x, max_x, q_w, filter_scale, bias, min_out, max_out, strides,
                     padding, dilations, activation="none", out_type="quint8"):
    scale_x, zp_x = range_params(min_x, max_x)
    acc = depthwise_conv2d_acc(q_x, zp_x, q_w, strides, padding, dilations)
    return epilogue(acc, scale_x, filter_scale, bias, min_out, max_out, activation, out_type)


def matmul(q_a, min_a, max_a, q_b, b_scale, bias, min_out, max_out, activation="none",
           out_type="quint8", summand=None, min_summand=None, max_summand=None):
    scale_a, zp_a = range_params(min_a, max_a)
    acc = matmul_acc(q_a, zp_a, q_b)
    return epilogue(acc, scale_a, b_scale, bias, min_out, max_out, activation, out_type,
                    summand, min_summand, max_summand)


def max_pool(q, ksize, strides, padding):
    """Max over the window; padded positions never win (TF's MaxPool)."""
    p = _patches(np.asarray(q, np.int32), -1, ksize[0], ksize[1], strides, padding, (1, 1))
    return p.max(axis=(3, 4)).astype(np.uint8)


def avg_pool(q, ksize, strides, padding):
    """q = rint(sum / count) in float32; count excludes padding (TF's AvgPool)."""
    x = np.asarray(q, np.int64)
    p = _patches(x, 0, ksize[0], ksize[1], strides, padding, (1, 1))
    ones = _patches(np.ones(x.shape[:3] + (1,), np.int64), 0, ksize[0], ksize[1], strides,
                    padding, (1, 1))
    total = p.sum(axis=(3, 4)).astype(np.float32)
    count = ones.sum(axis=(3, 4)).astype(np.float32)
    return _clamp_u8((total / count).astype(np.float32))


def concat(values, mins, maxes, min_out, max_out, axis):
    """Each input re-mapped into the output range, then concatenated along `axis`."""
    scale_out, zp_out = range_params(min_out, max_out)
    parts = []
    for q, mn, mx in zip(values, mins, maxes):
        s, zp = range_params(mn, mx)
        v = (np.asarray(q).astype(np.int32) - zp).astype(np.float32) * _F(s / scale_out) \
            + _F(zp_out)
        parts.append(_clamp_u8(v.astype(np.float32)))
    return np.concatenate(parts, axis=axis)
