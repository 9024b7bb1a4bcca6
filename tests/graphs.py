"""Small float test graphs built in TF1 graph mode; each builder returns
(graph_def, input_name, output_name). Weights are seeded, so graphs are reproducible."""
import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1


def _const(rng, shape, scale=0.5):
    return tf.constant(rng.uniform(-scale, scale, size=shape).astype(np.float32))


def conv_relu_pool_graph(seed=0):
    """input [1,8,8,3] -> Conv2D -> BiasAdd -> Relu -> MaxPool -> reshape -> MatMul -> softmax."""
    rng = np.random.RandomState(seed)
    g = tf.Graph()
    with g.as_default():
        x = tf1.placeholder(tf.float32, [1, 8, 8, 3], name="input")
        y = tf.nn.conv2d(x, _const(rng, [3, 3, 3, 4]), [1, 1, 1, 1], "SAME", name="conv")
        y = tf.nn.bias_add(y, _const(rng, [4], 0.1), name="bias")
        y = tf.nn.relu(y, name="relu")
        y = tf.nn.max_pool2d(y, 2, 2, "VALID", name="pool")
        y = tf.reshape(y, [1, 64], name="flatten")
        y = tf.matmul(y, _const(rng, [64, 5]), name="logits")
        tf.nn.softmax(y, name="softmax")
    return g.as_graph_def(), "input", "softmax"


def matmul_graph(seed=0):
    """input [2,6] -> MatMul -> BiasAdd -> Relu ("out")."""
    rng = np.random.RandomState(seed)
    g = tf.Graph()
    with g.as_default():
        x = tf1.placeholder(tf.float32, [2, 6], name="input")
        y = tf.matmul(x, _const(rng, [6, 4]), name="matmul")
        y = tf.nn.bias_add(y, _const(rng, [4], 0.1), name="bias")
        tf.nn.relu(y, name="out")
    return g.as_graph_def(), "input", "out"


def write_graph(graph_def, path, as_text=None):
    """Writes binary, or text when `as_text` or the path ends in .pbtxt; returns the path."""
    path = str(path)
    if as_text is None:
        as_text = path.endswith(".pbtxt")
    if as_text:
        from google.protobuf import text_format
        data = text_format.MessageToString(graph_def).encode()
    else:
        data = graph_def.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    return path
