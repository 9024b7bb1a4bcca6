"""The real, ImageNet-trained MobileNet v1 0.25 from ../shared: accuracy of the weight modes
on the 1000 labelled photos, and label_image on its eightbit graph."""
import numpy as np
import pytest

import quantize_graph as qg
from quantize_graph.evaluate import load_images, predict, read_labels_csv, top_k_accuracy
from quantize_graph.tools.label_image import label_image

OUTPUT = "MobilenetV1/Predictions/Reshape_1"
MAX_TOP1_DROP = 0.015
MAX_SIZE_RATIO = 0.30


@pytest.fixture(scope="module")
def model_dir(shared):
    return shared / "models" / "mobilenet_v1_0.25_224"


@pytest.fixture(scope="module")
def labelled(shared):
    folder = shared / "images" / "imagenet_samples"
    rows = read_labels_csv(str(folder / "labels.csv"), "index_1001")  # 1001 classes, 0 = background
    images = load_images(str(folder), [f for f, _ in rows], 224, 224, 127.5, 127.5, crop_fraction=0.875)
    return images, np.array([label for _, label in rows])


@pytest.fixture(scope="module")
def float_top1(model_dir, labelled):
    images, labels = labelled
    graph = qg.load_graph_def(str(model_dir / "frozen_graph.pb"))
    return top_k_accuracy(predict(graph, "input", OUTPUT, images), labels)


@pytest.mark.parametrize("mode", ["weights", "weights_rounded"])
def test_weight_modes_keep_accuracy(model_dir, labelled, float_top1, tmp_path, mode):
    images, labels = labelled
    out = tmp_path / (mode + ".pb")
    qg.quantize_file(str(model_dir / "frozen_graph.pb"), str(out), [OUTPUT], mode=mode)
    top1 = top_k_accuracy(predict(qg.load_graph_def(str(out)), "input", OUTPUT, images), labels)
    assert len(labels) >= 200
    assert float_top1 - top1 <= MAX_TOP1_DROP, "%s: top-1 %.3f vs float %.3f" % (mode, top1, float_top1)
    if mode == "weights":
        ratio = out.stat().st_size / (model_dir / "frozen_graph.pb").stat().st_size
        assert ratio <= MAX_SIZE_RATIO


def test_label_image_on_eightbit_graph(model_dir, shared, tmp_path):
    out = tmp_path / "eightbit.pb"
    qg.quantize_file(str(model_dir / "frozen_graph.pb"), str(out), [OUTPUT], mode="eightbit")
    top5 = label_image(str(out), str(shared / "images" / "grace_hopper.jpg"),
                       str(model_dir / "labels.txt"), input_layer="input", output_layer=OUTPUT,
                       height=224, width=224, mean=127.5, std=127.5, top_k=5)
    assert "military uniform" in [label for label, _, _ in top5]
