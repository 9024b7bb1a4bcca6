"""evaluate_graph: top-1/top-5 accuracy of a frozen classifier on labelled photos, and how far a
second graph (say, its quantized version) strays from it.

  evaluate_graph --graph=frozen.pb --compare=eightbit.pb \\
      --images=../shared/images/imagenet_samples \\
      --labels_csv=../shared/images/imagenet_samples/labels.csv --label_offset=1 \\
      --input_mean=127.5 --input_std=127.5

The labels file has a `file` column (names relative to --images) and an integer column
(--label_column, default index_1000); a graph's class index is that integer + --label_offset
(1 for the 1001-class TF-slim models, whose class 0 is "background").
"""
import os

# TF's C++ INFO lines would bury the results and the one-line errors; this must precede TF's import.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from quantize_graph.compare import output_errors  # noqa: E402
from quantize_graph.errors import QuantizeGraphError
from quantize_graph.tools.entry import define_preprocessing_flags, run_tool  # noqa: E402
from quantize_graph.evaluate import load_images, read_labels_csv, top_k_accuracy  # noqa: E402
from quantize_graph.preprocess import check_preprocessing, list_images  # noqa: E402
from quantize_graph.progress import ProgressBar  # noqa: E402
from quantize_graph.tools.benchmark_graph import Model, graph_label  # noqa: E402

PROG = "evaluate_graph"
DEFAULT_SIZE = 224
DEFAULT_BATCH = 32

# Private flag registry, so that other tools' flags of the same names can live in one process.
FLAGS = flags.FlagValues()
flags.DEFINE_string("graph", None, "Frozen GraphDef to evaluate (.pb or .pbtxt): graph A.",
                    flag_values=FLAGS)
flags.DEFINE_string("compare", None, "A second GraphDef, B, evaluated on the same images and "
                    "compared with A (top-1 agreement, relative error).", flag_values=FLAGS)
flags.DEFINE_string("images", None, "Folder of the photos named in --labels_csv.",
                    flag_values=FLAGS)
flags.DEFINE_string("labels_csv", None, "CSV with a `file` column and --label_column.",
                    flag_values=FLAGS)
flags.DEFINE_string("label_column", "index_1000", "Integer label column of --labels_csv.",
                    flag_values=FLAGS)
flags.DEFINE_integer("label_offset", 0, "Added to each CSV label to get the graph's class index "
                     "(1 for 1001-class outputs with a background class 0).", flag_values=FLAGS)
flags.DEFINE_string("input_layer", None, "Input tensor (':0' optional); default: the graph's "
                    "only Placeholder.", flag_values=FLAGS)
flags.DEFINE_string("output_layer", None, "Output tensor of class scores (':0' optional); "
                    "default: the node no other node reads.", flag_values=FLAGS)
define_preprocessing_flags(FLAGS, DEFAULT_SIZE, default_crop=0.875)
flags.DEFINE_integer("skip", 0, "Skip the first N rows of the labels file.", lower_bound=0,
                     flag_values=FLAGS)
flags.DEFINE_integer("limit", None, "Evaluate at most N images (after --skip).", lower_bound=1,
                     flag_values=FLAGS)
flags.DEFINE_integer("batch", None, "Images per run; default: the input's fixed batch, else %d."
                     % DEFAULT_BATCH, lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("threads", None, "intra_op and inter_op threads of each session; "
                     "default: TensorFlow's.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_boolean("json", False, "Print the result as a JSON document.", flag_values=FLAGS)
flags.DEFINE_boolean("progress", True, "Show a progress bar on stderr.", flag_values=FLAGS)


def evaluate(graph_a, images_dir, labels_csv, graph_b=None, label_column="index_1000",
             label_offset=0, input_layer=None, output_layer=None, height=None, width=None,
             mean=0.0, std=255.0, crop_fraction=0.875, skip=0, limit=None, batch=None,
             threads=None, progress=True):
    """Accuracy of graph A (and B) on the labelled photos; returns a dict:

    {"images": n, "label_column", "label_offset", "height", "width",
     "A": {"graph", "top1", "top5"}, "B": {...},
     "comparison": {"top1_agreement", "differing", "mean_relative_error",
                    "relative_error", "max_abs_error"}}   (B and comparison only with graph_b)

    Graphs are paths or GraphDefs. `progress` shows a bar on stderr. A fixed-batch input is fed
    exactly its batch (the last one padded with copies of the last image).
    """
    if skip < 0 or (limit is not None and limit < 1):
        raise QuantizeGraphError("skip must be >= 0 and limit >= 1")
    try:
        rows = read_labels_csv(labels_csv, label_column)[skip:]
    except (ValueError, TypeError) as e:  # a non-integer (or missing) value in the column
        raise QuantizeGraphError("labels file '%s': column '%s' must hold integers (%s)"
                                 % (labels_csv, label_column, e))
    rows = rows[:limit] if limit is not None else rows
    if not rows:
        raise QuantizeGraphError("no images left to evaluate in '%s' after skipping %d rows"
                                 % (labels_csv, skip))
    _check_files(images_dir, [f for f, _ in rows], labels_csv)
    labels = np.array([label + label_offset for _, label in rows])
    if labels.min() < 0:
        raise QuantizeGraphError("label %d + --label_offset %d is negative"
                                 % (labels.min() - label_offset, label_offset))

    models = {}
    try:
        for name, graph in (("A", graph_a), ("B", graph_b)):
            if graph is not None:
                models[name] = Model(graph, input_layer, output_layer, threads,
                                     label=graph_label(graph, name))
        sizes = {name: _image_size(m, height, width) for name, m in models.items()}
        if len(set(sizes.values())) > 1:
            raise QuantizeGraphError("graph A takes %dx%d images and graph B %dx%d; evaluate "
                                     "them separately" % (sizes["A"] + sizes["B"]))
        height, width = sizes["A"]
        for m in models.values():  # fail before any work when the output's size is known
            classes = m.output.shape[-1] if m.output.shape.rank else None
            if classes is not None:
                _check_labels(labels, label_offset, classes, m)
        check_preprocessing(height, width, std, crop_fraction)
        chunk = _chunk_size(models, batch)
        scores = {name: [] for name in models}
        bar = ProgressBar(len(rows), "evaluating") if progress else None
        try:
            for start in range(0, len(rows), chunk):
                files = [f for f, _ in rows[start:start + chunk]]
                images = load_images(images_dir, files, height, width, mean, std, crop_fraction)
                for name, model in models.items():
                    scores[name].append(_run_padded(model, images))
                if bar:
                    bar.update(len(files))
        finally:
            if bar:
                bar.close()
        described = {name: m.describe() for name, m in models.items()}
    finally:
        for m in models.values():
            m.close()

    scores = {name: _class_scores(np.concatenate(s), len(rows), models[name])
              for name, s in scores.items()}
    for name, s in scores.items():
        _check_labels(labels, label_offset, s.shape[1], models[name])
    result = {"images": len(rows), "label_column": label_column, "label_offset": label_offset,
              "height": height, "width": width}
    for name, s in scores.items():
        result[name] = {"graph": described[name]["path"],
                        "top1": top_k_accuracy(s, labels, 1),
                        "top5": top_k_accuracy(s, labels, min(5, s.shape[1]))}
    if "B" in scores:
        result["comparison"] = _compare(scores["A"], scores["B"], models["A"].output.name)
    return result


def _check_labels(labels, offset, classes, model):
    if labels.max() >= classes:
        raise model.error("label %d + --label_offset %d = %d, but the output has %d classes; "
                          "check --label_offset and --label_column"
                          % (labels.max() - offset, offset, labels.max(), classes))


def _check_files(folder, files, labels_csv):
    """Fails before any work if the folder lacks photos the labels file names."""
    present = {os.path.relpath(p, folder) for p in list_images(folder)}
    missing = [f for f in files if os.path.normpath(f) not in present]
    if missing:
        raise QuantizeGraphError("%d of the %d images named in '%s' are not in '%s' (first: %s)"
                                 % (len(missing), len(files), labels_csv, folder, missing[0]))


def _image_size(model, height, width):
    """(height, width) fed to the model: asked, else the input's static size, else 224."""
    dtype, shape, layer = model.input.dtype, model.shape, model.input.op.name
    if not dtype.is_floating:
        raise model.error("input '%s' has type %s; evaluate_graph feeds decoded float images"
                          % (layer, dtype.name))
    if shape is not None and (len(shape) != 4 or shape[-1] not in (None, 3)):
        raise model.error("input '%s' has shape %s; expected RGB images [batch, height, width, 3]"
                          % (layer, shape))
    static_h, static_w = (shape[1], shape[2]) if shape else (None, None)
    return (_image_dim(model, height, static_h, "height"),
            _image_dim(model, width, static_w, "width"))


def _image_dim(model, given, static, what):
    if given is None:
        return static or DEFAULT_SIZE
    if static is not None and given != static:
        raise model.error("input '%s' takes images of %s %d, but %d was asked (--input_%s)"
                          % (model.input.op.name, what, static, given, what))
    return given


def _chunk_size(models, batch):
    """Images loaded and run at a time: --batch (which fixed-batch inputs must match), else
    the smallest fixed batch, else DEFAULT_BATCH."""
    if batch is not None:
        if batch < 1:
            raise QuantizeGraphError("batch must be at least 1, got %d" % batch)
        for m in models.values():
            m.check_batch(batch)
        return batch
    fixed = [m.fixed_batch for m in models.values() if m.fixed_batch]
    return min(fixed) if fixed else DEFAULT_BATCH


def _run_padded(model, images):
    """Runs `images` through the model, in pieces of its fixed batch (the last one padded)."""
    fixed = model.fixed_batch
    if not fixed or fixed == len(images):
        return np.asarray(model(images))
    out = []
    for i in range(0, len(images), fixed):
        piece = images[i:i + fixed]
        n = len(piece)
        if n < fixed:
            piece = np.concatenate([piece, np.repeat(piece[-1:], fixed - n, axis=0)])
        out.append(np.asarray(model(piece))[:n])
    return np.concatenate(out)


def _class_scores(scores, count, model):
    """[images, classes] from the stacked outputs, or a one-line error if that is not them."""
    if scores.ndim < 1 or scores.shape[0] != count or scores.size % count:
        raise model.error("output '%s' gives shape %s for %d images; expected one row of class "
                          "scores per image" % (model.output.name, list(scores.shape), count))
    return scores.reshape(count, -1)


def _compare(a, b, name):
    """Top-1 agreement and errors of B's outputs relative to A's."""
    overall = output_errors(name, a, b)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a64, axis=1)
    per_image = np.linalg.norm(a64 - b64, axis=1) / np.where(norms > 0, norms, 1.0)
    return {"top1_agreement": overall.top1_agreement,
            "differing": int(np.sum(a.argmax(axis=1) != b.argmax(axis=1))),
            "mean_relative_error": float(per_image.mean()),
            "relative_error": overall.relative_error,
            "max_abs_error": overall.max_abs_error}


def format_report(result):
    """The human-readable lines of an evaluate() result."""
    offset = result["label_offset"]
    lines = ["%d images, %dx%d, labels: %s%s" % (
        result["images"], result["height"], result["width"], result["label_column"],
        " %+d" % offset if offset else "")]
    for name in ("A", "B"):
        if name in result:
            r = result[name]
            lines.append("%s: top-1 %5.1f%%  top-5 %5.1f%%  %s" % (
                name, 100 * r["top1"], 100 * r["top5"], r["graph"] or "(GraphDef)"))
    if "comparison" in result:
        c = result["comparison"]
        lines.append("B vs A: top-1 agreement %.1f%% (%d of %d differ), mean relative error "
                     "%.4g, max abs error %.4g" % (100 * c["top1_agreement"], c["differing"],
                                                   result["images"], c["mean_relative_error"],
                                                   c["max_abs_error"]))
    return "\n".join(lines)


# --- command line ------------------------------------------------------------------------------

def main(argv):
    """Parses argv, evaluates, prints; raises QuantizeGraphError or flags.Error on bad input."""
    FLAGS.unparse_flags()  # run() may be called more than once in a process (tests)
    extra = FLAGS(argv)[1:]
    if extra:
        raise QuantizeGraphError("unexpected argument '%s'" % extra[0])
    for name in ("graph", "images", "labels_csv"):
        if not FLAGS[name].value:
            raise QuantizeGraphError("--%s is required" % name)
    result = evaluate(
        FLAGS.graph, FLAGS.images, FLAGS.labels_csv, FLAGS.compare, FLAGS.label_column,
        FLAGS.label_offset, FLAGS.input_layer, FLAGS.output_layer, FLAGS.input_height,
        FLAGS.input_width, FLAGS.input_mean, FLAGS.input_std, FLAGS.crop_fraction, FLAGS.skip,
        FLAGS.limit, FLAGS.batch, FLAGS.threads, FLAGS.progress)
    print(json.dumps(result, indent=2) if FLAGS.json else format_report(result))


def run(argv=None):
    """Console-script entry point; returns the exit status."""
    return run_tool(PROG, "--graph=A.pb [--compare=B.pb] --images=DIR --labels_csv=FILE [flags]",
                    FLAGS, main, argv)


if __name__ == "__main__":
    sys.exit(run())
