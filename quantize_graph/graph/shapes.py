"""TensorFlow's SAME / VALID window arithmetic, written once for the Python side.

The op library's C++ twin is kernels/cc/qg_shape.h. This module imports nothing, so the
kernels' NumPy reference (quantize_graph/kernels/numpy_reference.py) can load it by file path
on a machine without TensorFlow (tools/gpu_test.py).
"""


def window_output_size(size, k, stride, dilation=1, padding="SAME"):
    """(output size, padding before, padding after) of one spatial dimension of a window of k
    taps `dilation` apart moved by `stride` (TF's Conv2D / pools). SAME pads the odd pixel
    after (an empty input: no padding, as in qg_shape.h); VALID never pads and gives 0 outputs
    when the window is larger than the input."""
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        out = -(-size // stride)
        total = max((out - 1) * stride + eff - size, 0) if out > 0 else 0
        return out, total // 2, total - total // 2
    if padding == "VALID":
        return ((size - eff) // stride + 1 if size >= eff else 0), 0, 0
    raise ValueError(f"padding must be SAME or VALID, got {padding!r}")
