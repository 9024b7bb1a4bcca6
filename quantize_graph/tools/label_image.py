"""label_image: classify one image with a frozen graph and print the top-k labels.

The successor of TensorFlow's examples/label_image, with the 2016 flag spellings kept as aliases:

  label_image --graph=frozen.pb --labels=labels.txt --image=photo.jpg \\
      --input_layer=input --output_layer=MobilenetV1/Predictions/Reshape_1 \\
      --input_mean=127.5 --input_std=127.5
"""
import os

# TF's C++ INFO lines (CPU features, MLIR passes) would bury both the results and the one-line
# errors, so they are silenced unless the user asked for them; this must precede TF's import.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from quantize_graph.errors import QuantizeGraphError
from quantize_graph.tools.entry import define_preprocessing_flags, run_tool  # noqa: E402
from quantize_graph.graph.io import load_graph_def  # noqa: E402
from quantize_graph.graph.names import (  # noqa: E402
    ensure_tensor_name_has_port, node_name_from_input)
from quantize_graph.preprocess import read_file_bytes, read_image, read_labels  # noqa: E402
from quantize_graph.runner import GraphRunner  # noqa: E402

PROG = "label_image"
DEFAULT_SIZE = 299

# Private flag registry, so that other tools' flags of the same names can live in one process.
FLAGS = flags.FlagValues()
flags.DEFINE_string("graph", None, "Frozen GraphDef to run (.pb or .pbtxt).", flag_values=FLAGS)
flags.DEFINE_string("image", None, "Image to classify (JPEG, PNG, GIF or BMP).", flag_values=FLAGS)
flags.DEFINE_string("labels", None, "Labels file: one per line, or `N:name` lines.",
                    flag_values=FLAGS)
flags.DEFINE_string("input_layer", "input", "Input tensor (':0' optional). A string input gets "
                    "the encoded file; a float input gets the decoded image.", flag_values=FLAGS)
flags.DEFINE_string("output_layer", "softmax", "Output tensor of class scores (':0' optional).",
                    flag_values=FLAGS)
define_preprocessing_flags(FLAGS, DEFAULT_SIZE, default_crop=None)
flags.DEFINE_integer("top_k", 5, "How many labels to print.", lower_bound=1, flag_values=FLAGS)
for _alias, _original in [("input_graph", "graph"), ("mean_value", "input_mean"),
                          ("std_value", "input_std"), ("input_layer_name", "input_layer"),
                          ("output_layer_name", "output_layer")]:
    flags.DEFINE_alias(_alias, _original, flag_values=FLAGS)


def label_image(graph_path, image_path, labels_path=None, input_layer="input",
                output_layer="softmax", height=None, width=None, mean=0.0, std=255.0, top_k=5,
                crop_fraction=None):
    """Classifies one image; returns the top_k (label, index, score), highest score first."""
    top, _ = label_image_timed(graph_path, image_path, labels_path, input_layer, output_layer,
                               height, width, mean, std, top_k, crop_fraction)
    return top


def label_image_timed(graph_path, image_path, labels_path=None, input_layer="input",
                      output_layer="softmax", height=None, width=None, mean=0.0, std=255.0,
                      top_k=5, crop_fraction=None):
    """Like label_image, and also returns the milliseconds of one run after a warm-up run."""
    if top_k < 1:
        raise QuantizeGraphError("top_k must be at least 1, got %d" % top_k)
    labels = read_labels(labels_path) if labels_path else []
    graph_def = load_graph_def(graph_path)
    with GraphRunner(graph_def) as runner:
        inp = _layer_tensor(runner.graph, input_layer, "input")
        out = _layer_tensor(runner.graph, output_layer, "output")
        value = _input_value(inp, image_path, height, width, mean, std, crop_fraction)
        scores, ms = _timed_run(runner, out.name, {inp.name: value})
    return _top_k(scores, labels, top_k, output_layer), ms


def _layer_tensor(graph, layer, role):
    """The tensor named by --input_layer/--output_layer, with a hint when the name is wrong."""
    try:
        graph.get_operation_by_name(node_name_from_input(layer))
    except (KeyError, ValueError):
        raise QuantizeGraphError("%s layer '%s' is not in the graph%s"
                                 % (role, layer, _layer_hint(graph, role)))
    try:
        return graph.get_tensor_by_name(ensure_tensor_name_has_port(layer))
    except (KeyError, ValueError):
        raise QuantizeGraphError("%s layer '%s' is not a tensor of the graph" % (role, layer))


def _layer_hint(graph, role):
    """Names that are likely meant: the placeholders for inputs, the unconsumed ops for outputs."""
    ops = graph.get_operations()
    if role == "input":
        names = [op.name for op in ops if op.type == "Placeholder"]
    else:
        names = [op.name for op in ops if op.outputs and op.type != "Const"
                 and not any(t.consumers() for t in op.outputs)]
    return "; candidates: %s" % ", ".join(names[:5]) if names else ""


def _input_value(tensor, image_path, height, width, mean, std, crop_fraction):
    """What to feed: the encoded file to a string input, else the preprocessed image."""
    if tensor.dtype == tf.string:
        return read_file_bytes(image_path)  # e.g. DecodeJpeg/contents: the graph decodes it
    layer = tensor.name
    if not tensor.dtype.is_floating:
        raise QuantizeGraphError("input layer '%s' has type %s; label_image feeds float images, "
                                 "or the encoded file to a string input"
                                 % (layer, tensor.dtype.name))
    dims = tensor.shape.as_list() if tensor.shape.rank is not None else None
    if dims is not None and (len(dims) not in (3, 4) or dims[-1] not in (None, 3)):
        raise QuantizeGraphError("input layer '%s' has shape %s; expected an RGB image "
                                 "[batch, height, width, 3] or [height, width, 3]" % (layer, dims))
    if dims is not None and len(dims) == 4 and dims[0] not in (None, 1):
        raise QuantizeGraphError("input layer '%s' takes a batch of %d; label_image feeds one "
                                 "image" % (layer, dims[0]))
    static_h, static_w = dims[-3:-1] if dims else (None, None)
    height = _image_dim(height, static_h, "height", layer)
    width = _image_dim(width, static_w, "width", layer)
    image = read_image(image_path, height, width, mean, std, crop_fraction)
    if dims is None or len(dims) == 4:
        image = image[np.newaxis]  # unknown rank too: [1, H, W, 3] is what image models take
    return image.astype(tensor.dtype.as_numpy_dtype)


def _image_dim(given, static, what, layer):
    """The requested size, else the input's static size, else the default; never a mismatch."""
    if given is None:
        return static or DEFAULT_SIZE
    if static is not None and given != static:
        raise QuantizeGraphError("input layer '%s' takes images of %s %d, but %d was asked "
                                 "(--input_%s)" % (layer, what, static, given, what))
    return given


def _timed_run(runner, output, feeds):
    """Times one run after a warm-up run, which pays for graph optimisation and allocation."""
    runner.run([output], feeds)
    start = time.perf_counter()
    scores = runner.run([output], feeds)[0]
    return scores, (time.perf_counter() - start) * 1000.0


def _top_k(scores, labels, k, output_layer):
    """The k best (label, index, score); an index past the labels file is its own label."""
    vector = np.squeeze(np.asarray(scores))
    if vector.ndim != 1:
        raise QuantizeGraphError("output layer '%s' has shape %s; expected one score per class"
                                 % (output_layer, list(np.shape(scores))))
    order = np.argsort(-vector, kind="stable")[:k]
    return [(labels[i] if i < len(labels) else str(i), int(i), float(vector[i])) for i in order]


def main(argv):
    """Parses argv, classifies, prints; raises QuantizeGraphError or flags.Error on bad input."""
    FLAGS.unparse_flags()  # run() may be called more than once in a process (tests)
    extra = FLAGS(argv)[1:]
    if extra:
        raise QuantizeGraphError("unexpected argument '%s'" % extra[0])
    for name in ("graph", "image"):
        if not FLAGS[name].value:
            raise QuantizeGraphError("--%s is required" % name)
    top, ms = label_image_timed(
        FLAGS.graph, FLAGS.image, FLAGS.labels, FLAGS.input_layer, FLAGS.output_layer,
        FLAGS.input_height, FLAGS.input_width, FLAGS.input_mean, FLAGS.input_std, FLAGS.top_k,
        FLAGS.crop_fraction)
    for label, index, score in top:
        print("%s (%d): %.5f" % (label, index, score))
    print("inference time: %.2f ms (one run, after a warm-up run)" % ms)


def run(argv=None):
    """Console-script entry point; returns the exit status."""
    return run_tool(PROG, "--graph=GRAPH --image=IMAGE [flags]", FLAGS, main, argv)


if __name__ == "__main__":
    sys.exit(run())
