"""Attribute checks shared by the op modules."""
import tensorflow as tf


def is_float(node, attr="T"):
    return attr in node.attr and node.attr[attr].type == tf.float32.as_datatype_enum


def is_nhwc(node):
    return node.attr["data_format"].s in (b"", b"NHWC")


def all_ones(values):
    return all(v == 1 for v in values)
