"""Generated Inception-v3 (Keras form and the 2015 classify_image form) through eightbit.

No trained Inception-v3 exists here; tools/make_inception_v3.py generates the architecture
with batch-norm statistics from real photos. Fidelity to float is what is measured.
"""
import os

import numpy as np
import pytest

import quantize_graph as qg
from quantize_graph.preprocess import list_images, read_image
from quantize_graph.runner import GraphRunner
from tests.model_cache import inception_v3_paths

PHOTOS = 50           # not among the photos the generator set batch norms from (the first 32)
FIRST_PHOTO = 200
MIN_AGREEMENT = 0.90
MAX_SIZE_RATIO = 0.30


@pytest.fixture(scope="module")
def photos(shared):
    files = list_images(str(shared / "images" / "imagenet_samples"))[FIRST_PHOTO:FIRST_PHOTO + PHOTOS]
    return np.stack([read_image(f, 299, 299, 127.5, 127.5, crop_fraction=0.875) for f in files])


@pytest.fixture(scope="module")
def models(shared):
    return inception_v3_paths()


def _top1(graph_def, input_tensor, photos):
    runner = GraphRunner(graph_def)
    try:
        return np.array([runner.run(["softmax:0"], {input_tensor: p[None]})[0].argmax()
                         for p in photos])
    finally:
        runner.close()


@pytest.mark.parametrize("form,input_tensor", [("modern", "input:0"), ("legacy", "Mul:0")])
def test_eightbit_inception_v3_imports_runs_and_is_small(models, photos, tmp_path, form, input_tensor):
    float_path = models[0] if form == "modern" else models[1]
    out = tmp_path / "eightbit.pb"
    qg.quantize_file(float_path, str(out), ["softmax"], mode="eightbit", target="reference")
    quantized = qg.load_graph_def(str(out))
    ops = {n.op for n in quantized.node}
    assert "QuantizedConv2D" in ops and "QuantizedConcat" in ops and "QuantizedMaxPool" in ops
    assert "BatchNormWithGlobalNormalization" not in ops

    ratio = os.path.getsize(out) / os.path.getsize(float_path)
    assert ratio <= MAX_SIZE_RATIO, "eightbit file is %.1f%% of float" % (100 * ratio)
    assert _top1(quantized, input_tensor, photos[:2]).shape == (2,)


@pytest.mark.parametrize("form,input_tensor", [("modern", "input:0"), ("legacy", "Mul:0")])
def test_eightbit_inception_v3_agrees_with_float(models, photos, tmp_path, form, input_tensor):
    float_path = models[0] if form == "modern" else models[1]
    quantized = qg.quantize(qg.load_graph_def(float_path), ["softmax"], mode="eightbit",
                            target="reference")
    reference = _top1(qg.load_graph_def(float_path), input_tensor, photos)
    got = _top1(quantized, input_tensor, photos)
    agreement = float(np.mean(reference == got))
    assert agreement >= MIN_AGREEMENT, "top-1 agreement %.2f < %.2f" % (agreement, MIN_AGREEMENT)
