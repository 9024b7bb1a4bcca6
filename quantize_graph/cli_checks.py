"""Checks of command-line values that name files or shapes, done before anything is read or
written, each failing with one line that names the flag."""
import os

from quantize_graph.checks import check_calibration_settings
from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph.io import check_output_path


def check_side_output(flag, path, input_path, output_path):
    """A --report / --ranges_out path must be writable before the graph is written, so that a
    failed run leaves no quantized graph behind."""
    if not path:
        return
    if output_path and os.path.abspath(path) == os.path.abspath(output_path):
        raise QuantizeGraphError("--%s '%s' is also --output" % (flag, path))
    try:
        check_output_path(path, input_path)
    except QuantizeGraphError as e:
        raise QuantizeGraphError("--%s: %s" % (flag, e))
    directory = os.path.dirname(os.path.abspath(path))
    if not os.access(directory, os.W_OK):
        raise QuantizeGraphError("--%s: directory '%s' is not writable" % (flag, directory))


def parse_dims(text):
    """--test_input_dims: shapes separated by ':', each comma-separated positive integers."""
    shapes = []
    for spec in text.split(":"):
        try:
            dims = [int(d) for d in spec.split(",")]
        except ValueError:
            raise QuantizeGraphError("--test_input_dims must be comma-separated integers, got '%s'" % text)
        if any(d < 1 for d in dims):
            raise QuantizeGraphError("--test_input_dims sizes must be at least 1, got '%s'" % spec)
        if any(d > 2 ** 24 for d in dims) or _product(dims) > 2 ** 28:
            raise QuantizeGraphError("--test_input_dims '%s' asks for more than 2^28 values" % spec)
        shapes.append(dims)
    return shapes


def _product(dims):
    total = 1
    for d in dims:
        total *= d
    return total


_FLOAT32_MAX = 3.4028234e38


def check_flag_values(flags, default_signature):
    """Flag values the pipeline would only see with calibration data (or a SavedModel):
    checked always, so that a bad value is never silently ignored."""
    models = [p for p in (flags.input, flags.compare) if p]
    if flags.signature_def != default_signature and models and not any(map(os.path.isdir, models)):
        raise QuantizeGraphError("--signature_def only applies to a SavedModel (--input or "
                                 "--compare); '%s' is a GraphDef file" % flags.input)
    if flags.calibration_size < 1:
        raise QuantizeGraphError("--calibration_size must be at least 1, got %d" % flags.calibration_size)
    for name in ("input_height", "input_width"):
        value = getattr(flags, name)
        if value is not None and not 1 <= value <= 2 ** 14:
            raise QuantizeGraphError("--%s must be between 1 and 16384, got %d" % (name, value))
    if not abs(flags.input_mean) <= _FLOAT32_MAX:  # the images are float32
        raise QuantizeGraphError("--input_mean must be a finite float32, got %g" % flags.input_mean)
    if not (abs(flags.input_std) <= _FLOAT32_MAX and abs(flags.input_std) >= 1e-30):
        raise QuantizeGraphError("--input_std must be a finite float32 and not 0, got %g" % flags.input_std)
    if not 0 < flags.crop_fraction <= 1:
        raise QuantizeGraphError("--crop_fraction must be in (0, 1], got %g" % flags.crop_fraction)
    check_calibration_settings(flags.calibration_percentile, flags.max_relative_error,
                               flags.min_top1_agreement)
