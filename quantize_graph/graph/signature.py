"""SignatureDefs: a model's named inputs and outputs, as TF Serving's clients see them.

A client addresses a SavedModel by signature key, input keys and output keys; the dtypes and
shapes in the signature are its contract. A quantized version keeps that contract and only
points the keys at the tensors of its own graph.
"""
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from quantize_graph.errors import QuantizeGraphError
from quantize_graph.graph.names import ensure_tensor_name_has_port, node_name_from_input

DEFAULT_KEY = "serving_default"
PREDICT = "tensorflow/serving/predict"


def signature_from_graph(graph_def, input_names, output_names):
    """A predict SignatureDef for a GraphDef: one key per input and output node (the node
    name), with the dtype and static shape TensorFlow infers for the float graph."""
    graph = tf.Graph()
    with graph.as_default():
        try:
            tf.compat.v1.import_graph_def(graph_def, name="")
        except (ValueError, tf.errors.OpError) as e:
            raise QuantizeGraphError("the graph does not import: %s" % str(e).splitlines()[0])
    signature = meta_graph_pb2.SignatureDef(method_name=PREDICT)
    for names, infos in ((input_names, signature.inputs), (output_names, signature.outputs)):
        for name in names:
            tensor = graph.get_tensor_by_name(ensure_tensor_name_has_port(name))
            infos[node_name_from_input(name)].CopyFrom(_tensor_info(tensor))
    return signature


def _tensor_info(tensor):
    info = meta_graph_pb2.TensorInfo(name=tensor.name, dtype=tensor.dtype.as_datatype_enum)
    info.tensor_shape.CopyFrom(tensor.shape.as_proto())
    return info


def retarget(signature, inputs, outputs):
    """A copy of `signature` (keys, dtypes, shapes, method) whose keys name the given tensors
    ({key: tensor name}) instead."""
    out = meta_graph_pb2.SignatureDef()
    out.CopyFrom(signature)
    for infos, names in ((out.inputs, inputs), (out.outputs, outputs)):
        for key, info in infos.items():
            info.name = ensure_tensor_name_has_port(names[key])
    return out


def interface(signature):
    """What a client sees of a signature: method, and per key its dtype and shape
    (-1 for a dynamic dimension, None for an unknown rank). Tensor names are not part of it."""
    def entries(infos):
        return {key: (tf.as_dtype(info.dtype).name,
                      None if info.tensor_shape.unknown_rank
                      else tuple(d.size for d in info.tensor_shape.dim))
                for key, info in sorted(infos.items())}
    return {"method_name": signature.method_name, "inputs": entries(signature.inputs),
            "outputs": entries(signature.outputs)}


def check_graph_matches(graph_def, signature):
    """Raises a one-line error unless every signature tensor is in the graph with the
    signature's dtype (a pass that changed an input's type, such as --quantized_input,
    would break every client)."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    for kind, infos in (("input", signature.inputs), ("output", signature.outputs)):
        for key, info in sorted(infos.items()):
            try:
                tensor = graph.get_tensor_by_name(info.name)
            except (KeyError, ValueError):
                raise QuantizeGraphError("signature %s '%s': tensor '%s' is not in the quantized graph"
                                         % (kind, key, info.name))
            want = tf.as_dtype(info.dtype)
            if tensor.dtype != want:
                raise QuantizeGraphError(
                    "signature %s '%s' is %s but the quantized graph's '%s' is %s; clients would "
                    "break (drop --quantized_input to keep the signature)"
                    % (kind, key, want.name, info.name, tensor.dtype.name))
