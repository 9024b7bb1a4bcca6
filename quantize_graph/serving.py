"""What a model server needs to run a quantized SavedModel, said when one is written.

reference: stock legacy ops, any TensorFlow. onednn: stock ops, but their kernels exist only
with oneDNN on, which TensorFlow does by default only on CPUs with AVX-512 VNNI/BF16/AMX.
kernels: our own op library, which a stock server binary cannot load.
"""
from quantize_graph.passes.onednn_guard import PROBE, add_onednn_guard
from quantize_graph.targets.probe import uses_onednn_ops

ONEDNN = (
    "this SavedModel uses TensorFlow's oneDNN int8 kernels (target onednn): the server must "
    "start with TF_ENABLE_ONEDNN_OPTS=1 in its environment (e.g. docker run -e "
    "TF_ENABLE_ONEDNN_OPTS=1 tensorflow/serving ...; any process: set it before TensorFlow is "
    "imported) unless its CPU has AVX-512 VNNI/BF16/AMX; without it requests fail with "
    "\"Missing 0-th output from {{node %s}}\". --target=reference runs anywhere, slower" % PROBE)
KERNELS = (
    "this SavedModel uses quantize_graph's own op library (target kernels), which a stock "
    "TensorFlow Serving binary cannot load: build tensorflow_model_server with the library "
    "linked in (add its cc_library from kernels/ to SUPPORTED_TENSORFLOW_OPS in "
    "tensorflow_serving/model_servers/BUILD, see https://www.tensorflow.org/tfx/serving/custom_op); "
    "in Python, tf.load_op_library() the built .so before tf.saved_model.load. --target=onednn "
    "or reference need no op library")


def for_serving(graph_def, input_names):
    """The graph as it is written into a SavedModel: a onednn graph gets the guard that makes
    a server without oneDNN fail with an error naming TF_ENABLE_ONEDNN_OPTS."""
    return add_onednn_guard(graph_def, input_names) if uses_onednn_ops(graph_def) else graph_def


def server_requirements(target):
    """Warnings (strings) for a SavedModel lowered to `target`; empty when any stock
    TensorFlow server runs it."""
    return {"onednn": [ONEDNN], "kernels": [KERNELS]}.get(target, [])
