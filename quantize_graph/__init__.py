"""quantize_graph: turns a frozen float TensorFlow graph into an 8-bit one.

Public API: quantize(), quantize_file(), quantize_saved_model(), load_graph_def(),
save_graph_def(), and the
original tensorflow.tools.quantization.quantize_graph module's API (GraphRewriter, the node
helpers, quantize_weight_eightbit, FLAGS.bitdepth, ...), so that old scripts only need
`import quantize_graph`.
"""
import os
import sys
import types

# TensorFlow's start-up INFO lines (oneDNN notice, CPU features) drown the tools' output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
# The fast int8 target runs on TensorFlow's oneDNN kernels, which TF turns on by default only
# on CPUs with AVX-512 VNNI/BF16/AMX, and reads once, when it is first imported. Set
# TF_ENABLE_ONEDNN_OPTS=0 to keep them off (the `auto` target then picks `reference`).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from quantize_graph.api import quantize, quantize_file, quantize_saved_model  # noqa: F401
from quantize_graph.errors import QuantizeGraphError  # noqa: F401
from quantize_graph.graph.io import load_graph_def, save_graph_def  # noqa: F401
from quantize_graph.legacy import *  # noqa: F401,F403
from quantize_graph.legacy import FLAGS, GraphRewriter  # noqa: F401
from quantize_graph import legacy as _legacy

# `from tensorflow.tools.quantization import quantize_graph` resolves to the original
# module's API once this package is imported (stock TensorFlow no longer ships it).
if "tensorflow.tools.quantization" not in sys.modules:
    _package = types.ModuleType("tensorflow.tools.quantization")
    _package.quantize_graph = _legacy
    sys.modules["tensorflow.tools.quantization"] = _package
    sys.modules["tensorflow.tools.quantization.quantize_graph"] = _legacy
