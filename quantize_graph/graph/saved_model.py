"""Reading a SavedModel signature as a frozen GraphDef, and writing one as a new served version.

TF Serving watches a base directory and serves its highest numbered version, so a version must
appear complete or not at all: it is built in a hidden staging directory beside it (the server
ignores names that are not numbers) and renamed into place, and an existing version is never
replaced. The SavedModel written holds the frozen graph and no variables; it is the TF1 form
(one MetaGraphDef), which TF Serving, saved_model_cli and tf.saved_model.load all read.
"""
import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile

import tensorflow as tf
from absl import logging as absl_logging
from google.protobuf import message
from tensorflow.core.framework import graph_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.python.saved_model import loader_impl

from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph.signature import DEFAULT_KEY, check_graph_matches, retarget

SERVE_TAG = "serve"
_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
# Ops that mean the signature still reads variables or calls functions: it must be frozen.
_NOT_FROZEN_OPS = {"VarHandleOp", "VariableV2", "Variable", "ReadVariableOp", "PartitionedCall",
                   "StatefulPartitionedCall"}
GRAPH_DEF_SUFFIXES = (".pb", ".pbtxt", ".txt")


@dataclasses.dataclass
class ServedGraph:
    """A frozen graph with the signature it serves: `inputs`/`outputs` map each signature key
    to its tensor in `graph_def`; `signature` is the SignatureDef as read (keys, dtypes, shapes)."""
    graph_def: graph_pb2.GraphDef
    signature: meta_graph_pb2.SignatureDef
    inputs: dict
    outputs: dict
    tags: tuple = (SERVE_TAG,)
    signature_key: str = DEFAULT_KEY


def is_saved_model(path):
    return bool(path) and os.path.isdir(path) and any(
        os.path.isfile(os.path.join(path, f)) for f in _MODEL_FILES)


def wants_saved_model(output_path, input_is_saved_model):
    """Whether --output names a SavedModel directory: a trailing '/', a version number as the
    last component, or any name without a GraphDef suffix when the input is a SavedModel."""
    if output_path.endswith(os.sep):
        return True
    if output_path.endswith(GRAPH_DEF_SUFFIXES):
        return False
    return os.path.basename(output_path).isdigit() or input_is_saved_model


def load_saved_model(path, signature_key=DEFAULT_KEY):
    """The signature `signature_key` of the SavedModel at `path` as a ServedGraph, its
    variables frozen into Consts and its function calls inlined."""
    if not os.path.isdir(path):
        raise QuantizeGraphError("SavedModel directory '%s' does not exist" % path)
    if not is_saved_model(path):
        raise QuantizeGraphError("input '%s' is a directory but not a SavedModel (no saved_model.pb)" % path)
    try:
        saved = loader_impl.parse_saved_model(path)
    except (OSError, IOError, message.DecodeError, RuntimeError, ValueError) as e:
        raise QuantizeGraphError("cannot read SavedModel '%s': %s" % (path, str(e).splitlines()[0]))
    meta = _meta_graph_with(saved, signature_key, path)
    signature = meta.signature_def[signature_key]
    for kind, infos in (("input", signature.inputs), ("output", signature.outputs)):
        for key, info in infos.items():
            if info.WhichOneof("encoding") != "name":
                raise QuantizeGraphError("signature '%s' %s '%s' is not a dense tensor; only dense "
                                         "inputs and outputs can be quantized" % (signature_key, kind, key))
    tags = tuple(meta.meta_info_def.tags)
    if _is_frozen(meta):
        return ServedGraph(meta.graph_def, signature,
                           {k: signature.inputs[k].name for k in sorted(signature.inputs)},
                           {k: signature.outputs[k].name for k in sorted(signature.outputs)},
                           tags, signature_key)
    graph_def, inputs, outputs = _freeze(path, tags, signature_key)
    return ServedGraph(graph_def, signature, inputs, outputs, tags, signature_key)


def _meta_graph_with(saved, signature_key, path):
    """The MetaGraphDef holding the signature, preferring the one tagged 'serve'."""
    metas = sorted(saved.meta_graphs, key=lambda m: SERVE_TAG not in m.meta_info_def.tags)
    for meta in metas:
        if signature_key in meta.signature_def:
            return meta
    keys = sorted({k for m in saved.meta_graphs for k in m.signature_def})
    raise QuantizeGraphError("SavedModel '%s' has no signature '%s' (--signature_def); it has: %s"
                             % (path, signature_key, ", ".join(keys) or "none"))


def _is_frozen(meta):
    """A TF1-style MetaGraphDef with no variables and no functions (what save_saved_model
    writes) is already a frozen graph: its signature names tensors of meta.graph_def."""
    graph = meta.graph_def
    return not len(graph.library.function) and not any(n.op in _NOT_FROZEN_OPS for n in graph.node)


def _freeze(path, tags, signature_key):
    """Loads the signature as a concrete function and freezes it; returns (GraphDef,
    {input key: tensor}, {output key: tensor})."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    with _quiet_tf_logger():
        try:
            loaded = tf.saved_model.load(path, tags=list(tags))
            function = loaded.signatures[signature_key]
            frozen = convert_variables_to_constants_v2(function)
        except (ValueError, KeyError, TypeError, tf.errors.OpError) as e:
            raise QuantizeGraphError("cannot freeze signature '%s' of SavedModel '%s': %s"
                                     % (signature_key, path, str(e).splitlines()[0]))
    # A signature function's flat inputs and outputs follow its keys in sorted (nest) order.
    _, kwargs = function.structured_input_signature
    input_keys = tf.nest.flatten({k: k for k in kwargs})
    output_keys = tf.nest.flatten({k: k for k in function.structured_outputs})
    inputs = dict(sorted((k, t.name) for k, t in zip(input_keys, frozen.inputs)))
    outputs = dict(sorted((k, t.name) for k, t in zip(output_keys, frozen.outputs)))
    return frozen.graph.as_graph_def(), inputs, outputs


@contextlib.contextmanager
def _quiet_tf_logger():
    """Loading a TF1 SavedModel in TF2 logs harmless warnings (collections it cannot
    serialize, no fingerprint file) through both Python's and absl's loggers."""
    logger = logging.getLogger("tensorflow")
    level, absl_level = logger.level, absl_logging.get_verbosity()
    logger.setLevel(logging.ERROR)
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
        absl_logging.set_verbosity(absl_level)


def check_version_dir(path, input_path=None):
    """Raises a one-line error unless `path` can become a new SavedModel directory."""
    if not path:
        raise QuantizeGraphError("no output path given (--output)")
    path = path.rstrip(os.sep) or path
    if os.path.lexists(path):
        raise QuantizeGraphError("output '%s' already exists; refusing to overwrite it (a new "
                                 "version needs a new number)" % path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise QuantizeGraphError("output directory '%s' does not exist" % parent)
    if input_path and os.path.abspath(path) == os.path.abspath(input_path):
        raise QuantizeGraphError("output '%s' is the input; refusing to overwrite it" % path)


def save_saved_model(served, path, input_path=None):
    """Writes `served` (a ServedGraph, its signature retargeted to its tensors) as a SavedModel
    at `path`, which must not exist: built beside it and renamed, so nothing partial appears."""
    check_version_dir(path, input_path)
    path = os.path.abspath(path.rstrip(os.sep) or path)
    signature = retarget(served.signature, served.inputs, served.outputs)
    check_graph_matches(served.graph_def, signature)
    staging = None
    try:
        staging = tempfile.mkdtemp(prefix=".tmp-%s-" % os.path.basename(path), dir=os.path.dirname(path))
        export = os.path.join(staging, "model")
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.import_graph_def(served.graph_def, name="")
            with tf.compat.v1.Session(graph=graph) as session, _quiet_tf_logger():
                builder = tf.compat.v1.saved_model.Builder(export)
                builder.add_meta_graph_and_variables(
                    session, list(served.tags), signature_def_map={served.signature_key: signature},
                    clear_devices=True, strip_default_attrs=False)
                builder.save()
        if os.path.lexists(path):  # appeared while we wrote: still never replace it
            raise QuantizeGraphError("output '%s' appeared while writing; left it alone" % path)
        # rename(2) onto a non-empty directory fails, so a version that appears between the
        # check and here is never replaced either (only an empty directory could be).
        os.rename(export, path)
    except OSError as e:
        raise QuantizeGraphError("cannot write SavedModel '%s': %s" % (path, e.strerror or e))
    finally:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)


def directory_size(path):
    """Bytes in the files under `path` (a file's own size if it is one)."""
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)
