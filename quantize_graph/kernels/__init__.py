"""The project's own int8 op library (kernels/, ops prefixed Qg; contract in kernels/OPS.md).

`load()` loads the compiled CPU library `_qg_ops.so` (built by `pip install -e .` or
`make kernels`) into TensorFlow, so graphs holding Qg ops can be imported and run.
"""
import os

LIBRARY_NAME = "_qg_ops.so"
LIBRARY_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), LIBRARY_NAME)

_module = None


class KernelsNotBuiltError(ImportError):
    """The op library has not been compiled."""


def is_built():
    return os.path.exists(LIBRARY_PATH)


def load():
    """tf.load_op_library the Qg ops once and return the module (its ops: module.qg_quantize, …)."""
    global _module
    if _module is None:
        if not is_built():
            raise KernelsNotBuiltError(
                f"the Qg op library is not built ({LIBRARY_PATH} is missing): run "
                "`pip install -e .` or `make kernels` in the quantize_graph repository")
        import tensorflow as tf
        _module = tf.load_op_library(LIBRARY_PATH)
    return _module
