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


def residual_graph(seed=0):
    """conv+bias+relu -> conv+bias + residual Add + relu -> depthwise+relu6 -> max/avg pool ->
    concat -> reshape -> matmul+bias -> softmax: every pattern the kernels target fuses."""
    rng = np.random.default_rng(seed)
    g = tf.Graph()
    with g.as_default():
        x = tf1.placeholder(tf.float32, [None, 12, 12, 3], name="input")
        w0 = tf.constant(rng.normal(0, .3, [3, 3, 3, 8]).astype(np.float32))
        a = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w0, 1, "SAME"), tf.constant(rng.normal(0, .1, 8).astype(np.float32))), name="a")
        w1 = tf.constant(rng.normal(0, .3, [3, 3, 8, 8]).astype(np.float32))
        b = tf.nn.bias_add(tf.nn.conv2d(a, w1, 1, "SAME"), tf.constant(rng.normal(0, .1, 8).astype(np.float32)), name="b")
        r = tf.nn.relu(tf.add(b, a), name="res")
        wd = tf.constant(rng.normal(0, .3, [3, 3, 8, 1]).astype(np.float32))
        d = tf.nn.relu6(tf.nn.depthwise_conv2d(r, wd, [1, 1, 1, 1], "SAME"), name="dw")
        p = tf.nn.max_pool2d(d, 2, 2, "VALID", name="pool")
        c = tf.concat([p, tf.nn.avg_pool2d(r, 2, 2, "VALID")], 3, name="cat")
        f = tf.reshape(c, [-1, 6 * 6 * 16], name="flat")
        wm = tf.constant(rng.normal(0, .1, [576, 10]).astype(np.float32))
        logits = tf.nn.bias_add(tf.matmul(f, wm), tf.constant(np.zeros(10, np.float32)), name="logits")
        tf.nn.softmax(logits, name="softmax")
    return g.as_graph_def(), "input", "softmax"
