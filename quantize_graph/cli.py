"""The quantize_graph command line: every flag of the 2016 tool, same meaning, plus new ones.

  quantize_graph --input=frozen.pb --output=q.pb --mode=eightbit --output_node_names=softmax
  quantize_graph --input=models/inception/1 --output=models/inception/2 --mode=eightbit \
      --calibration_data=photos/        # SavedModel in, SavedModel out (a new served version)
"""
import dataclasses
import os
import sys

import numpy as np
from absl import app, flags

from quantize_graph import legacy
from quantize_graph.calibrate import fingerprint, load_ranges, save_ranges
from quantize_graph.calibration_data import DEFAULT_CROP, Preprocessing, load_arrays, load_calibration_inputs
from quantize_graph.cpu_bf16 import warn_if_emulated
from quantize_graph.compare import compare_graphs, compare_models, format_errors, random_feeds
from quantize_graph.checks import check_calibration_inputs
from quantize_graph.cli_checks import check_flag_values, check_side_output, parse_dims
from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph.io import check_output_path, save_graph_def
from quantize_graph.graph.model import load_model, node_names
from quantize_graph.graph.names import strip_output_names
from quantize_graph.graph.saved_model import (check_version_dir, directory_size, save_saved_model,
                                              wants_saved_model)
from quantize_graph.graph.signature import DEFAULT_KEY
from quantize_graph.preprocess import list_images
from quantize_graph.pipeline import (MODES, Options, calibration_batch_size, check_graph, run_pipeline,
                                     validate_options)
from quantize_graph.progress import ProgressBar
from quantize_graph.runner import placeholder_shapes
from quantize_graph.sensitivity import format_report
from quantize_graph.statistics.propagate import static_shapes
from quantize_graph.statistics.ranges import image_input_range
from quantize_graph.serving import for_serving, server_requirements
from quantize_graph.targets.probe import HOW_TO_ENABLE, onednn_int8_runs

FLAGS = flags.FLAGS

# The original tool's flags.
flags.DEFINE_boolean("print_nodes", False, "Lists all nodes of the output graph, and the ops that stay float.")
flags.DEFINE_string("input", "", "TensorFlow GraphDef (binary .pb or text .pbtxt) or SavedModel "
                    "directory to quantize.")
flags.DEFINE_string("output_node_names", "", "Output node names, comma separated (a :0 suffix is fine).")
flags.DEFINE_string("output", "", "File to save the output graph to; a directory (trailing /, a "
                    "version number, or any name without .pb/.pbtxt when --input is a SavedModel) "
                    "gets a SavedModel, written whole or not at all, never over an existing one.")
flags.DEFINE_integer("bitdepth", 8, "How many bits to quantize the graph to.")
flags.DEFINE_string("mode", "round", "What transformation to apply: " + ", ".join(MODES) + ".")
flags.DEFINE_boolean("strip_redundant_quantization", True,
                     "Removes redundant dequantize/quantize pairs.")
flags.DEFINE_boolean("quantized_input", False,
                     "If true, assume Placeholders are quantized with values covering "
                     "[--quantized_input_min,--quantized_input_max]. Only applies to inputs of "
                     "float type, and only in eightbit mode.")
flags.DEFINE_float("quantized_input_min", 0, "The minimum of the actual input range when --quantized_input.")
flags.DEFINE_float("quantized_input_max", 1, "The maximum of the actual input range when --quantized_input.")
flags.DEFINE_float("quantized_fallback_min", None,
                   "The fallback 'min' value to use for layers which lack min-max information. "
                   "Only used with --quantized_fallback_max, and only in eightbit mode.")
flags.DEFINE_float("quantized_fallback_max", None,
                   "The fallback 'max' value to use for layers which lack min-max information.")
# New flags.
flags.DEFINE_list("input_node_names", [], "Input node names (default: the graph's Placeholders).")
flags.DEFINE_list("excluded_ops", [], "Op types to keep in float, comma separated.")
flags.DEFINE_list("excluded_nodes", [], "Node names to keep in float, comma separated.")
flags.DEFINE_string("target", "auto", "Which 8-bit ops eightbit lowers to: onednn (TF's fused "
                    "oneDNN int8 kernels; needs calibration), reference (the stock legacy "
                    "quantized ops, portable, slow), kernels (this project's own Qg op library, "
                    "kernels/; needs calibration and the built library), or auto (onednn where "
                    "its kernels run and calibration data is given, else reference).")
flags.DEFINE_string("test_input", "", "Mode test: a .npy (one input), .npz (keyed by input "
                    "node name or signature key) or folder of images (the first "
                    "--calibration_size, preprocessed like calibration images) to compare on.")
flags.DEFINE_string("test_input_dims", "", "Mode test: shape of random inputs, e.g. 1,224,224,3; "
                    "one shape per input separated by ':' (default: the Placeholders' shapes).")
flags.DEFINE_string("compare", "", "Mode test: a second model (GraphDef or SavedModel) to compare "
                    "--input with, instead of quantizing --input.")
flags.DEFINE_string("signature_def", DEFAULT_KEY, "SavedModel input: the signature whose inputs and "
                    "outputs are quantized (and kept in the output SavedModel).")

# Calibration (issue 3): ranges measured on sample inputs and frozen into the graph.
flags.DEFINE_string("calibration_data", "", "Folder of images (read recursively, sorted) or a "
                    ".npy/.npz of input arrays; ranges are measured on it and frozen in.")
flags.DEFINE_integer("calibration_size", 100, "How many calibration examples to use (the first N).")
flags.DEFINE_enum("calibration_method", "minmax", ["minmax", "percentile", "entropy"],
                  "How a tensor's range is chosen from the values seen.")
flags.DEFINE_float("calibration_percentile", 99.99, "Percentile of |x| kept by --calibration_method=percentile.")
flags.DEFINE_integer("input_height", None, "Calibration images: height (default: the input's static height).")
flags.DEFINE_integer("input_width", None, "Calibration images: width (default: the input's static width).")
flags.DEFINE_float("input_mean", 0.0, "Calibration images: subtracted from each 0..255 pixel (as label_image).")
flags.DEFINE_float("input_std", 255.0, "Calibration images: divides each pixel after the mean (as label_image).")
flags.DEFINE_float("crop_fraction", DEFAULT_CROP, "Calibration images: central crop kept before resizing.")
flags.DEFINE_string("input_range", "", "MIN,MAX: the values the graph inputs take. Without "
                    "calibration data, ranges come from the graph's batch-norm statistics and this "
                    "gives the input's (default: from --input_mean/--input_std when given, for "
                    "0..255 pixels; else the ops reading the input stay float).")
flags.DEFINE_string("ranges_out", "", "Write the ranges used (JSON: tensor -> [min, max], method, data fingerprint).")
flags.DEFINE_string("ranges_in", "", "Read ranges from a --ranges_out file instead of calibrating.")

flags.DEFINE_float("max_relative_error", None, "Keep the fewest, most sensitive layers float so that "
                   "the first output's relative error on held-out calibration inputs is at most this.")
flags.DEFINE_float("min_top1_agreement", None, "Keep the fewest, most sensitive layers float so that "
                   "top-1 agreement with float on held-out calibration inputs is at least this (0..1).")
flags.DEFINE_boolean("bias_correction", True, "onednn with calibration data: subtract from each "
                     "int8 layer's bias the mean shift its weight rounding causes, E[x] measured "
                     "on the calibration data.")
flags.DEFINE_boolean("equalize_ranges", True, "onednn with calibration data: scale each channel "
                     "of a Relu/Relu6 activation read only by depthwise convs to the whole 8-bit "
                     "range (folded into the weights).")
flags.DEFINE_boolean("shift_input", False, "onednn with calibration data: run a conv that reads a "
                     "signed graph input (e.g. an image in [-1, 1]) in int8 on input + c, with "
                     "explicit padding and the shift folded into its bias.")
flags.DEFINE_boolean("bfloat16_fallback", False, "eightbit: the layers that the accuracy fallback "
                     "or --excluded_* keep out of int8 run in bfloat16 instead of float32.")
flags.DEFINE_string("report", "", "Write a per-layer error table (layer, op, range, SQNR) to this "
                    "file: JSON if it ends in .json, else markdown. Needs --calibration_data.")

PROG = "quantize_graph"


def main(argv):
    if len(argv) > 1:
        raise QuantizeGraphError("unexpected arguments: %s" % " ".join(argv[1:]))
    _check_paths()
    options = _options()
    validate_options(options)  # before reading the graph, so bad flags fail fast
    _sync_legacy_flags()
    if options.mode == "test" and FLAGS.compare:
        _run_compare_mode()
        return
    model = load_model(FLAGS.input, FLAGS.signature_def, FLAGS.input_node_names or None,
                       strip_output_names(FLAGS.output_node_names) or None,
                       with_signature=_writes_saved_model())
    graph_def = model.graph_def
    outputs, inputs = node_names(model.outputs, "output"), node_names(model.inputs, "input")
    if options.mode == "test":
        _run_test_mode(model, outputs, inputs, options)
        return
    data_print = _add_calibration(model, outputs, inputs, options)
    result, report = run_pipeline(graph_def, outputs, options, input_names=inputs)
    _save(result, model, report)
    if FLAGS.report and report.layers is not None:
        _write_report(report)
    if FLAGS.ranges_out and report.ranges:
        method = FLAGS.calibration_method if data_print else (
            "batch-norm statistics" if report.range_sources else None)
        save_ranges(FLAGS.ranges_out, report.ranges, method, data_print,
                    FLAGS.calibration_size if data_print else 0, FLAGS.calibration_percentile,
                    sources=report.range_sources)
    _print_report(result, report)


def _write_report(report):
    err = report.held_out_error
    summary = "Held-out relative error %.4g, top-1 agreement %.1f%%; %d layers kept float by " \
              "the fallback%s." % (err.relative_error, 100 * err.top1_agreement, len(report.fallback or []),
                                   (": " + ", ".join(report.fallback)) if report.fallback else "")
    fmt = "json" if FLAGS.report.endswith(".json") else "markdown"
    with open(FLAGS.report, "w") as f:
        f.write(format_report(report.layers, fmt, summary))


def _writes_saved_model():
    return bool(FLAGS.output) and wants_saved_model(FLAGS.output, os.path.isdir(FLAGS.input))


def _save(result, model, report):
    """Writes the result as a GraphDef file or, for a directory, as a SavedModel with the
    input's signature (and says what a server needs to run it)."""
    if not _writes_saved_model():
        save_graph_def(result, FLAGS.output, input_path=FLAGS.input)
        return
    served = for_serving(result, node_names(model.inputs, "input"))
    save_saved_model(dataclasses.replace(model, graph_def=served), FLAGS.output, input_path=FLAGS.input)
    if report.mode in ("eightbit", "test"):
        for warning in server_requirements(report.target):
            print("warning: " + warning, file=sys.stderr)


def _preprocessing(graph_def, input_names):
    """How images become inputs: the flags, with the input's static size as default."""
    shape = placeholder_shapes(graph_def, input_names[:1])[input_names[0]][0]
    if not shape:  # an inner tensor (the legacy Inception's `Mul`): TF's shape inference
        shape = static_shapes(graph_def).get(input_names[0])
    shape = shape or [None] * 4
    height = FLAGS.input_height or (shape[1] if len(shape) == 4 and shape[1] else 224)
    width = FLAGS.input_width or (shape[2] if len(shape) == 4 and shape[2] else 224)
    return Preprocessing(height, width, FLAGS.input_mean, FLAGS.input_std, FLAGS.crop_fraction)


def _array_names(path, model, input_names):
    """The names to look up in an input file: a .npz may key its arrays by input node name
    or, for a SavedModel, by signature key."""
    keys = [k for k in model.inputs]  # in the order of input_names
    if path.endswith(".npz") and os.path.isfile(path):
        try:
            with np.load(path) as archive:
                files = set(archive.files)
        except Exception:  # unreadable: load_arrays reports it on one line
            return input_names
        if not set(input_names) <= files and set(keys) <= files:
            return keys
    return input_names


def _load_inputs(path, model, input_names, label):
    """{input node name: array} from a folder of images or a .npy/.npz."""
    # Checked before the progress bar starts, so that the error is the only line.
    if not os.path.exists(path):
        raise QuantizeGraphError("%s '%s' does not exist" % (label, path))
    if os.path.isdir(path) and not list_images(path):
        raise QuantizeGraphError("%s folder '%s' holds no images" % (label, path))
    names = _array_names(path, model, input_names)
    bar = ProgressBar(FLAGS.calibration_size, "reading %s" % label) if os.path.isdir(path) else None
    try:
        data = load_calibration_inputs(path, names, FLAGS.calibration_size,
                                       _preprocessing(model.graph_def, input_names), progress=bar)
    finally:
        if bar is not None:
            bar.close()
    return {n: data[k] for n, k in zip(input_names, names)}


def _add_calibration(model, outputs, inputs, options):
    """Fills the options' calibration inputs or ranges from the flags; returns the data's
    fingerprint (None without calibration data)."""
    # Set whatever the data source: the pipeline refuses them without calibration data
    # (rather than ignoring them silently).
    options.max_relative_error = FLAGS.max_relative_error
    options.min_top1_agreement = FLAGS.min_top1_agreement
    options.layer_report = bool(FLAGS.report)
    if FLAGS.ranges_in:
        options.ranges = load_ranges(FLAGS.ranges_in)
        return None
    if not FLAGS.calibration_data:
        return None
    _, input_names = check_graph(model.graph_def, outputs, inputs)
    data = _load_inputs(FLAGS.calibration_data, model, input_names, "calibration data")
    options.calibration_inputs = data
    options.calibration_method = FLAGS.calibration_method
    options.calibration_percentile = FLAGS.calibration_percentile
    options.progress = ProgressBar
    return fingerprint([data[n] for n in input_names])


def _check_paths():
    if not FLAGS.input:
        raise QuantizeGraphError("--input is required")
    if not FLAGS.output and FLAGS.mode != "test":
        raise QuantizeGraphError("--output is required")
    if FLAGS.compare and FLAGS.mode != "test":
        raise QuantizeGraphError("--compare only applies to mode test")
    if FLAGS.compare and FLAGS.output:
        raise QuantizeGraphError("--compare compares two models and writes nothing; drop --output")
    if FLAGS.calibration_data and not os.path.exists(FLAGS.calibration_data):
        # Before the model is read, which can take long for a big SavedModel.
        raise QuantizeGraphError("calibration data '%s' does not exist" % FLAGS.calibration_data)
    check_flag_values(FLAGS, DEFAULT_KEY)
    for flag in ("report", "ranges_out"):  # before anything is written: all or nothing
        check_side_output(flag, getattr(FLAGS, flag), FLAGS.input, FLAGS.output)
    if _writes_saved_model():
        if FLAGS.quantized_input:
            raise QuantizeGraphError("--quantized_input makes the inputs quint8, which breaks the "
                                     "SavedModel signature's float inputs; drop it")
        check_version_dir(FLAGS.output, FLAGS.input)
    elif FLAGS.output:
        check_output_path(FLAGS.output, FLAGS.input)


def _options():
    fallback = (FLAGS.quantized_fallback_min, FLAGS.quantized_fallback_max)
    if (fallback[0] is None) != (fallback[1] is None):
        raise QuantizeGraphError("--quantized_fallback_min and --quantized_fallback_max must be given together")
    mode = FLAGS.mode
    if fallback[0] is not None and mode not in ("eightbit", "test"):
        raise QuantizeGraphError("--quantized_fallback_min/max only apply to mode eightbit")
    return Options(
        mode=mode, bitdepth=FLAGS.bitdepth,
        strip_redundant_quantization=FLAGS.strip_redundant_quantization,
        quantized_input_range=(FLAGS.quantized_input_min, FLAGS.quantized_input_max)
        if FLAGS.quantized_input else None,
        fallback_range=fallback if fallback[0] is not None else None,
        excluded_ops=tuple(FLAGS.excluded_ops), excluded_nodes=tuple(FLAGS.excluded_nodes),
        target=FLAGS.target, bias_correction=FLAGS.bias_correction,
        equalize_ranges=FLAGS.equalize_ranges, shift_input=FLAGS.shift_input,
        input_range=_input_range(), bfloat16_fallback=FLAGS.bfloat16_fallback)


def _input_range():
    """--input_range, else the range of 0..255 pixels after --input_mean/--input_std (when
    either was given), else None."""
    if FLAGS.input_range:
        parts = FLAGS.input_range.split(",")
        try:
            lo, hi = (float(p) for p in parts)
        except ValueError:
            raise QuantizeGraphError("--input_range must be MIN,MAX (two numbers), got '%s'"
                                     % FLAGS.input_range)
        return lo, hi
    if FLAGS["input_mean"].present or FLAGS["input_std"].present:
        return image_input_range(FLAGS.input_mean, FLAGS.input_std)  # checked by check_flag_values
    return None


def _sync_legacy_flags():
    """The original module's helpers read FLAGS.bitdepth; keep them in step with the CLI."""
    legacy.FLAGS.bitdepth = FLAGS.bitdepth
    legacy.FLAGS.strip_redundant_quantization = FLAGS.strip_redundant_quantization


def _run_test_mode(model, outputs, inputs, options):
    options.mode = "eightbit"
    graph_def = model.graph_def
    outputs, input_names = check_graph(graph_def, outputs, inputs)
    feeds = _test_feeds(model, input_names)
    _check_feed_shapes(graph_def, feeds)
    quantized, report = run_pipeline(graph_def, outputs, options, input_names=input_names)
    print(report.summary())
    batch = calibration_batch_size(graph_def, input_names)
    errors = compare_graphs(graph_def, quantized, outputs, feeds, batch)
    keys = dict(zip(node_names(model.outputs, "output"), model.outputs))  # SavedModel: by key
    print(format_errors([e._replace(name=keys.get(e.name, e.name)) for e in errors]))
    if FLAGS.output:
        _save(quantized, model, report)


def _run_compare_mode():
    """--mode=test --compare: runs --input and --compare on the test inputs, reports per output
    how far the second is from the first (keys matched by name, else in order)."""
    def load(path):
        pb = not os.path.isdir(path)
        return load_model(path, FLAGS.signature_def, (FLAGS.input_node_names or None) if pb else None,
                          (strip_output_names(FLAGS.output_node_names) or None) if pb else None)
    first, second = load(FLAGS.input), load(FLAGS.compare)
    input_names = node_names(first.inputs, "input")
    feeds = _test_feeds(first, input_names)
    _check_feed_shapes(first.graph_def, feeds)
    by_key = {key: feeds[name] for key, name in zip(first.inputs, input_names)}
    batch = calibration_batch_size(first.graph_def, input_names)
    count = min(len(a) for a in by_key.values())
    print("%s vs %s on %d inputs" % (FLAGS.input, FLAGS.compare, count))
    print(format_errors(compare_models(first, second, by_key, batch)))


def _test_feeds(model, input_names):
    graph_def = model.graph_def
    if FLAGS.test_input:
        if os.path.isdir(FLAGS.test_input):
            return _load_inputs(FLAGS.test_input, model, input_names, "test images")
        return _load_test_input(FLAGS.test_input, model, input_names)
    if FLAGS.test_input_dims:
        specs = FLAGS.test_input_dims.split(":")
        if len(specs) != len(input_names):
            raise QuantizeGraphError("--test_input_dims gives %d shapes for %d inputs (%s)" % (
                len(specs), len(input_names), ", ".join(input_names)))
        dims = parse_dims(FLAGS.test_input_dims)
        return random_feeds(graph_def, input_names, dims)
    raise QuantizeGraphError("mode test needs --test_input or --test_input_dims")


def _check_feed_shapes(graph_def, feeds):
    for name, (shape, _) in placeholder_shapes(graph_def, list(feeds)).items():
        got = np.shape(feeds[name])
        # The batch dimension may differ: the graphs are run a fixed batch at a time.
        if shape is not None and (len(shape) != len(got) or any(
                d is not None and d != g for d, g in zip(shape[1:], got[1:]))):
            raise QuantizeGraphError("test input for '%s' has shape %s but the graph expects %s" % (
                name, ",".join(map(str, got)), ",".join("?" if d is None else str(d) for d in shape)))


def _load_test_input(path, model, input_names):
    """A .npy, or a .npz keyed by input node name or signature key."""
    names = _array_names(path, model, input_names)
    data = load_arrays(path, names, "--test_input")
    check_calibration_inputs(data, {}, "--test_input array")  # values; shapes are checked later
    return {n: data[k] for n, k in zip(input_names, names)}


def _print_report(result, report):
    in_size, out_size = directory_size(FLAGS.input), directory_size(FLAGS.output)
    if FLAGS.print_nodes:
        for node in result.node:
            print("%s %s" % (node.op, node.name))
        for name, (op, why) in sorted(report.stayed_float.items()):
            print("float: %s (%s): %s" % (name, op, why))
    if report.target_reason:
        print("target %s: %s" % (report.target, report.target_reason))
        if report.target == "onednn" and not onednn_int8_runs():
            print("warning: this TensorFlow cannot run the onednn graph it wrote: " + HOW_TO_ENABLE,
                  file=sys.stderr)
    print(report.summary())
    warn_if_emulated(result)  # bfloat16 mode or --bfloat16_fallback on a CPU without bf16 units
    if report.fallback is not None:
        print("accuracy fallback kept %d layers float: %s" % (
            len(report.fallback), ", ".join(report.fallback) or "none needed"))
    if report.held_out_error is not None:
        err = report.held_out_error
        print("held-out inputs: relative error %.4g, top-1 agreement %.1f%%" % (
            err.relative_error, 100 * err.top1_agreement))
    print("wrote %s: %d bytes (%.1f%% of the input's %d bytes)" % (
        FLAGS.output, out_size, 100.0 * out_size / in_size, in_size))


def _fail(message):
    print("%s: error: %s" % (PROG, " ".join(str(message).splitlines())), file=sys.stderr)
    sys.exit(1)


def _parse_flags(argv):
    """absl's parser, but a bad flag is reported on one line like every other error."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        _fail("%s (see --helpfull)" % e)


def _main_with_errors(argv):
    try:
        main(argv)
    except QuantizeGraphError as e:
        _fail(e)
    except Exception as e:  # a case no check foresaw: still one line, and how to see more
        if os.environ.get("QG_TRACEBACK"):
            raise
        _fail("internal error (%s: %s); rerun with QG_TRACEBACK=1 for the traceback and "
              "please report it" % (type(e).__name__, e))


def run():
    app.run(_main_with_errors, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
