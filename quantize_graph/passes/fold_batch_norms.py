"""Folds batch norms into the weights and bias of the conv / matmul before them.

Every batch-norm form is first rewritten as a per-channel multiply by a constant scale and
an add of a constant shift (FusedBatchNorm V1/V2/V3 in inference mode,
BatchNormWithGlobalNormalization); the decomposed form of Keras 3 and unfolded TF-slim graphs
already is that after constant folding. Then one set of rules folds Mul and Add nodes into
the producer:

    Mul(W-op(x), s)            -> W-op(x) with W scaled per output channel
    Mul(BiasAdd(W-op(x), b), s) -> BiasAdd(W-op(x) with W scaled, b * s)
    Add(W-op(x), c)            -> BiasAdd(W-op(x), c)
    Add(BiasAdd(W-op(x), b), c) -> BiasAdd(W-op(x), b + c)

W-op is Conv2D, DepthwiseConv2dNative or MatMul with a Const weight read by nobody else.
A batch norm whose input is not such an op stays as a float Mul and Add.
"""
import numpy as np

from quantize_graph.graph.edit import NameAllocator, copy_graph, graph_with_nodes, rewire_inputs
from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import split_input
from quantize_graph.graph.nodes import const_value, copy_attr, create_node, make_const, set_attr_string

WEIGHT_OPS = {"Conv2D", "DepthwiseConv2dNative", "MatMul"}
_FUSED_BN = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"}
_ADD_OPS = {"Add", "AddV2"}


def fold_batch_norms(graph_def, protected=()):
    """`protected`: node names (the user's outputs) that must not disappear."""
    graph_def = batch_norms_to_scale_shift(graph_def)
    return fold_scale_shift(graph_def, protected)


# ---- step 1: every batch-norm op becomes Mul + Add with constant operands ------------------

def batch_norms_to_scale_shift(graph_def):
    index = GraphIndex(graph_def)
    names = NameAllocator(graph_def)
    nodes = []
    for node in graph_def.node:
        params = _bn_params(node, index)
        if params is None:
            nodes.append(node)
            continue
        scale, shift = params
        x = node.input[0]
        scale_c = make_const(names(node.name + "/folded_scale"), scale.astype(np.float32))
        shift_c = make_const(names(node.name + "/folded_shift"), shift.astype(np.float32))
        mul = create_node("Mul", names(node.name + "/scale"), [x, scale_c.name])
        add = create_node("AddV2", node.name, [mul.name, shift_c.name])
        for n in (mul, add):
            copy_attr(n, "T", node.attr["T"])
        nodes.extend([scale_c, shift_c, mul, add])
    return graph_with_nodes(graph_def, nodes)


def _bn_params(node, index):
    """(scale, shift) vectors of an inference batch norm with constant parameters, else None."""
    if node.op in _FUSED_BN:
        if node.attr["is_training"].b or node.attr["data_format"].s not in (b"", b"NHWC"):
            return None
        if any(port != 0 for c, i in index.data_consumers(node.name)
               for _, port, _ in [split_input(c.input[i])]):
            return None  # batch statistics are read: not an inference batch norm
        consts = _const_inputs(node, index, [1, 2, 3, 4])
        if consts is None:
            return None
        gamma, beta, mean, var = consts
        eps = node.attr["epsilon"].f
        scale = gamma / np.sqrt(var + eps)
        return scale, beta - mean * scale
    if node.op == "BatchNormWithGlobalNormalization":
        consts = _const_inputs(node, index, [1, 2, 3, 4])
        if consts is None:
            return None
        mean, var, beta, gamma = consts
        scale = 1.0 / np.sqrt(var + node.attr["variance_epsilon"].f)
        if node.attr["scale_after_normalization"].b:
            scale = scale * gamma
        return scale, beta - mean * scale
    return None


def _const_inputs(node, index, positions):
    values = []
    for p in positions:
        src = index.get(node.input[p]) if p < len(node.input) else None
        if src is None or src.op != "Const":
            return None
        values.append(const_value(src).astype(np.float64))
    return values


# ---- step 2: fold constant Mul / Add into the weight op before them ------------------------

def fold_scale_shift(graph_def, protected=()):
    graph_def = copy_graph(graph_def)
    while True:
        folded = _fold_sweep(graph_def, set(protected))
        if not folded:
            return graph_def


def _fold_sweep(graph_def, protected):
    """One pass over the graph; folds non-overlapping matches. Returns whether any folded."""
    index = GraphIndex(graph_def)
    names = NameAllocator(graph_def)
    touched, removed, replaced, added, mapping = set(), set(), {}, [], {}
    for node in graph_def.node:
        if node.op != "Mul" and node.op not in _ADD_OPS:
            continue
        if node.op == "Mul" and node.name in protected:
            continue  # folding a Mul removes it; an output must keep its name
        match = _match(node, index)
        if match is None or touched & {m.name for m in match["chain"]}:
            continue
        if protected & {match["op"].name, match["head"].name}:
            continue  # their values would change
        touched.update(m.name for m in match["chain"])
        if node.op == "Mul":
            _fold_mul(node, match, names, removed, replaced, added, mapping)
        else:
            _fold_add(node, match, names, replaced, added, removed)
    if not touched:
        return False
    nodes = []
    for n in graph_def.node:
        if n.name in removed:
            continue
        nodes.append(replaced.get(n.name, n))
    nodes.extend(added)
    del graph_def.node[:]
    graph_def.node.extend(nodes)
    rewire_inputs(graph_def, mapping)
    return True


def _match(node, index):
    """Finds W-op [-> BiasAdd] -> node(Mul/Add with a per-channel Const). None if no match."""
    inputs = [i for i in node.input if not i.startswith("^")]
    if len(inputs) != 2:
        return None
    for x_pos in (0, 1):
        x_in, c_in = inputs[x_pos], inputs[1 - x_pos]
        c_node, head = index.get(c_in), index.get(x_in)
        if c_node is None or head is None or c_node.op != "Const" or split_input(x_in)[1] != 0:
            continue
        op_node, bias = head, None
        if head.op == "BiasAdd":
            bias = index.get(head.input[1])
            op_node = index.get(head.input[0])
            if (bias is None or bias.op != "Const" or op_node is None
                    or split_input(head.input[0])[1] != 0 or not _single_consumer(head, index)):
                continue
        if op_node.op not in WEIGHT_OPS or not _single_consumer(op_node, index):
            continue
        weights = index.get(op_node.input[1])
        if weights is None or weights.op != "Const":
            continue
        channels = out_channels(op_node, const_value(weights))
        vector = _per_channel(const_value(c_node), channels, rank=2 if op_node.op == "MatMul" else 4)
        if vector is None:
            continue
        chain = [op_node, node] + ([head] if bias is not None else [])
        return {"op": op_node, "weights": weights, "bias": bias, "vector": vector,
                "chain": chain, "head": head}
    return None


def _single_consumer(node, index):
    return len(index.consumers.get(node.name, [])) == 1


def out_channels(op_node, w):
    """Output channels of a Conv2D, DepthwiseConv2dNative or MatMul with weights `w`."""
    if op_node.op == "Conv2D":
        return w.shape[3]
    if op_node.op == "DepthwiseConv2dNative":
        return w.shape[2] * w.shape[3]
    return w.shape[0] if op_node.attr["transpose_b"].b else w.shape[1]


def _per_channel(c, channels, rank):
    """The constant as a length-`channels` vector if it broadcasts along the last axis only."""
    if c.dtype.kind != "f" or c.ndim > rank:
        return None
    if c.size == 1:
        return np.full([channels], c.reshape(()), dtype=np.float64)
    if c.shape[-1] == channels and c.size == channels:
        return c.reshape([channels]).astype(np.float64)
    return None


def _scaled_weights(op_node, w, s):
    if op_node.op == "Conv2D":
        return w * s
    if op_node.op == "DepthwiseConv2dNative":
        return w * s.reshape(w.shape[2], w.shape[3])
    return w * s[:, None] if op_node.attr["transpose_b"].b else w * s


def _fold_mul(node, m, names, removed, replaced, added, mapping):
    w = const_value(m["weights"])
    new_w = make_const(names(m["weights"].name + "/folded"),
                       _scaled_weights(m["op"], w.astype(np.float64), m["vector"]).astype(w.dtype))
    op = copy_graph_node(m["op"])
    op.input[1] = new_w.name
    replaced[op.name] = op
    added.append(new_w)
    if m["bias"] is not None:
        b = const_value(m["bias"])
        new_b = make_const(names(m["bias"].name + "/folded"), (b * m["vector"]).astype(b.dtype))
        head = copy_graph_node(m["head"])
        head.input[1] = new_b.name
        replaced[head.name] = head
        added.append(new_b)
    # The Mul disappears: its readers read the head (the W-op or its BiasAdd) instead.
    removed.add(node.name)
    mapping[node.name] = m["head"].name


def _fold_add(node, m, names, replaced, added, removed):
    vector = m["vector"]
    if m["bias"] is not None:
        b = const_value(m["bias"])
        vector = b.astype(np.float64) + vector
        removed.add(m["head"].name)  # the old BiasAdd is replaced by the new one below
    bias = make_const(names(node.name + "/folded_bias"), vector.astype(np.float32))
    bias_add = create_node("BiasAdd", node.name, [m["op"].name, bias.name])
    copy_attr(bias_add, "T", m["op"].attr["T"])
    set_attr_string(bias_add, "data_format", b"NHWC")
    replaced[node.name] = bias_add
    added.append(bias)


def copy_graph_node(node):
    out = type(node)()
    out.CopyFrom(node)
    return out
