"""Shared by the tests/test_kernels_*.py files: load the Qg op library or skip, call ops."""
import numpy as np
import pytest

from quantize_graph import kernels


def load_or_skip():
    if not kernels.is_built():
        pytest.skip("Qg op library not built (run `pip install -e .` or `make kernels`): "
                    f"{kernels.LIBRARY_PATH} is missing")
    return kernels.load()


def u8(x):
    import tensorflow as tf
    return tf.constant(np.asarray(x, np.uint8), tf.quint8)


def s8(x):
    import tensorflow as tf
    return tf.constant(np.asarray(x, np.int8), tf.qint8)


def np_out(t):
    """An op output as numpy: quint8 as uint8, float as float32."""
    import tensorflow as tf
    if t.dtype == tf.quint8:
        return tf.cast(t, tf.int32).numpy().astype(np.uint8)
    return t.numpy()


def nhwc(v):
    return [1, v[0], v[1], 1]


# Pools that reach every branch of the CPU pool loops, portable, AVX2 and AVX-512 (kernels/cc/
# qg_pool_concat_*.cc): (input shape, ksize, strides, padding, fill) with fill None for random
# bytes or one byte value everywhere.
POOL_CASES = [
    ((1, 35, 35, 64), (3, 3), (1, 1), "SAME", None),  # Inception: interior and border windows
    ((2, 17, 19, 37), (3, 3), (2, 2), "VALID", None),  # channels not a multiple of 16 / 32
    ((1, 9, 11, 48), (3, 3), (2, 2), "SAME", None),  # a 32- and a 16-channel block
    ((1, 8, 8, 33), (8, 8), (1, 1), "VALID", None),  # one 64-tap window (run-time tap count)
    ((1, 12, 10, 17), (4, 2), (1, 3), "SAME", None),  # 4 window rows, stride 3
    ((1, 7, 7, 1), (1, 1), (1, 1), "VALID", None),  # one tap, one channel
    ((1, 10, 13, 95), (2, 5), (2, 1), "SAME", None),  # 95 = 2 * 32 + 16 + 15
    ((1, 9, 8, 100), (3, 3), (2, 2), "VALID", None),  # 100 = 64 + 32 + 4: zmm, ymm, masked
    ((1, 5, 300, 3), (1, 2), (1, 2), "VALID", None),  # long rows, few channels
    ((1, 16, 17, 20), (16, 17), (1, 1), "VALID", None),  # 272 taps: avg sums above u16
    ((1, 6, 6, 40), (3, 3), (1, 1), "SAME", 255),  # the largest sums
    ((2, 4, 5, 50), (2, 2), (2, 2), "SAME", 0),
]


def pool_input(case, seed):
    shape, _, _, _, fill = case
    if fill is not None:
        return np.full(shape, fill, np.uint8)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def concat_cases():
    """(values, mins, maxes, min_out, max_out, axis) for QgQuantizedConcat: inputs whose range
    maps every byte to itself (copied) next to re-mapped ones, rows not a multiple of 32."""
    rng = np.random.default_rng(7)

    def vals(*shapes):
        return [rng.integers(0, 256, s, dtype=np.uint8) for s in shapes]

    # 6.0000005 is the float32 after 6.0: another scale, yet every byte maps to itself
    return [
        (vals((1, 5, 6, 64), (1, 5, 6, 37), (1, 5, 6, 96), (1, 5, 6, 3)),
         [0.0, 0.0, -0.5, 0.0], [6.0, 5.3, 6.0, 6.0000005], 0.0, 6.0, 3),
        (vals((2, 3, 4, 33), (2, 3, 4, 70)), [-1.0, -2.0], [3.0, 1.0], -1.0, 3.0, -1),
        (vals((2, 7, 3, 5), (2, 1, 3, 5), (2, 9, 3, 5)), [-3.0, -3.0, -1.0], [3.0, 3.0, 2.0],
         -3.0, 3.0, 1),
        (vals((3, 40), (1, 40)), [0.0, 0.0], [1.0, 1.0], 0.0, 1.0, 0),
        (vals((1, 1001),), [-4.0], [4.0], -2.0, 6.5, 1),
        (vals((1, 8, 8, 384), (1, 8, 8, 384)), [0.0, 0.0], [4.9, 5.3], 0.0, 5.3, 3),
        (vals((2, 0, 3), (2, 4, 3), (2, 0, 3)), [0.0, -1.0, 0.0], [2.0, 1.0, 1.0], -1.0, 1.0, 1),
    ]
