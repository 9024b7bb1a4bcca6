"""Generated ResNet-50 and MobileNet-v2: the op types they must hold, not chaotic, and the
onednn target's agreement with float.

To stay within CI's budget the models are generated at 128x128 (the acceptance figures at
224x224, calibrated on 100 photos, are in docs/onednn_notes.md) and the end-to-end check
calibrates on photos 0-31 and compares top-1 with float on the 64 photos after them.
"""
import collections

import numpy as np
import pytest

import quantize_graph as qg
from quantize_graph.evaluate import predict
from quantize_graph.lowering.onednn_residual import SUM_OP
from quantize_graph.targets.probe import onednn_int8_runs
from tests.model_cache import load_generator, mobilenet_v2_path, photos_dir, resnet50_path

SIZE = 128
CALIBRATION, HELD_OUT = 32, 64
MODELS = {"resnet50": resnet50_path, "mobilenet_v2": mobilenet_v2_path}


@pytest.fixture(scope="module")
def graphs():
    return {name: qg.load_graph_def(path(SIZE)) for name, path in MODELS.items()}


@pytest.fixture(scope="module")
def photos():
    generator = load_generator("keras_generator")
    paths = generator.find_photos(photos_dir(), CALIBRATION + HELD_OUT)
    return generator.load_photos(paths, SIZE)


def _ops(graph_def):
    return collections.Counter(n.op for n in graph_def.node)


def _readers(graph_def, op):
    nodes = {n.name: n for n in graph_def.node}
    readers = collections.defaultdict(list)
    for n in graph_def.node:
        for i in n.input:
            readers[i.split(":")[0]].append(n.op)
    return [readers[n.name] for n in nodes.values() if n.op == op]


def test_resnet50_keeps_batch_norms_and_residual_adds(graphs):
    ops = _ops(graphs["resnet50"])
    assert ops["Conv2D"] == 53 and ops["FusedBatchNormV3"] == 53
    assert ops["AddV2"] == 16 and ops["Relu"] == 49
    assert all(r == ["Relu"] for r in _readers(graphs["resnet50"], "AddV2"))  # Add + Relu


def test_mobilenet_v2_has_depthwise_relu6_and_linear_residuals(graphs):
    ops = _ops(graphs["mobilenet_v2"])
    assert ops["DepthwiseConv2dNative"] == 17 and ops["Relu6"] == 35 and ops["Relu"] == 0
    assert ops["FusedBatchNormV3"] == 52 and ops["AddV2"] == 10
    assert not any("Relu6" in r for r in _readers(graphs["mobilenet_v2"], "AddV2"))


@pytest.mark.parametrize("name", MODELS)
def test_not_chaotic(graphs, photos, name):
    """One gray level of noise barely moves the logits (see test_make_inception_v3.py: a stock
    random net moves them by tens of percent). Measured at 128x128: ResNet-50 <= 0.4%,
    MobileNet-v2 <= 1.5%."""
    generator = load_generator("keras_generator")
    images = photos[CALIBRATION:CALIBRATION + 8]  # not used by the generator's calibration
    noise = np.random.default_rng(0).uniform(-1, 1, images.shape) / 127.5
    with generator.open_session(graphs[name]) as session:
        probs = generator.predict(session, images)
        noisy = generator.predict(session, (images + noise).astype(np.float32))
    logits, noisy_logits = np.log(probs), np.log(noisy)
    logits -= logits.mean(axis=1, keepdims=True)
    noisy_logits -= noisy_logits.mean(axis=1, keepdims=True)
    change = np.linalg.norm(noisy_logits - logits, axis=1) / np.linalg.norm(logits, axis=1)
    assert np.max(change) < 0.02, "logits move by up to %.1f%%" % (100 * np.max(change))
    assert len(set(probs.argmax(axis=1))) >= 3, "the photos share too few top-1 classes"


@pytest.mark.skipif(not onednn_int8_runs(), reason="TensorFlow's oneDNN int8 kernels do not run")
@pytest.mark.parametrize("name", MODELS)
def test_onednn_agrees_with_float(graphs, photos, name):
    graph_def = graphs[name]
    q = qg.quantize(graph_def, ["softmax"], target="onednn",
                    calibration_inputs={"input": photos[:CALIBRATION]})
    ops = _ops(q)
    if name == "resnet50":  # the 12 identity blocks fuse their Add + Relu
        assert ops[SUM_OP] == 12 and ops["AddV2"] == 4
    else:  # every conv but the first (3x3 on the signed image) is int8
        assert ops["Conv2D"] == 1 and ops["DepthwiseConv2dNative"] == 0
    held_out = photos[CALIBRATION:]
    expected = predict(graph_def, "input", "softmax", held_out, batch=8).argmax(1)
    got = predict(q, "input", "softmax", held_out, batch=8).argmax(1)
    agreement = float(np.mean(expected == got))
    assert agreement >= 0.95, "top-1 agreement %.3f" % agreement
