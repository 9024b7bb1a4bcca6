"""The real, ImageNet-trained MobileNet v1 0.25 from ../shared: accuracy of the weight modes
on the 1000 labelled photos, the onednn int8 graph calibrated on photos 0-99 and evaluated on
the other 900 (issue 3's acceptance), and label_image on its eightbit graph."""
import numpy as np
import pytest

import quantize_graph as qg
from quantize_graph.evaluate import load_images, predict, read_labels_csv, top_k_accuracy
from quantize_graph.targets.probe import onednn_int8_runs
from quantize_graph.tools.label_image import label_image

OUTPUT = "MobilenetV1/Predictions/Reshape_1"
MAX_TOP1_DROP = 0.015
MAX_SIZE_RATIO = 0.30
CALIBRATION_PHOTOS = 100
# onednn int8 vs float on the 900 photos not used for calibration. Measured (defaults): top-1
# 58.1% -> 57.3% (drop 0.8 point), agreement 0.930. The drop moves by about +-0.5 point with
# which photos happen to flip, so the agreement is the sharper check: 0.870 without bias
# correction, 0.911 without range equalization; both fail this.
MIN_INT8_AGREEMENT = 0.92


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


@pytest.mark.skipif(not onednn_int8_runs(), reason="TensorFlow's oneDNN int8 kernels do not run here")
def test_onednn_int8_on_photos_not_used_for_calibration(model_dir, labelled):
    images, labels = labelled
    graph = qg.load_graph_def(str(model_dir / "frozen_graph.pb"))
    q = qg.quantize(graph, [OUTPUT], mode="eightbit", target="onednn",
                    calibration_inputs={"input": images[:CALIBRATION_PHOTOS]})
    assert sum(n.op.startswith("Quantized") for n in q.node) >= 27  # 13 dw + 13 pw + pool
    test, test_labels = images[CALIBRATION_PHOTOS:], labels[CALIBRATION_PHOTOS:]
    want, got = predict(graph, "input", OUTPUT, test), predict(q, "input", OUTPUT, test)
    float_top1, int8_top1 = top_k_accuracy(want, test_labels), top_k_accuracy(got, test_labels)
    agreement = np.mean(want.reshape(len(test), -1).argmax(1) == got.reshape(len(test), -1).argmax(1))
    assert len(test_labels) == 900
    assert float_top1 - int8_top1 <= MAX_TOP1_DROP, "int8 top-1 %.3f vs float %.3f" % (int8_top1, float_top1)
    assert agreement >= MIN_INT8_AGREEMENT, "top-1 agreement with float %.3f" % agreement


def test_label_image_on_eightbit_graph(model_dir, shared, tmp_path):
    out = tmp_path / "eightbit.pb"
    qg.quantize_file(str(model_dir / "frozen_graph.pb"), str(out), [OUTPUT], mode="eightbit")
    top5 = label_image(str(out), str(shared / "images" / "grace_hopper.jpg"),
                       str(model_dir / "labels.txt"), input_layer="input", output_layer=OUTPUT,
                       height=224, width=224, mean=127.5, std=127.5, top_k=5)
    assert "military uniform" in [label for label, _, _ in top5]
