"""Light checks of the generated Inception-v3 graphs (both forms come from the cache)."""
import collections

import numpy as np
import pytest
import tensorflow as tf

from tests.model_cache import inception_v3_paths, load_generator, photos_dir

LEGACY_OPS = {
    "Placeholder", "DecodeJpeg", "Cast", "ExpandDims", "ResizeBilinear", "Sub", "Mul", "Const",
    "Conv2D", "BatchNormWithGlobalNormalization", "Relu", "MaxPool", "AvgPool", "Concat",
    "Reshape", "MatMul", "BiasAdd", "Softmax",
}


def _load(path):
    graph_def = tf.compat.v1.GraphDef()
    with open(path, "rb") as f:
        graph_def.ParseFromString(f.read())
    return graph_def


@pytest.fixture(scope="module")
def graphs():
    modern_path, legacy_path = inception_v3_paths()
    return _load(modern_path), _load(legacy_path)


def _ops(graph_def):
    return collections.Counter(n.op for n in graph_def.node)


def _node(graph_def, name):
    return next(n for n in graph_def.node if n.name == name)


def test_modern_graph_vocabulary(graphs):
    modern, _ = graphs
    ops = _ops(modern)
    assert ops["BatchNormWithGlobalNormalization"] == 0
    assert ops["Concat"] == 0
    assert ops["Conv2D"] == 94
    placeholder = _node(modern, "input")
    assert placeholder.op == "Placeholder"
    assert tf.dtypes.as_dtype(placeholder.attr["dtype"].type) == tf.float32
    assert [d.size for d in placeholder.attr["shape"].shape.dim] == [-1, 299, 299, 3]
    assert _node(modern, "softmax").op == "Softmax"
    # softmax is the graph's end: no Identity (or anything else) after it.
    assert not any("softmax" in n.input for n in modern.node)


def test_legacy_graph_vocabulary(graphs):
    _, legacy = graphs
    ops = _ops(legacy)
    assert set(ops) == LEGACY_OPS
    assert ops["BatchNormWithGlobalNormalization"] == 94
    assert ops["Concat"] == 15
    assert legacy.versions.producer == 8
    contents = _node(legacy, "DecodeJpeg/contents")
    assert contents.op == "Placeholder"
    assert tf.dtypes.as_dtype(contents.attr["dtype"].type) == tf.string
    assert _node(legacy, "Mul").op == "Mul"
    assert _node(legacy, "softmax").op == "Softmax"
    assert _node(legacy, "mixed_10/join").input[0] == "mixed_10/join/concat_dim"
    assert _node(legacy, "pool_3/_reshape").input[0] == "pool_3"


def test_forms_agree_on_four_photos(graphs):
    generator = load_generator()
    images = generator.load_photos(generator.find_photos(photos_dir(), 4))
    modern, legacy = graphs
    with generator.open_session(modern) as session:
        modern_probs = generator.predict(session, images)
    with generator.open_session(legacy) as session:
        legacy_probs = generator.predict(session, images, legacy=True)
    assert modern_probs.shape == (4, 1000)
    np.testing.assert_allclose(legacy_probs, modern_probs, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(legacy_probs.argmax(axis=1), modern_probs.argmax(axis=1))


def test_not_chaotic(graphs):
    """One gray level of noise barely moves the logits, as in a trained net.

    A random BN-ReLU net amplifies perturbations layer after layer: the stock random Inception-v3
    changed its logits by 36-61% and half of its top-1 classes under this noise, so no 8-bit
    version of it could agree with float. The generator's calibration makes it robust (< 0.1%)
    without collapsing its outputs onto a few classes.
    """
    generator = load_generator()
    # Photos the generator did not calibrate on (it uses the first 32).
    images = generator.load_photos(generator.find_photos(photos_dir(), 40)[32:])
    noise = np.random.default_rng(0).uniform(-1, 1, images.shape) / 127.5  # +-1 of 255 levels
    modern, _ = graphs
    with generator.open_session(modern) as session:
        probs = generator.predict(session, images)
        noisy_probs = generator.predict(session, (images + noise).astype(np.float32))
    # Log-probabilities centred per photo: the logits up to their mean.
    logits, noisy_logits = np.log(probs), np.log(noisy_probs)
    logits -= logits.mean(axis=1, keepdims=True)
    noisy_logits -= noisy_logits.mean(axis=1, keepdims=True)
    change = np.linalg.norm(noisy_logits - logits, axis=1) / np.linalg.norm(logits, axis=1)
    assert np.max(change) < 0.01, "logits move by up to %.1f%%" % (100 * np.max(change))
    np.testing.assert_array_equal(noisy_probs.argmax(axis=1), probs.argmax(axis=1))
    assert len(set(probs.argmax(axis=1))) >= 4, "the photos share too few top-1 classes"
