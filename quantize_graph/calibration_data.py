"""Calibration inputs: a folder of images (read recursively, sorted) or a .npy/.npz of arrays."""
import collections
import os

import numpy as np

from quantize_graph.checks import check_calibration_inputs
from quantize_graph.errors import QuantizeGraphError
from quantize_graph.preprocess import list_images, read_image
from quantize_graph.runner import placeholder_shapes

Preprocessing = collections.namedtuple("Preprocessing", ["height", "width", "mean", "std", "crop_fraction"])
DEFAULT_CROP = 0.875


def load_calibration_inputs(path, input_names, size, preprocessing, progress=None):
    """{input name: array of `size` (or fewer) examples} from a folder or a .npy/.npz file."""
    if not path or not os.path.exists(path):
        raise QuantizeGraphError("calibration data '%s' does not exist" % path)
    if size < 1:
        raise QuantizeGraphError("--calibration_size must be at least 1, got %d" % size)
    if os.path.isdir(path):
        if len(input_names) != 1:
            raise QuantizeGraphError("a folder of images can only feed a graph with one input; "
                                     "this one has %d (%s): use a .npz" % (len(input_names), ", ".join(input_names)))
        files = list_images(path)[:size]
        if not files:
            raise QuantizeGraphError("calibration folder '%s' holds no images" % path)
        images = []
        for f in files:
            images.append(read_image(f, *preprocessing))
            if progress is not None:
                progress.update(1)
        return {input_names[0]: np.stack(images)}
    arrays = load_arrays(path, input_names, "calibration data")
    check_calibration_inputs(arrays, {})  # the values; their shapes are checked with the graph
    return {n: a[:size] for n, a in arrays.items()}


def load_arrays(path, input_names, what):
    """{input name: array} from a .npy (one input) or a .npz keyed by input node name;
    `what` names the flag or file in errors."""
    try:
        data = np.load(path)
    except Exception as e:  # OSError, ValueError, EOFError, pickle and zip errors
        raise QuantizeGraphError("cannot read %s '%s': %s" % (what, path, _first_line(e)))
    if isinstance(data, np.ndarray):
        if len(input_names) != 1:
            raise QuantizeGraphError("%s '%s' is a .npy, which feeds one input, but the graph has %d "
                                     "(%s); use a .npz" % (what, path, len(input_names), ", ".join(input_names)))
        return {input_names[0]: data}
    with data:
        missing = [n for n in input_names if n not in data.files]
        if missing:
            raise QuantizeGraphError("%s '%s' has no array for input '%s'" % (what, path, missing[0]))
        try:  # a .npz reads each array when asked: a corrupt member fails only here
            return {n: data[n] for n in input_names}
        except Exception as e:
            raise QuantizeGraphError("cannot read %s '%s': %s" % (what, path, _first_line(e)))


def _first_line(error):
    return " ".join(str(error).split()) or type(error).__name__


def batches(inputs, batch_size):
    """[{"name:0": array}] slices of the inputs, `batch_size` examples each."""
    count = min(len(a) for a in inputs.values())
    return [{name + ":0": a[i:i + batch_size] for name, a in inputs.items()}
            for i in range(0, count, batch_size)]


def split(inputs, count):
    """(the first `count` examples, the rest): calibration set and held-out set."""
    return ({n: a[:count] for n, a in inputs.items()}, {n: a[count:] for n, a in inputs.items()})


def calibration_batch_size(graph_def, input_names, preferred=8):
    """The inputs' fixed batch size if they have one (many frozen graphs are batch 1); 1 when
    an input is an inner tensor (such as Inception's `Mul`), whose shape we don't know."""
    ops = {n.name: n.op for n in graph_def.node}
    if any(ops.get(name) != "Placeholder" for name in input_names):
        return 1
    shapes = placeholder_shapes(graph_def, input_names)
    fixed = {s[0] for s, _ in shapes.values() if s and s[0] is not None}
    return fixed.pop() if len(fixed) == 1 else preferred


def calibration_batches(graph_def, inputs):
    """batches() of `inputs` ({input name: array}) at the graph's calibration batch size."""
    return batches(inputs, calibration_batch_size(graph_def, list(inputs)))
