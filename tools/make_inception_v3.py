"""Generates an Inception-v3 frozen GraphDef (random weights, calibrated on real photos).

No trained weights are available, so the network is `keras.applications.InceptionV3(weights=None)`
built from a fixed seed, then calibrated on real photos (the first 32) in one training-mode pass
so that it behaves like a trained net rather than like a random one. Only values change: every
layer, shape and op is the stock Keras model's.

Why calibrate, and how. A random BN-ReLU network is chaotic: with batch norm re-normalizing
every layer, each ReLU amplifies a small perturbation relative to the signal (by ~1.2x per
layer at beta 0), so any 8-bit rounding flips the top-1 class of most photos. Measured on
photos 200-249: top-1 agreement of float with the reference 8-bit graph / with the onednn
graph calibrated on photos 0-31 / with float fed the photo plus uniform noise of +-1 gray
level (the middle two rows while the quantizer itself was changing, so roughly):

* stock random net (beta 0, batch-norm statistics from the photos, standardized random
  classifier): 0.26 / 0.26 / 0.28. The 8-bit error of the pooled features is 29% of their
  spread between photos; one gray level of input noise moves mixed10 by 85%.
* batch-norm beta > 0 (ReLUs nearly linear, so not chaotic) alone: 0.68 at beta 1, 0.40 at 2,
  0.18 at 3: the per-tensor weight rounding times the ReLU outputs' mean (~beta) is a bias
  that the near-linear net carries intact to the classifier. Spatially smoother kernels were
  worse (0.12-0.60): they pass that bias (a constant) more than they pass the photos.
* plus a classifier reading only the principal directions of the pooled features: 0.86-0.93.
* kernels matched to their inputs (below), beta 0.5, rank-8 classifier: 0.96 / 0.98 / 1.00
  (reference: 0.96 for the legacy form too and one photo at a time; 1.00 where TensorFlow
  runs with oneDNN). Pooled-feature error: 1.2% of their spread; one gray level of noise
  moves mixed10 by 0.08%.

The recipe is shared with the ResNet-50 and MobileNet-v2 generators (tools/keras_generator.py).
So each conv's kernel is matched to the statistics of its actual input (`input_transform`):
its input channels are read through C (C + t I)^-1, C their covariance over the photos and t
half its mean eigenvalue, a Wiener filter keeping the directions the photos vary along and
suppressing the near-empty ones where noise lives, as learned filters do. Every batch norm's
beta is 0.5 (ReLUs pass ~70%; at beta 0 the matched net collapses onto one direction). Moving
statistics are those of the calibration batch, layer by layer (momentum 0). The classifier is
the random kernel projected onto the 8 principal directions of the photos' pooled features,
centred, and scaled to a trained net's logit spread (std 3 over the classes). The result is not
degenerate: activations are batch-normalized, the pooled features vary along many directions
(participation ratio 9 of their covariance over the photos; 1.5 for the stock random net,
whose features all but collapse onto one direction), top-1 probabilities are 0.04-0.65 and the
50 photos get 23 different top-1 classes. Generating both forms takes ~35 s on 2 idle cores.

Two forms can be written from the same model:

* modern (default): frozen with `convert_variables_to_constants_v2`; a float32 Placeholder `input`
  [?,299,299,3] (values in [-1, 1]) and the Softmax op itself named `softmax`. Keras 3 does not use
  the fused kernel for inference, so batch norm ends up DECOMPOSED in the frozen graph, not as
  FusedBatchNormV3: per layer, Reshape of each statistic (fed by Const -> Identity, the frozen
  ReadVariableOp), then `Rsqrt(var + eps)`, `Mul(x, rsqrt)`, `Sub(beta, mean * rsqrt)` and
  `AddV2`. Global average pooling is a `Mean`, the classifier `MatMul` + `BiasAdd` + `Softmax`.
* legacy (`--legacy`): the op vocabulary and node names of the 2015 `classify_image_graph_def.pb`,
  built NodeDef by NodeDef: Conv2D + BatchNormWithGlobalNormalization + Relu units, MaxPool,
  AvgPool, v1 `Concat` joins (`mixed_N/join`), `pool_3` (AvgPool 8x8) + `pool_3/_reshape`,
  `softmax/logits` and `softmax`. Input is the string Placeholder `DecodeJpeg/contents` ->
  DecodeJpeg -> Cast -> ExpandDims -> ResizeBilinear -> Sub 128 -> `Mul` 1/128; feed a float
  [1,299,299,3] tensor to `Mul:0` to bypass the JPEG path. BatchNormWithGlobalNormalization was
  removed at GraphDef version 9, so the graph declares producer version 8.

Before writing, each graph is imported and run in a tf.compat.v1.Session and its softmax compared
with the Keras model's on the first 4 photos (max abs diff < 1e-4; in practice ~1e-6). Output is
deterministic: the same seed and photos give byte-identical files.

Usage:
  python tools/make_inception_v3.py --output=/tmp/inception_v3.pb \
      --photos=../shared/images/imagenet_samples [--legacy] [--seed=0] [--num_photos=32]
  # both forms from one model:
  python tools/make_inception_v3.py --output=/tmp/inception_v3.pb \
      --legacy_output=/tmp/inception_v3_legacy.pb --photos=../shared/images/imagenet_samples
"""
import argparse
import collections
import os
import sys
import time

import numpy as np
import tensorflow as tf
import keras

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keras_generator  # noqa: E402  (photos, calibration, checks, writing: shared)
from keras_generator import (calibrate_body, calibrate_classifier, check_close,  # noqa: E402,F401
                             check_not_degenerate, find_photos, keep_ancestors, open_session,
                             write_graph_def)
from tensorflow.core.framework import attr_value_pb2, graph_pb2, node_def_pb2
from tensorflow.python.framework import op_def_registry
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

IMAGE_SIZE = 299
INPUT_NAME = keras_generator.INPUT_NAME
OUTPUT_NAME = keras_generator.OUTPUT_NAME
LEGACY_INPUT_NAME = "DecodeJpeg/contents"
LEGACY_FLOAT_INPUT_NAME = "Mul"
# The last GraphDef version that still accepts BatchNormWithGlobalNormalization.
LEGACY_PRODUCER_VERSION = 8
TOLERANCE = keras_generator.TOLERANCE
_inbound_layers = keras_generator.inbound_layers
_check_close = check_close


# ---------------------------------------------------------------------------------------------
# Photos

def load_photos(paths):
    """A float32 [N, 299, 299, 3] batch of preprocessed photos (see keras_generator.preprocess)."""
    return keras_generator.load_photos(paths, IMAGE_SIZE)


# ---------------------------------------------------------------------------------------------
# Keras model

def build_model(seed, images):
    """InceptionV3 with seeded random weights, calibrated on `images` (see the module docstring).

    Returns the model and its softmax on `images` (from the calibration pass).
    """
    # A fresh Keras session makes layer (and so modern node) names the same on every call.
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = keras.applications.InceptionV3(weights=None)
    features = calibrate_body(model, images, seed=seed)
    return model, calibrate_classifier(model, features)


# ---------------------------------------------------------------------------------------------
# Modern form: tf.function + convert_variables_to_constants_v2

def freeze_modern(model):
    """Frozen GraphDef with Placeholder `input` and the Softmax op named `softmax`."""
    spec = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32, name=INPUT_NAME)
    function = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    frozen = convert_variables_to_constants_v2(function.get_concrete_function())
    graph_def = frozen.graph.as_graph_def()
    nodes = {n.name: n for n in graph_def.node}
    if nodes.get(INPUT_NAME, node_def_pb2.NodeDef()).op != "Placeholder":
        raise RuntimeError("frozen graph has no Placeholder named '%s'" % INPUT_NAME)
    # The function returns its result through trailing Identity nodes; skip them.
    output = nodes[frozen.outputs[0].name.split(":")[0]]
    while output.op == "Identity":
        output = nodes[output.input[0].split(":")[0]]
    if output.op != "Softmax":
        raise RuntimeError("frozen graph ends in %s, not Softmax" % output.op)
    output.name = OUTPUT_NAME
    return keep_ancestors(graph_def, OUTPUT_NAME)


# ---------------------------------------------------------------------------------------------
# Legacy form: the 2015 classify_image_graph_def.pb vocabulary, NodeDef by NodeDef

UNIT_LAYERS = (keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


class _LegacyNamer:
    """Gives Keras layers the scope names of the 2015 graph.

    A unit is a conv (Conv2D + BatchNormalization + ReLU, all sharing the conv's name) or a pool.
    Top-level units are conv, conv_1, ..., pool, pool_1; inception blocks are mixed, mixed_1, ...
    Inside a block a branch that is one unit sits directly in the block (mixed_3/conv,
    mixed_3/pool); longer branches are towers (mixed/tower, mixed/tower_1, ...), and a nested
    block inside a tower is again "mixed" (mixed_9/tower/mixed/conv_1).
    """

    def __init__(self, model):
        self.names = {}
        self._counts = collections.Counter()
        self._ancestors = {}
        for layer in model.layers:  # topological order
            inputs = _inbound_layers(layer)
            self._ancestors[layer] = set().union(*[self._ancestors[i] | {i} for i in inputs])

    def _unique(self, scope, base):
        count = self._counts[(scope, base)]
        self._counts[(scope, base)] += 1
        name = base if count == 0 else "%s_%d" % (base, count)
        return "%s/%s" % (scope, name) if scope else name

    def _block_input(self, concat):
        """The latest layer that every branch of `concat` descends from."""
        common = set.intersection(*[self._ancestors[b] | {b} for b in _inbound_layers(concat)])
        return max(common, key=lambda layer: len(self._ancestors[layer]))

    def _chain(self, end, stop):
        """Layers after `stop` up to `end`, stepping over whole nested blocks."""
        chain, layer = [], end
        while layer is not stop:
            chain.append(layer)
            if isinstance(layer, keras.layers.Concatenate):
                layer = self._block_input(layer)
            else:
                (layer,) = _inbound_layers(layer)
        return chain[::-1]

    def name_chain(self, end, stop, scope):
        unit = None
        for layer in self._chain(end, stop):
            if isinstance(layer, keras.layers.Concatenate):
                self._name_block(layer, self._unique(scope, "mixed"))
            elif isinstance(layer, UNIT_LAYERS):
                kind = "conv" if isinstance(layer, keras.layers.Conv2D) else "pool"
                unit = self.names[layer] = self._unique(scope, kind)
            else:  # BatchNormalization, Activation: part of the preceding conv unit
                self.names[layer] = unit

    def _name_block(self, concat, scope):
        self.names[concat] = scope + "/join"
        stop = self._block_input(concat)
        for branch in _inbound_layers(concat):
            units = [l for l in self._chain(branch, stop)
                     if isinstance(l, UNIT_LAYERS + (keras.layers.Concatenate,))]
            solo = len(units) == 1 and isinstance(units[0], UNIT_LAYERS)
            self.name_chain(branch, stop, scope if solo else self._unique(scope, "tower"))


def legacy_names(model):
    """Maps each Keras layer to its 2015 node name (the unit scope, join or pool_3/softmax)."""
    namer = _LegacyNamer(model)
    pool = next(l for l in model.layers if isinstance(l, keras.layers.GlobalAveragePooling2D))
    (body_end,) = _inbound_layers(pool)
    namer.name_chain(body_end, model.layers[0], "")
    namer.names[pool] = "pool_3"  # the 2015 name, though there is no pool_2
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            namer.names[layer] = OUTPUT_NAME
    namer.names[model.layers[0]] = LEGACY_FLOAT_INPUT_NAME
    return namer.names


def _attr(value):
    """An AttrValue from a Python value: a DType, ndarray (tensor), bool, int, float, str or
    a sequence of ints."""
    if isinstance(value, tf.DType):
        return attr_value_pb2.AttrValue(type=value.as_datatype_enum)
    if isinstance(value, np.ndarray):
        return attr_value_pb2.AttrValue(tensor=tf.make_tensor_proto(value))
    if isinstance(value, bool):
        return attr_value_pb2.AttrValue(b=value)
    if isinstance(value, int):
        return attr_value_pb2.AttrValue(i=value)
    if isinstance(value, float):
        return attr_value_pb2.AttrValue(f=value)
    if isinstance(value, str):
        return attr_value_pb2.AttrValue(s=value.encode())
    return attr_value_pb2.AttrValue(list=attr_value_pb2.AttrValue.ListValue(i=list(value)))


class _GraphBuilder:
    """Appends NodeDefs, filling every attr left out with the op's registered default."""

    def __init__(self):
        self.graph_def = graph_pb2.GraphDef()

    def node(self, op, name, inputs=(), **attrs):
        node = self.graph_def.node.add(op=op, name=name, input=list(inputs))
        for key, value in attrs.items():
            node.attr[key].CopyFrom(_attr(value))
        for attr_def in op_def_registry.get(op).attr:
            if attr_def.HasField("default_value") and attr_def.name not in node.attr:
                node.attr[attr_def.name].CopyFrom(attr_def.default_value)
        return name

    def const(self, name, value, dtype=np.float32):
        value = np.asarray(value, dtype=dtype)
        return self.node("Const", name, dtype=tf.as_dtype(value.dtype), value=value)


def _add_jpeg_input(builder):
    """The 2015 preprocessing: JPEG bytes -> float [1, 299, 299, 3] in [-1, 1) at `Mul`."""
    contents = builder.node("Placeholder", LEGACY_INPUT_NAME, dtype=tf.string)
    image = builder.node("DecodeJpeg", "DecodeJpeg", [contents], channels=3)
    image = builder.node("Cast", "Cast", [image], SrcT=tf.uint8, DstT=tf.float32)
    dim = builder.const("ExpandDims/dim", 0, np.int32)
    image = builder.node("ExpandDims", "ExpandDims", [image, dim], T=tf.float32, Tdim=tf.int32)
    size = builder.const("ResizeBilinear/size", [IMAGE_SIZE, IMAGE_SIZE], np.int32)
    image = builder.node("ResizeBilinear", "ResizeBilinear", [image, size], T=tf.float32)
    image = builder.node("Sub", "Sub", [image, builder.const("Sub/y", 128.0)], T=tf.float32)
    return builder.node("Mul", LEGACY_FLOAT_INPUT_NAME, [image, builder.const("Mul/y", 1 / 128)],
                        T=tf.float32)


def _pool_attrs(layer):
    return dict(T=tf.float32, ksize=[1, *layer.pool_size, 1], strides=[1, *layer.strides, 1],
                padding=layer.padding.upper(), data_format="NHWC")


def _add_conv(builder, layer, name, x):
    if layer.use_bias or layer.dilation_rate != (1, 1) or layer.groups != 1:
        raise ValueError("unsupported Conv2D configuration in %s" % layer.name)
    kernel = builder.const(name + "/conv2d_params", layer.kernel.numpy())
    return builder.node("Conv2D", name + "/Conv2D", [x, kernel], T=tf.float32,
                        strides=[1, *layer.strides, 1], padding=layer.padding.upper(),
                        data_format="NHWC", use_cudnn_on_gpu=True)


def _add_batch_norm(builder, layer, name, x):
    if layer.scale or not layer.center:
        raise ValueError("%s: only center=True, scale=False batch norm is supported" % layer.name)
    name += "/batchnorm"
    mean = builder.const(name + "/moving_mean", layer.moving_mean.numpy())
    variance = builder.const(name + "/moving_variance", layer.moving_variance.numpy())
    beta = builder.const(name + "/beta", layer.beta.numpy())
    # Unused with scale_after_normalization=False, but the op requires it.
    gamma = builder.const(name + "/gamma", np.ones(layer.beta.shape))
    return builder.node("BatchNormWithGlobalNormalization", name,
                        [x, mean, variance, beta, gamma], T=tf.float32,
                        variance_epsilon=float(layer.epsilon), scale_after_normalization=False)


def _add_activation(builder, layer, name, x):
    if layer.activation is not keras.activations.relu:
        raise ValueError("unsupported activation in %s" % layer.name)
    return builder.node("Relu", name, [x], T=tf.float32)


def _add_max_pool(builder, layer, name, x):
    return builder.node("MaxPool", name, [x], **_pool_attrs(layer))


def _add_avg_pool(builder, layer, name, x):
    return builder.node("AvgPool", name, [x], **_pool_attrs(layer))


def _add_concat(builder, layer, name, *values):
    axis = builder.const(name + "/concat_dim", layer.axis % 4, np.int32)
    return builder.node("Concat", name, [axis, *values], N=len(values), T=tf.float32)


def _add_global_pool(builder, layer, name, x):
    # As in 2015: an 8x8 VALID AvgPool (the final feature map is 8x8) then a Reshape.
    pool = builder.node("AvgPool", name, [x], T=tf.float32, ksize=[1, 8, 8, 1],
                        strides=[1, 1, 1, 1], padding="VALID", data_format="NHWC")
    shape = builder.const(name + "/_reshape/shape", [-1, layer.input.shape[-1]], np.int32)
    return builder.node("Reshape", name + "/_reshape", [pool, shape], T=tf.float32,
                        Tshape=tf.int32)


def _add_dense_softmax(builder, layer, name, x):
    if layer.activation is not keras.activations.softmax:
        raise ValueError("the classifier %s must end in softmax" % layer.name)
    weights = builder.const(name + "/weights", layer.kernel.numpy())
    biases = builder.const(name + "/biases", layer.bias.numpy())
    logits = builder.node("MatMul", name + "/logits/MatMul", [x, weights], T=tf.float32,
                          transpose_a=False, transpose_b=False)
    logits = builder.node("BiasAdd", name + "/logits", [logits, biases], T=tf.float32,
                          data_format="NHWC")
    return builder.node("Softmax", name, [logits], T=tf.float32)


LEGACY_EMITTERS = {
    keras.layers.Conv2D: _add_conv,
    keras.layers.BatchNormalization: _add_batch_norm,
    keras.layers.Activation: _add_activation,
    keras.layers.MaxPooling2D: _add_max_pool,
    keras.layers.AveragePooling2D: _add_avg_pool,
    keras.layers.Concatenate: _add_concat,
    keras.layers.GlobalAveragePooling2D: _add_global_pool,
    keras.layers.Dense: _add_dense_softmax,
}


def build_legacy(model):
    """The 2015-vocabulary GraphDef computing the same function as `model`."""
    builder = _GraphBuilder()
    names = legacy_names(model)
    outputs = {model.layers[0]: _add_jpeg_input(builder)}
    for layer in model.layers[1:]:
        emit = LEGACY_EMITTERS.get(type(layer))
        if emit is None:
            raise ValueError("no legacy op for layer %s (%s)" % (layer.name, type(layer).__name__))
        inputs = [outputs[i] for i in _inbound_layers(layer)]
        outputs[layer] = emit(builder, layer, names[layer], *inputs)
    graph_def = builder.graph_def
    graph_def.versions.producer = LEGACY_PRODUCER_VERSION
    return graph_def


# ---------------------------------------------------------------------------------------------
# Verification

def predict(session, images, legacy=False):
    """Softmax for preprocessed images; the legacy graph takes them one at a time at `Mul:0`."""
    if not legacy:
        return session.run(OUTPUT_NAME + ":0", {INPUT_NAME + ":0": images})
    feed = LEGACY_FLOAT_INPUT_NAME + ":0"
    return np.concatenate([session.run(OUTPUT_NAME + ":0", {feed: image[None]})
                           for image in images])


def verify_modern(graph_def, images, expected):
    """Checks the frozen graph against Keras' `expected` softmax at batch 1 and 4; max diff."""
    with open_session(graph_def) as session:
        return max(_check_close("modern graph vs Keras (batch %d)" % n,
                                predict(session, images[:n]), expected[:n])
                   for n in (1, 4))


def verify_legacy(graph_def, images, expected, jpeg_path):
    """Checks the legacy graph against Keras at `Mul:0` and that its JPEG path runs; max diff."""
    with open_session(graph_def) as session:
        diff = _check_close("legacy graph vs Keras", predict(session, images, legacy=True),
                            expected)
        with open(jpeg_path, "rb") as f:
            probs = session.run(OUTPUT_NAME + ":0", {LEGACY_INPUT_NAME + ":0": f.read()})
    if probs.shape != (1, 1000) or abs(float(probs.sum()) - 1) > 1e-3:
        raise RuntimeError("legacy graph fed JPEG bytes gives a bad softmax")
    return diff


# ---------------------------------------------------------------------------------------------
# Writing

def _write(path, graph_def, start, diff, verbose):
    write_graph_def(graph_def, path)
    if verbose:
        print("wrote %s: %d nodes, %.1f MB, %.0f s since start, max |softmax - Keras| %.2g" % (
            path, len(graph_def.node), os.path.getsize(path) / 1e6, time.time() - start, diff))


def _prepare(photos_dir, seed, num_photos):
    """The calibrated model, the first 4 photos, their Keras softmax and the first photo's path."""
    paths = find_photos(photos_dir, num_photos)
    images = load_photos(paths)
    model, train_probs = build_model(seed, images)
    images = images[:4]
    expected = model(images, training=False).numpy()
    check_not_degenerate(train_probs, expected)
    return model, images, expected, paths[0]


def generate_both(modern_path, legacy_path, photos_dir, seed=0, num_photos=32, verbose=False):
    """Writes the modern and legacy forms of one model; returns (modern_path, legacy_path).

    Either path may be None to skip that form.
    """
    start = time.time()
    model, images, expected, jpeg_path = _prepare(photos_dir, seed, num_photos)
    if modern_path:
        graph_def = freeze_modern(model)
        diff = verify_modern(graph_def, images, expected)
        _write(modern_path, graph_def, start, diff, verbose)
    if legacy_path:
        graph_def = build_legacy(model)
        diff = verify_legacy(graph_def, images, expected, jpeg_path)
        _write(legacy_path, graph_def, start, diff, verbose)
    return modern_path, legacy_path


def generate(output_path, photos_dir, legacy=False, seed=0, num_photos=32, verbose=False):
    """Writes one form (modern, or legacy with `legacy=True`); returns `output_path`."""
    paths = (None, output_path) if legacy else (output_path, None)
    generate_both(*paths, photos_dir, seed=seed, num_photos=num_photos, verbose=verbose)
    return output_path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="GraphDef to write (.pb)")
    parser.add_argument("--photos", required=True, help="folder of JPEG photos for batch norm")
    parser.add_argument("--legacy", action="store_true", help="2015 classify_image op vocabulary")
    parser.add_argument("--legacy_output", help="also write the legacy form here (same model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_photos", type=int, default=32)
    args = parser.parse_args(argv)
    if args.legacy and args.legacy_output:
        parser.error("--legacy_output needs the modern form at --output; drop --legacy")
    if args.legacy_output:
        generate_both(args.output, args.legacy_output, args.photos, args.seed, args.num_photos,
                      verbose=True)
    else:
        generate(args.output, args.photos, args.legacy, args.seed, args.num_photos, verbose=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
