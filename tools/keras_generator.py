"""Shared by the model generators (make_inception_v3.py, make_resnet50.py, make_mobilenet_v2.py).

No trained weights can be downloaded here, so each generator builds a stock
`keras.applications` network with `weights=None` from a fixed seed and calibrates it on real
photos so that it behaves like a trained net, not a chaotic random one (the reasons and the
figures are in make_inception_v3.py's docstring). The recipe, in one training-mode pass layer
by layer (`calibrate_body`):

* every conv's kernel is matched to the covariance of its actual input (`input_transform`, a
  Wiener filter: directions the photos vary along pass, near-empty ones are suppressed);
  depthwise kernels read one channel each, so they have nothing to match and stay as drawn;
* a batch norm whose output reaches a ReLU (directly or through a residual Add) gets beta
  `BN_OFFSET` (the ReLU passes ~70%); one that feeds no ReLU (MobileNet-v2's linear bottleneck)
  gets beta 0, as its output is a signed residual stream;
* moving statistics are those of the calibration batch (momentum 0);
* the classifier reads only the `CLASSIFIER_RANK` principal directions of the pooled
  features, centred and scaled to a trained net's logit spread (`calibrate_classifier`).

Also here: photo loading and preprocessing (central crop 0.875, bilinear resize, [-1, 1]),
the layer-by-layer frozen form with stock TF ops (`build_frozen`: FusedBatchNormV3, Relu6,
residual AddV2, ...), checks, and deterministic atomic writing.
"""
import collections
import os
import tempfile

import numpy as np
import tensorflow as tf
import keras
from tensorflow.core.framework import graph_pb2

INPUT_NAME = "input"
OUTPUT_NAME = "softmax"
LOGIT_STD = 3.0  # spread of a trained ImageNet classifier's logits over the classes
BN_OFFSET = 0.5  # beta of every batch norm that feeds a ReLU: it passes ~70% of its inputs
NOISE_FLOOR = 0.5  # input_transform's t, relative to the mean eigenvalue of the input covariance
MAX_COVARIANCE_ROWS = 50000  # sampled positions per input covariance
CLASSIFIER_RANK = 8  # principal directions of the pooled features the classifier reads
TOLERANCE = 1e-4
PHOTO_EXTENSIONS = (".jpg", ".jpeg")


# ---------------------------------------------------------------------------------------------
# Photos

def find_photos(photos_dir, num_photos):
    """The first `num_photos` JPEG files under `photos_dir` (recursively), in sorted path order."""
    paths = []
    for root, _, files in os.walk(photos_dir):
        paths.extend(os.path.join(root, f) for f in files if f.lower().endswith(PHOTO_EXTENSIONS))
    if not paths:
        raise ValueError("no JPEG photos found under '%s'" % photos_dir)
    return sorted(paths)[:num_photos]


def preprocess(image_bytes, size):
    """Decode, central crop 0.875, bilinear resize to size x size, scale to [-1, 1]."""
    # decode_image, not decode_jpeg: a few ImageNet ".JPEG" files are really PNG.
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    image = tf.image.central_crop(image, 0.875)
    image = tf.image.resize(image, [size, size], method="bilinear")
    return (image - 127.5) / 127.5


def load_photos(paths, size):
    """A float32 [N, size, size, 3] batch of preprocessed photos."""
    return np.stack([preprocess(tf.io.read_file(p), size).numpy() for p in paths])


# ---------------------------------------------------------------------------------------------
# Calibration

def inbound_layers(layer):
    return [t._keras_history.operation for t in layer._inbound_nodes[0].input_tensors]


def input_transform(inputs, noise_floor=NOISE_FLOOR):
    """C (C + t I)^-1 for the channel covariance C of `inputs` [rows, channels], with t =
    `noise_floor` times the mean eigenvalue of C.

    Applied to a conv's input channels it weights each eigendirection of its input by
    lambda / (lambda + t) (a Wiener filter): directions the photos really vary along pass
    nearly unchanged, the near-empty ones, where only noise and the ReLUs' small distortions
    live, are suppressed.
    """
    x = inputs - inputs.mean(axis=0)
    cov = (x.T @ x).astype(np.float64) / len(x)
    floor = noise_floor * np.trace(cov) / len(cov)
    return np.linalg.solve(cov + floor * np.eye(len(cov)), cov)  # symmetric: they commute


def match_kernel(kernel, transform):
    """`kernel` [kh, kw, in, out] reading its input channels through `transform` [in, in]."""
    kh, kw, cin, cout = kernel.shape
    taps = kernel.reshape(kh * kw, cin, cout).astype(np.float64)
    return np.matmul(transform, taps).reshape(kernel.shape).astype(np.float32)


def _is_relu(layer):
    if isinstance(layer, keras.layers.ReLU):
        return True
    return isinstance(layer, keras.layers.Activation) and layer.activation is keras.activations.relu


def feeds_relu(layer, readers):
    """Whether `layer`'s output reaches a ReLU directly or through residual Adds."""
    return any(_is_relu(r) or (isinstance(r, keras.layers.Add) and feeds_relu(r, readers))
               for r in readers[layer])


def calibrate_body(model, images, offset=BN_OFFSET, noise_floor=NOISE_FLOOR, seed=0):
    """Calibrates every conv and batch norm on `images`; returns the pooled features [N, C].

    One training-mode pass, layer by layer in topological order: every batch-norm offset
    (beta) is set (`offset` where the output feeds a ReLU, else 0); each conv's kernel is first
    matched to the statistics of its actual input (`input_transform` of at most
    MAX_COVARIANCE_ROWS sampled positions), then with momentum 0 each batch norm's moving
    mean/variance become the statistics of the batch, layer by layer, each seeing inputs
    already calibrated by the layers before it.
    """
    rng = np.random.default_rng(seed)
    reader_lists = collections.defaultdict(list)
    for layer in model.layers[1:]:
        for i in inbound_layers(layer):
            reader_lists[i].append(layer)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
            beta = offset if feeds_relu(layer, reader_lists) else 0.0
            layer.beta.assign(np.full(layer.beta.shape, beta, np.float32))
    readers = collections.Counter(i for layer in model.layers[1:] for i in inbound_layers(layer))
    outputs = {model.layers[0]: tf.constant(images)}
    transforms = {}  # input layer -> input_transform, shared by the convs reading it
    for layer in model.layers[1:]:
        inputs = [outputs[i] for i in inbound_layers(layer)]
        if isinstance(layer, keras.layers.Conv2D):
            (source,) = inbound_layers(layer)
            if source not in transforms:
                rows = inputs[0].numpy().reshape(-1, inputs[0].shape[-1])
                if len(rows) > MAX_COVARIANCE_ROWS:
                    rows = rows[np.sort(rng.choice(len(rows), MAX_COVARIANCE_ROWS, replace=False))]
                transforms[source] = input_transform(rows, noise_floor)
            layer.kernel.assign(match_kernel(_value(layer.kernel), transforms[source]))
        if isinstance(layer, keras.layers.BatchNormalization):
            result = layer(inputs[0], training=True)
        elif isinstance(layer, (keras.layers.Concatenate, keras.layers.Add)):
            result = layer(inputs)
        elif isinstance(layer, keras.layers.Dense):
            return inputs[0].numpy()  # the classifier is calibrated separately
        else:
            result = layer(inputs[0])
        outputs[layer] = result
        for i in inbound_layers(layer):
            readers[i] -= 1
            if readers[i] == 0:
                del outputs[i]
                transforms.pop(i, None)
    raise RuntimeError("the model has no Dense classifier")


def calibrate_classifier(model, features, rank=CLASSIFIER_RANK, logit_std=LOGIT_STD):
    """Makes the random classifier read the pooled features as a trained one does; returns
    the softmax of `features`.

    The random kernel is projected onto the `rank` principal directions of the photos'
    pooled features (the directions they differ along; a trained classifier separates
    classes along those, not along directions every photo shares), the features are centred
    (the bias), and the logits are scaled to a trained net's spread over the classes.
    """
    dense = model.layers[-1]
    mean = features.mean(axis=0)
    _, _, directions = np.linalg.svd(features - mean, full_matrices=False)
    basis = directions[:rank].T  # [C, rank]
    kernel, _ = dense.get_weights()
    kernel = basis @ (basis.T @ kernel)
    bias = -mean @ kernel
    logits = features @ kernel + bias
    scale = logit_std / logits.std(axis=1).mean()
    dense.set_weights([(kernel * scale).astype(np.float32), (bias * scale).astype(np.float32)])
    logits = (logits * scale).astype(np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def calibrate(model, images, seed=0):
    """Body and classifier calibration; returns the softmax of `images`."""
    return calibrate_classifier(model, calibrate_body(model, images, seed=seed))


def check_not_degenerate(train_probs, probs):
    """Fails unless inference-mode `probs` (of the first photos) look like a working net.

    `train_probs` is the calibration pass over all photos: with calibrated statistics,
    inference on any of those photos must reproduce its row.
    """
    if not np.all(np.isfinite(train_probs)):
        raise RuntimeError("calibrated model produces non-finite outputs")
    if np.max(np.abs(probs - train_probs[:len(probs)])) > TOLERANCE:
        raise RuntimeError("batch-norm calibration did not take: inference != training outputs")
    if np.min(np.max(train_probs, axis=1) / np.min(train_probs, axis=1)) < 1.5:
        raise RuntimeError("softmax is (nearly) uniform: activations collapsed")
    if np.max(train_probs) > 0.999:
        raise RuntimeError("softmax saturates: activations exploded")
    if len(set(np.argmax(train_probs, axis=1))) < len(train_probs) / 4:
        raise RuntimeError("most photos get the same top class: features collapsed")


# ---------------------------------------------------------------------------------------------
# Frozen form, layer by layer with stock TF ops

_values = {}  # id(variable) -> its value, read eagerly before the tf.Graph is built


def _value(variable):
    return _values[id(variable)] if id(variable) in _values else variable.numpy()


def _padding(layer):
    return layer.padding.upper()


def _emit_conv(layer, x):
    if layer.dilation_rate != (1, 1) or layer.groups != 1:
        raise ValueError("unsupported Conv2D configuration in %s" % layer.name)
    y = tf.nn.conv2d(x, _value(layer.kernel), [1, *layer.strides, 1], _padding(layer),
                     name=layer.name)
    if layer.use_bias:
        bias = _value(layer.bias)
        if np.any(bias):  # Keras' zero-initialized conv bias before a batch norm: no node
            y = tf.nn.bias_add(y, bias, name=layer.name + "/BiasAdd")
    return y


def _emit_depthwise(layer, x):
    if layer.dilation_rate != (1, 1) or layer.use_bias:
        raise ValueError("unsupported DepthwiseConv2D configuration in %s" % layer.name)
    return tf.raw_ops.DepthwiseConv2dNative(
        input=x, filter=_value(layer.kernel), strides=[1, *layer.strides, 1],
        padding=_padding(layer), name=layer.name)


def _emit_batch_norm(layer, x):
    channels = layer.moving_mean.shape[0]
    gamma = _value(layer.gamma) if layer.scale else np.ones([channels], np.float32)
    beta = _value(layer.beta) if layer.center else np.zeros([channels], np.float32)
    return tf.raw_ops.FusedBatchNormV3(
        x=x, scale=gamma, offset=beta, mean=_value(layer.moving_mean),
        variance=_value(layer.moving_variance), epsilon=float(layer.epsilon),
        is_training=False, name=layer.name)[0]


def _emit_relu(layer, x):
    if isinstance(layer, keras.layers.ReLU):
        if layer.negative_slope != 0 or layer.threshold != 0 or layer.max_value not in (None, 6.0):
            raise ValueError("unsupported ReLU configuration in %s" % layer.name)
        if layer.max_value == 6.0:
            return tf.nn.relu6(x, name=layer.name)
    elif not _is_relu(layer):
        raise ValueError("unsupported activation in %s" % layer.name)
    return tf.nn.relu(x, name=layer.name)


def _emit_pad(layer, x):
    (top, bottom), (left, right) = layer.padding
    return tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]], name=layer.name)


def _emit_pool(layer, x):
    pool = tf.nn.max_pool2d if isinstance(layer, keras.layers.MaxPooling2D) else tf.nn.avg_pool2d
    return pool(x, layer.pool_size, layer.strides, _padding(layer), name=layer.name)


def _emit_dense_softmax(layer, x):
    if layer.activation is not keras.activations.softmax:
        raise ValueError("the classifier %s must end in softmax" % layer.name)
    logits = tf.matmul(x, _value(layer.kernel), name=layer.name + "/MatMul")
    logits = tf.nn.bias_add(logits, _value(layer.bias), name=layer.name + "/BiasAdd")
    return tf.nn.softmax(logits, name=OUTPUT_NAME)


EMITTERS = {
    keras.layers.Conv2D: _emit_conv,
    keras.layers.DepthwiseConv2D: _emit_depthwise,
    keras.layers.BatchNormalization: _emit_batch_norm,
    keras.layers.Activation: _emit_relu,
    keras.layers.ReLU: _emit_relu,
    keras.layers.ZeroPadding2D: _emit_pad,
    keras.layers.MaxPooling2D: _emit_pool,
    keras.layers.AveragePooling2D: _emit_pool,
    keras.layers.Add: lambda layer, *xs: tf.math.add_n(xs, name=layer.name) if len(xs) > 2
    else tf.math.add(*xs, name=layer.name),
    keras.layers.Concatenate: lambda layer, *xs: tf.concat(xs, layer.axis, name=layer.name),
    keras.layers.GlobalAveragePooling2D: lambda layer, x: tf.reduce_mean(x, [1, 2], name=layer.name),
    keras.layers.Dense: _emit_dense_softmax,
}


def build_frozen(model, image_size):
    """The frozen GraphDef of `model`, one stock TF op per Keras operation: Conv2D,
    DepthwiseConv2dNative, FusedBatchNormV3 (inference), Relu / Relu6, Pad, MaxPool, AddV2
    (residuals), ConcatV2, Mean (global pool), MatMul + BiasAdd + Softmax `softmax`; a float
    Placeholder `input` [?, size, size, 3]. Nodes are named after the Keras layers."""
    _values.clear()
    _values.update((id(v), v.numpy()) for v in model.weights)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, image_size, image_size, 3], name=INPUT_NAME)
        outputs = {model.layers[0]: x}
        for layer in model.layers[1:]:
            emit = EMITTERS.get(type(layer))
            if emit is None:
                raise ValueError("no TF op for layer %s (%s)" % (layer.name, type(layer).__name__))
            outputs[layer] = emit(layer, *[outputs[i] for i in inbound_layers(layer)])
    _values.clear()
    return keep_ancestors(graph.as_graph_def(), OUTPUT_NAME)


def keep_ancestors(graph_def, output_name):
    """Drops every node `output_name` does not depend on."""
    nodes = {n.name: n for n in graph_def.node}
    keep, pending = set(), [output_name]
    while pending:
        name = pending.pop()
        if name not in keep:
            keep.add(name)
            pending.extend(i.lstrip("^").split(":")[0] for i in nodes[name].input)
    result = graph_pb2.GraphDef()
    result.versions.CopyFrom(graph_def.versions)
    result.node.extend(n for n in graph_def.node if n.name in keep)
    return result


# ---------------------------------------------------------------------------------------------
# Verification

def open_session(graph_def):
    """A v1 Session on a fresh Graph holding `graph_def`."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    return tf.compat.v1.Session(graph=graph)


def predict(session, images):
    """Softmax of the graph (input `input`, output `softmax`) for preprocessed images."""
    return session.run(OUTPUT_NAME + ":0", {INPUT_NAME + ":0": images})


def check_close(name, actual, expected):
    diff = float(np.max(np.abs(actual - expected)))
    if diff >= TOLERANCE:
        raise RuntimeError("%s differs by %g (tolerance %g)" % (name, diff, TOLERANCE))
    return diff


def verify_frozen(graph_def, images, expected):
    """Checks the frozen graph against Keras' `expected` softmax at batch 1 and 4; max diff."""
    with open_session(graph_def) as session:
        return max(check_close("frozen graph vs Keras (batch %d)" % n,
                               predict(session, images[:n]), expected[:n])
                   for n in (1, 4))


# ---------------------------------------------------------------------------------------------
# Writing

def write_graph_def(graph_def, path):
    """Writes atomically: a temporary file beside `path`, then os.replace."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pb", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            # Deterministic map order: the same graph always gives the same bytes.
            f.write(graph_def.SerializeToString(deterministic=True))
        os.chmod(tmp, 0o644)  # mkstemp creates it private
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


# ---------------------------------------------------------------------------------------------
# A whole generator for a keras.applications network in the frozen stock-op form

def generate_application(application, output_path, photos_dir, image_size=224, seed=0,
                         num_photos=32, verbose=False):
    """Builds `application(weights=None)` from `seed`, calibrates it on the first `num_photos`
    photos, freezes it with `build_frozen`, checks it against Keras and writes it."""
    import time
    start = time.time()
    paths = find_photos(photos_dir, num_photos)
    images = load_photos(paths, image_size)
    # A fresh Keras session makes layer (and so node) names the same on every call.
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = application(weights=None, input_shape=(image_size, image_size, 3))
    train_probs = calibrate(model, images, seed=seed)
    images = images[:4]
    expected = model(images, training=False).numpy()
    check_not_degenerate(train_probs, expected)
    graph_def = build_frozen(model, image_size)
    diff = verify_frozen(graph_def, images, expected)
    write_graph_def(graph_def, output_path)
    if verbose:
        print("wrote %s: %d nodes, %.1f MB, %.0f s, max |softmax - Keras| %.2g" % (
            output_path, len(graph_def.node), os.path.getsize(output_path) / 1e6,
            time.time() - start, diff))
    return output_path


def application_main(application, description, argv=None):
    """The command line shared by make_resnet50.py and make_mobilenet_v2.py."""
    import argparse
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--output", required=True, help="GraphDef to write (.pb)")
    parser.add_argument("--photos", required=True, help="folder of JPEG photos for calibration")
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_photos", type=int, default=32)
    args = parser.parse_args(argv)
    generate_application(application, args.output, args.photos, args.image_size, args.seed,
                         args.num_photos, verbose=True)
    return 0
