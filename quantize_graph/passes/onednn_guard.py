"""A guard that makes a onednn graph fail with a readable message where oneDNN is off.

Without oneDNN (TF_ENABLE_ONEDNN_OPTS unset on a CPU without AVX-512 VNNI/BF16/AMX) the fused
int8 ops have placeholder kernels, and a request fails with "Missing 0-th output from {{node
<some conv>}}", which says nothing of the cause. The guard is one tiny fused conv on constants,
named after the fix, whose result (exactly 1.0) every float input is multiplied by: the
model's own int8 ops need its result, so it runs first, and the error names it:
"Missing 0-th output from {{node set_TF_ENABLE_ONEDNN_OPTS_1/oneDNN_int8_probe}}".
(A control edge is not enough: Grappler drops control edges on side-effect-free nodes.)
With oneDNN on it costs a 1x1 conv on one pixel and one multiply per input value per request.
Used for SavedModels, which run in processes quantize_graph does not control (the server).
"""
import numpy as np
import tensorflow as tf

from quantize_graph.graph.edit import NameAllocator, copy_graph, rewire_inputs
from quantize_graph.graph.nodes import create_node

SCOPE = "set_TF_ENABLE_ONEDNN_OPTS_1"
PROBE = SCOPE + "/oneDNN_int8_probe"


def add_onednn_guard(graph_def, input_names):
    """A copy of `graph_def` whose `input_names` (Placeholders, kept with their names) reach
    their readers only after the probe conv has run."""
    out = copy_graph(graph_def)
    names = NameAllocator(out)
    guard = tf.Graph()
    with guard.as_default(), tf.name_scope(SCOPE):
        x = tf.raw_ops.Bitcast(input=tf.constant(np.full([1, 1, 1, 1], 255, np.uint8)), type=tf.quint8)
        w = tf.raw_ops.Bitcast(input=tf.constant(np.full([1, 1, 1, 1], 63, np.int8)), type=tf.qint8)
        probe = tf.raw_ops.QuantizedConv2DWithBiasAndReluAndRequantize(
            input=x, filter=w, bias=tf.constant([0.0]), min_input=0.0, max_input=1.0,
            min_filter=-127.0 / 63.0, max_filter=127.0 / 63.0, min_freezed_output=0.0,
            max_freezed_output=1.0, strides=[1, 1, 1, 1], padding="VALID", out_type=tf.quint8,
            name="oneDNN_int8_probe")
        # 1.0 * 1.0 over an output range of [0, 1]: code 255, which dequantizes to exactly 1.0.
        one = tf.reshape(tf.raw_ops.Dequantize(input=probe[0], min_range=probe[1], max_range=probe[2]),
                         [], name="one")
    guard_nodes = guard.as_graph_def().node
    clash = names.used & {n.name for n in guard_nodes}
    if clash:  # already guarded (or a user's node has the name): leave the graph as it is
        return out
    out.node.extend(guard_nodes)
    for name in input_names:
        dtype = next(n for n in out.node if n.name == name).attr["dtype"]
        if dtype.type != tf.float32.as_datatype_enum:
            continue
        gated = create_node("Mul", names(name + "/times_onednn_probe"), [name, one.op.name])
        gated.attr["T"].CopyFrom(dtype)
        rewire_inputs(out, {name: gated.name})
        out.node.extend([gated])
    return out
