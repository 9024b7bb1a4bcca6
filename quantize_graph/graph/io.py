"""Reading and writing GraphDefs: binary or text, validated, and written atomically."""
import os
import tempfile

from google.protobuf import message, text_format
from tensorflow.core.framework import graph_pb2

from quantize_graph.errors import QuantizeGraphError


def load_graph_def(path):
    """Reads a binary (.pb) or text (.pbtxt) GraphDef; raises a one-line error if it can't."""
    if not path:
        raise QuantizeGraphError("no input graph given (--input)")
    if os.path.isdir(path):
        raise QuantizeGraphError("input '%s' is a directory, not a GraphDef file" % path)
    if not os.path.exists(path):
        raise QuantizeGraphError("input file '%s' does not exist" % path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise QuantizeGraphError("cannot read input file '%s': %s" % (path, e.strerror))
    if not data:
        raise QuantizeGraphError("input file '%s' is empty" % path)
    graph_def = graph_pb2.GraphDef()
    text_first = path.endswith((".pbtxt", ".txt"))
    parsers = [_parse_text, _parse_binary] if text_first else [_parse_binary, _parse_text]
    for parse in parsers:
        if parse(data, graph_def) and len(graph_def.node):
            return graph_def
    raise QuantizeGraphError(
        "input file '%s' is not a GraphDef (neither binary nor text protobuf)" % path)


def _parse_binary(data, graph_def):
    try:
        graph_def.Clear()
        graph_def.ParseFromString(data)
    except (message.DecodeError, RuntimeError, ValueError):
        return False
    # Random bytes sometimes parse as a binary proto; a real graph's nodes all have ops.
    return all(n.op and n.name for n in graph_def.node)


def _parse_text(data, graph_def):
    try:
        graph_def.Clear()
        text_format.Merge(data.decode("utf-8"), graph_def)
    except (text_format.ParseError, UnicodeDecodeError, ValueError):
        return False
    return all(n.op and n.name for n in graph_def.node)


def check_output_path(path, input_path=None):
    """Raises a one-line error if `path` can't be written without harming the input."""
    if not path:
        raise QuantizeGraphError("no output path given (--output)")
    if os.path.isdir(path):
        raise QuantizeGraphError("output '%s' is a directory, not a file" % path)
    if input_path and (os.path.abspath(path) == os.path.abspath(input_path) or (
            os.path.exists(path) and os.path.exists(input_path) and os.path.samefile(path, input_path))):
        raise QuantizeGraphError("output '%s' is the input file; refusing to overwrite it" % path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise QuantizeGraphError("output directory '%s' does not exist" % directory)


def save_graph_def(graph_def, path, input_path=None, as_text=None):
    """Writes to a temporary file beside `path` and renames it, so no partial file is ever left."""
    check_output_path(path, input_path)
    if as_text is None:
        as_text = path.endswith((".pbtxt", ".txt"))
    data = text_format.MessageToString(graph_def).encode() if as_text else graph_def.SerializeToString()
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pb", dir=os.path.dirname(os.path.abspath(path)))
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600 files; use the usual mode
            f.write(data)
        os.replace(tmp, path)
    except BaseException as e:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise QuantizeGraphError("cannot write output '%s': %s" % (path, e.strerror or e))
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
