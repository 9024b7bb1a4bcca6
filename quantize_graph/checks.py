"""Checks of what the user hands the pipeline besides the graph: option types and values,
names that must exist, and calibration arrays against the graph's inputs. Each failure is a
QuantizeGraphError with one line naming the option, node or input."""
import math
import numbers

import numpy as np

from quantize_graph.errors import QuantizeGraphError

# The documented --bitdepth values (README): round and weights_rounded 2..16, quantize 8 or 16,
# eightbit (and test, which runs it) 8; weights stores quint8 codes, so 8 too.
BITDEPTHS = {"eightbit": (8,), "test": (8,), "weights": (8,), "quantize": (8, 16)}
DEFAULT_BITDEPTHS = tuple(range(2, 17))


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _names(value):
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)


def _optional(check):
    return lambda v: v is None or check(v)


# {option: (accepts(value), what it must be)}; options not listed take any value.
_OPTION_TYPES = {
    "mode": (lambda v: isinstance(v, str), "a string"),
    "target": (lambda v: isinstance(v, str), "a string"),
    "bitdepth": (_is_int, "an integer"),
    "strip_redundant_quantization": (lambda v: isinstance(v, bool), "True or False"),
    "quantized_input_range": (_optional(lambda v: isinstance(v, (list, tuple)) and len(v) == 2
                                        and all(_is_number(x) for x in v)), "None or (min, max)"),
    "fallback_range": (_optional(lambda v: isinstance(v, (list, tuple)) and len(v) == 2
                                 and all(_is_number(x) for x in v)), "None or (min, max)"),
    "excluded_ops": (_names, "a list of op type names"),
    "excluded_nodes": (_names, "a list of node names"),
    "calibration_inputs": (_optional(lambda v: isinstance(v, dict)), "None or {input name: array}"),
    "calibration_method": (lambda v: isinstance(v, str), "a string"),
    "calibration_percentile": (_is_number, "a number"),
    "ranges": (_optional(lambda v: isinstance(v, dict)), "None or {tensor: (min, max)}"),
    "max_relative_error": (_optional(_is_number), "None or a number"),
    "min_top1_agreement": (_optional(_is_number), "None or a number"),
    "layer_report": (lambda v: isinstance(v, bool), "True or False"),
    "bias_correction": (lambda v: isinstance(v, bool), "True or False"),
    "equalize_ranges": (lambda v: isinstance(v, bool), "True or False"),
    "shift_input": (lambda v: isinstance(v, bool), "True or False"),
    "fold_constants": (lambda v: isinstance(v, bool), "True or False"),
    "input_range": (_optional(lambda v: isinstance(v, (list, tuple)) and len(v) == 2
                              and all(_is_number(x) for x in v)), "None or (min, max)"),
    "statistics_k": (_is_number, "a number"),
    "bfloat16_fallback": (lambda v: isinstance(v, bool), "True or False"),
}


def check_option_values(options):
    """Types first (a wrong type would fail later with a traceback), then the values the
    pipeline's own checks do not cover."""
    for field, (accepts, what) in _OPTION_TYPES.items():
        value = getattr(options, field, None)
        if hasattr(options, field) and not accepts(value):
            raise QuantizeGraphError("option %s must be %s, got %r" % (field, what, value))
    allowed = BITDEPTHS.get(options.mode, DEFAULT_BITDEPTHS)
    if options.bitdepth not in allowed:
        if len(allowed) > 2:
            raise QuantizeGraphError("--bitdepth must be between %d and %d for mode %s, got %d"
                                     % (allowed[0], allowed[-1], options.mode, options.bitdepth))
        raise QuantizeGraphError("mode %s needs --bitdepth=%s (got %d)" % (
            options.mode, " or ".join(map(str, allowed)), options.bitdepth))
    for flag, rng in (("quantized_input", options.quantized_input_range),
                      ("quantized_fallback", options.fallback_range)):
        if rng is not None and not all(math.isfinite(v) for v in rng):
            raise QuantizeGraphError("--%s_min/max must be finite, got %g, %g" % (flag, rng[0], rng[1]))
    check_calibration_settings(options.calibration_percentile, options.max_relative_error,
                               options.min_top1_agreement)
    if options.ranges is not None:
        check_ranges(options.ranges)


def check_calibration_settings(percentile, max_relative_error, min_top1_agreement):
    """The values of --calibration_percentile and the accuracy goals (options and flags alike)."""
    if not 0 < percentile <= 100:
        raise QuantizeGraphError("--calibration_percentile must be in (0, 100], got %g" % percentile)
    # A negative goal is allowed: it cannot be met, which the fallback reports after trying.
    if max_relative_error is not None and math.isnan(max_relative_error):
        raise QuantizeGraphError("--max_relative_error must be a number, got nan")
    if min_top1_agreement is not None and not 0 <= min_top1_agreement <= 1:
        raise QuantizeGraphError("--min_top1_agreement must be between 0 and 1, got %g"
                                 % min_top1_agreement)


def check_name_list(value, what, optional=False):
    """A comma-separated string or a list of strings (None where optional)."""
    if value is None and optional:
        return
    if not (isinstance(value, str) or _names(value)):
        raise QuantizeGraphError("%s must be a string or a list of strings, got %r" % (what, value))


def check_ranges(ranges):
    for tensor, rng in ranges.items():
        ok = (isinstance(rng, (list, tuple)) and len(rng) == 2 and all(_is_number(v) for v in rng)
              and all(math.isfinite(v) for v in rng) and rng[0] <= rng[1])
        if not ok:
            raise QuantizeGraphError("range of tensor '%s' must be two finite numbers, min <= max; "
                                     "got %r" % (tensor, rng))


def check_excluded_nodes(index, names):
    """--excluded_nodes names must exist (a typo would silently quantize the node)."""
    index.require(list(names), "excluded node")


def check_calibration_inputs(inputs, placeholder_shapes, what="calibration input"):
    """Each array: a real number per value (no complex, object or string data), finite, one
    example at least, and the input's rank and non-batch sizes.

    `placeholder_shapes` is {input name: (shape or None, dtype name)} as runner.placeholder_shapes.
    """
    for name, array in inputs.items():
        if not isinstance(array, np.ndarray):
            try:
                array = np.asarray(array)
            except Exception:
                raise QuantizeGraphError("%s '%s' is not an array" % (what, name))
        kind = array.dtype.kind
        if kind not in "iuf":
            raise QuantizeGraphError("%s '%s' holds %s values; it needs real numbers"
                                     % (what, name, array.dtype))
        if array.ndim == 0 or len(array) == 0:
            raise QuantizeGraphError("%s '%s' holds no examples (shape %s)"
                                     % (what, name, list(array.shape)))
        if kind == "f" and not np.isfinite(array).all():
            raise QuantizeGraphError("%s '%s' holds %d NaN or Inf values"
                                     % (what, name, int((~np.isfinite(array)).sum())))
        shape = (placeholder_shapes.get(name) or (None, None))[0]
        if shape is not None and (len(shape) != array.ndim or any(
                d is not None and d != a for d, a in zip(shape[1:], array.shape[1:]))):
            raise QuantizeGraphError(
                "%s '%s' has shape %s but the graph expects %s (any batch size)"
                % (what, name, ",".join(map(str, array.shape)),
                   ",".join("?" if d is None else str(d) for d in shape)))
