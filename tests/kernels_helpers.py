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
