"""Does this TensorFlow run the fused oneDNN int8 kernels? Asked by running one.

With oneDNN off (TF_ENABLE_ONEDNN_OPTS=0, or by default on CPUs without AVX-512 VNNI when
quantize_graph was imported after TensorFlow), the fused ops are registered but have no real
kernel: a graph fails with "Missing 0-th output" and eager calls return empty tensors. So the
only reliable test is to run a tiny fused conv and check its value.
"""
import functools

import numpy as np
import tensorflow as tf

# Ops that only run through oneDNN (the onednn target's output).
ONEDNN_OPS = ("QuantizedConv2DWithBiasAndReluAndRequantize", "QuantizedConv2DWithBiasAndRequantize",
              "QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize",
              "QuantizedMatMulWithBiasAndReluAndRequantize", "QuantizedMatMulWithBiasAndDequantize",
              "QuantizedConcatV2")
HOW_TO_ENABLE = ("set TF_ENABLE_ONEDNN_OPTS=1 before TensorFlow is imported (quantize_graph's "
                 "tools do this unless it is set to 0)")


@functools.lru_cache(maxsize=None)
def onednn_int8_runs():
    """True when a 1x1 fused int8 conv gives the right answer in this process."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.constant(np.full([1, 2, 2, 1], 255, np.uint8))
        x = tf.raw_ops.Bitcast(input=x, type=tf.quint8)
        w = tf.raw_ops.Bitcast(input=tf.constant(np.full([1, 1, 1, 1], 63, np.int8)), type=tf.qint8)
        out = tf.raw_ops.QuantizedConv2DWithBiasAndReluAndRequantize(
            input=x, filter=w, bias=tf.constant([0.0]), min_input=0.0, max_input=1.0,
            min_filter=-127.0 / 63.0, max_filter=127.0 / 63.0, min_freezed_output=0.0,
            max_freezed_output=2.0, strides=[1, 1, 1, 1], padding="VALID", out_type=tf.quint8)[0]
    try:
        with tf.compat.v1.Session(graph=graph) as session:
            value = session.run(out)
    except (tf.errors.OpError, ValueError, TypeError):
        return False
    # 1.0 * 1.0 = 1.0 over an output range of [0, 2]: code 128 (127.5 rounded).
    return value.size == 4 and abs(int(np.asarray(value).view(np.uint8).ravel()[0]) - 128) <= 1


def uses_onednn_ops(graph_def):
    return any(n.op in ONEDNN_OPS for n in graph_def.node)
