"""graph/shapes.window_output_size (the Python SAME/VALID rule) against TensorFlow's Conv2D, and
the Qg ops' shape functions (kernels/cc/qg_shape.h, the C++ rule) against it."""
import itertools

import numpy as np
import pytest

from quantize_graph.graph.shapes import window_output_size
from tests.kernels_helpers import load_or_skip

tf = pytest.importorskip("tensorflow")

CASES = [(size, k, stride, dilation, padding)
         for size, k, stride, dilation, padding in itertools.product(
             (1, 4, 7, 8, 17), (1, 2, 3, 5), (1, 2, 3), (1, 2), ("SAME", "VALID"))]


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_matches_tensorflow_conv(padding):
    # SAME: the conv equals a VALID conv of the input padded (before, after) as returned.
    rng = np.random.default_rng(0)
    for size, k, stride, dilation, pad in CASES:
        if pad != padding or (padding == "VALID" and (k - 1) * dilation + 1 > size):
            continue  # TF refuses a VALID window larger than the input; the Qg ops give 0
        x = rng.standard_normal((1, size, size + 1, 2)).astype(np.float32)
        w = rng.standard_normal((k, k, 2, 3)).astype(np.float32)
        want = tf.nn.conv2d(x, w, stride, padding, dilations=dilation).numpy()
        out_h, top, bottom = window_output_size(size, k, stride, dilation, padding)
        out_w, left, right = window_output_size(size + 1, k, stride, dilation, padding)
        assert want.shape[1:3] == (out_h, out_w)
        padded = np.pad(x, [(0, 0), (top, bottom), (left, right), (0, 0)])
        got = tf.nn.conv2d(padded, w, stride, "VALID", dilations=dilation).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_window_larger_than_input_is_empty_under_valid():
    assert window_output_size(4, 5, 1, 1, "VALID") == (0, 0, 0)
    assert window_output_size(0, 3, 1, 1, "SAME") == (0, 0, 0)
    with pytest.raises(ValueError):
        window_output_size(4, 3, 1, 1, "EXPLICIT")


def test_qg_shape_functions_use_the_same_rule():
    qg = load_or_skip()
    for size, k, stride, dilation, padding in CASES:
        want = window_output_size(size, k, stride, dilation, padding)[0]
        graph = tf.Graph()
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.quint8, (1, size, size, 3))
            w = tf.compat.v1.placeholder(tf.qint8, (k, k, 3, 4))
            vec = tf.compat.v1.placeholder(tf.float32, (4,))
            conv = qg.qg_quantized_conv2d(x, w, vec, vec, -1.0, 1.0, -1.0, 1.0, [], [], [],
                                          strides=[1, stride, stride, 1], padding=padding,
                                          dilations=[1, dilation, dilation, 1])[0]
            pool = qg.qg_quantized_max_pool(x, -1.0, 1.0, ksize=[1, k, k, 1],
                                            strides=[1, stride, stride, 1], padding=padding)[0]
        assert conv.shape.as_list() == [1, want, want, 4], (size, k, stride, dilation, padding)
        if dilation == 1:
            assert pool.shape.as_list() == [1, want, want, 3], (size, k, stride, padding)
