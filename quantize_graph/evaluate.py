"""Accuracy of a graph on labelled photos: shared by the tests, the demo and the tools."""
import csv
import os

import numpy as np

from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph.names import ensure_tensor_name_has_port
from quantize_graph.preprocess import read_image
from quantize_graph.runner import GraphRunner


def read_labels_csv(path, label_column="index_1000"):
    """[(file name, integer label)] from a CSV with a `file` column and `label_column`."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise QuantizeGraphError("cannot read labels file '%s': %s" % (path, e.strerror))
    if not rows or "file" not in rows[0] or label_column not in rows[0]:
        raise QuantizeGraphError("labels file '%s' needs columns 'file' and '%s'" % (path, label_column))
    return [(r["file"], int(r[label_column])) for r in rows]


def load_images(folder, files, height, width, mean, std, crop_fraction=None):
    return np.stack([read_image(os.path.join(folder, f), height, width, mean, std, crop_fraction)
                     for f in files])


def predict(graph_def, input_name, output_name, images, batch=1):
    """Runs the graph over `images` in batches; returns the stacked outputs."""
    runner = GraphRunner(graph_def)
    inp, out = ensure_tensor_name_has_port(input_name), ensure_tensor_name_has_port(output_name)
    try:
        return np.concatenate([runner.run([out], {inp: images[i:i + batch]})[0]
                               for i in range(0, len(images), batch)])
    finally:
        runner.close()


def top_k_accuracy(scores, labels, k=1):
    top = np.argsort(-scores.reshape(len(labels), -1), axis=1)[:, :k]
    return float(np.mean([label in row for label, row in zip(labels, top)]))
