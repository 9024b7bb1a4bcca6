"""NodeDef builders and attribute setters (the original tool's helper API, kept call-compatible)."""
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2, node_def_pb2


def create_node(op, name, inputs):
    new_node = node_def_pb2.NodeDef()
    new_node.op = op
    new_node.name = name
    for input_name in inputs:
        new_node.input.extend([input_name])
    return new_node


def copy_attr(node, key, attr_value):
    try:
        node.attr[key].CopyFrom(attr_value)
    except KeyError:
        pass


def set_attr_dtype(node, key, value):
    try:
        node.attr[key].CopyFrom(attr_value_pb2.AttrValue(type=tf.as_dtype(value).as_datatype_enum))
    except KeyError:
        pass


def set_attr_shape(node, key, value):
    try:
        node.attr[key].CopyFrom(attr_value_pb2.AttrValue(shape=tf.TensorShape(value).as_proto()))
    except KeyError:
        pass


def set_attr_tensor(node, key, value, dtype, shape=None):
    try:
        node.attr[key].CopyFrom(
            attr_value_pb2.AttrValue(tensor=tf.make_tensor_proto(value, dtype=dtype, shape=shape)))
    except KeyError:
        pass


def set_attr_string(node, key, value):
    try:
        node.attr[key].CopyFrom(attr_value_pb2.AttrValue(s=value))
    except KeyError:
        pass


def set_attr_int_list(node, key, value):
    list_value = attr_value_pb2.AttrValue.ListValue(i=value)
    try:
        node.attr[key].CopyFrom(attr_value_pb2.AttrValue(list=list_value))
    except KeyError:
        pass


def set_attr_bool(node, key, value):
    try:
        node.attr[key].CopyFrom(attr_value_pb2.AttrValue(b=value))
    except KeyError:
        pass


def set_attr_int(node, key, value):
    try:
        node.attr[key].CopyFrom(attr_value_pb2.AttrValue(i=value))
    except KeyError:
        pass


def set_attr_float(node, key, value):
    try:
        node.attr[key].CopyFrom(attr_value_pb2.AttrValue(f=value))
    except KeyError:
        pass


def create_constant_node(name, value, dtype, shape=None):
    node = create_node("Const", name, [])
    set_attr_dtype(node, "dtype", dtype)
    set_attr_tensor(node, "value", value, dtype, shape)
    return node


def const_value(node):
    """The numpy value of a Const node; quantized types come back as plain integers."""
    value = tf.make_ndarray(node.attr["value"].tensor)
    if value.dtype.fields:  # qint8/quint8/qint32 are one-field structured dtypes in numpy
        value = value.view(value.dtype.fields[next(iter(value.dtype.fields))][0])
    return value


def make_const(name, array, dtype=None):
    """A Const node holding `array` (dtype inferred from the array unless given)."""
    array = np.asarray(array)
    dtype = tf.as_dtype(dtype or array.dtype)
    return create_constant_node(name, array, dtype, array.shape)


def node_dtype(node, attr="T"):
    """The tf.DType held in a node's type attribute."""
    return tf.as_dtype(node.attr[attr].type)
