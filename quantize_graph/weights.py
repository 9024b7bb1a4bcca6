"""Offline quantization of weight constants (the original module's helpers, same results)."""
import numpy as np
import tensorflow as tf

from quantize_graph.graph.nodes import (const_value, create_constant_node, create_node,
                                        set_attr_dtype, set_attr_string)
from quantize_graph.legacy_flags import FLAGS
from quantize_graph.weight_schemes import quantize_array, weight_range  # noqa: F401 (the original API)


def quantize_weight_rounded(input_node, bitdepth=None):
    """A float Const with its values rounded to 2^bitdepth levels (FLAGS.bitdepth by default)."""
    if bitdepth is None:
        bitdepth = FLAGS.bitdepth
    tensor = input_node.attr["value"].tensor
    rounded = quantize_array(tf.make_ndarray(tensor), 1 << bitdepth)
    shape = [d.size for d in tensor.tensor_shape.dim]
    return [create_constant_node(input_node.name, rounded, tf.float32, shape=shape)]


def quantize_to_quint8(values, lo, hi, mode="MIN_FIRST"):
    """Runs TF's own QuantizeV2 so offline and run-time quantization agree bit for bit.

    Works whatever the caller's context: inside `with tf.Graph().as_default()` (as 2016-era
    scripts do) it still runs eagerly, and with eager execution disabled it uses a session.
    """
    def quantize():
        return tf.raw_ops.QuantizeV2(input=tf.constant(values, tf.float32), min_range=lo,
                                     max_range=hi, T=tf.quint8, mode=mode)
    with tf.init_scope():
        if tf.executing_eagerly():
            q, qmin, qmax = [t.numpy() for t in quantize()]
            return q, float(qmin), float(qmax)
    with tf.Graph().as_default() as graph:
        outputs = quantize()
    with tf.compat.v1.Session(graph=graph) as session:
        q, qmin, qmax = session.run(outputs)
    return q, float(qmin), float(qmax)


def quantize_weight_eightbit(input_node, quantization_mode):
    """[quint8 Const, min Const, max Const, Dequantize named like `input_node`]."""
    mode = quantization_mode.decode() if isinstance(quantization_mode, bytes) else quantization_mode
    values = const_value(input_node).astype(np.float32)
    lo, hi = weight_range(values)
    q, qmin, qmax = quantize_to_quint8(values, lo, hi, mode)
    base = input_node.name + "_"
    shape = list(values.shape)
    const = create_constant_node(base + "quint8_const", q, tf.quint8, shape=shape)
    min_node = create_constant_node(base + "min", qmin, tf.float32)
    max_node = create_constant_node(base + "max", qmax, tf.float32)
    dequantize = create_node("Dequantize", input_node.name, [const.name, min_node.name, max_node.name])
    set_attr_dtype(dequantize, "T", tf.quint8)
    set_attr_string(dequantize, "mode", mode.encode())
    return [const, min_node, max_node, dequantize]
