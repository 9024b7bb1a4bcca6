"""Mode bfloat16: the float ops that have bfloat16 CPU kernels run in bfloat16.

bfloat16 is float32 with the low 16 mantissa bits dropped: same range, no calibration. The
pass picks a region of nodes (op in BF16_OPS, type attribute T float32), switches their T to
bfloat16, stores the float32 Consts they read as bfloat16 (half the bytes) and puts one Cast
on each tensor that crosses the region's border. Graph inputs and outputs keep float32: an
output node in the region is renamed `<name>/bfloat16` and a Cast takes its name.

Stays float32 (measured with TF 2.21, oneDNN on: every op below has a bfloat16 CPU kernel,
so the choice is accuracy, not availability):
- ops outside BF16_OPS: Softmax, reductions (Mean, Sum, Max), Tanh, Sigmoid, ...;
- the logits layer (`logits_layer`): the Conv2D/MatMul and its BiasAdd/Reshape/Squeeze whose
  result reaches a Softmax or a graph output. A bfloat16 result keeps 8 significant bits, so
  two close logits swap; its weights are still stored as bfloat16, cast to float32 once;
- the stem (`_stem_layers`): the conv/matmul that reads a graph input (the 8-bit image stays
  exact) and the narrow layers (fewer than 32 input channels) right after it, whose rounded
  feature maps cost the most accuracy and gain the least speed; a few thousand weights;
- the BiasAdd/Relu/Relu6 after any float32 conv (unfused in bfloat16 they would add a bias to
  a rounded conv result that it nearly cancels);
- the declared inputs (a fed tensor must keep its dtype), and excluded nodes/ops.
"""
import collections

import numpy as np
import tensorflow as tf

from quantize_graph.graph.edit import NameAllocator, graph_with_nodes
from quantize_graph.graph.index import GraphIndex
from quantize_graph.graph.names import canonical_input, split_input, tensor_name
from quantize_graph.passes.bfloat16_means import with_rounded_layers
from quantize_graph.passes.bfloat16_rounding import BF16 as BF16_NUMPY, round_keeping_sums
from quantize_graph.graph.nodes import const_value, create_node, make_const, set_attr_bool, set_attr_dtype
from quantize_graph.passes.context import result
from quantize_graph.statistics import ranges as statistics_ranges

FLOAT, BF16 = tf.float32.as_datatype_enum, tf.bfloat16.as_datatype_enum

# Ops that run in bfloat16; each has a bfloat16 CPU kernel in TF 2.21 (checked by
# tests/test_bfloat16.py). Convolutions and matmuls are where the time goes ("heavy").
HEAVY_OPS = frozenset({"Conv2D", "DepthwiseConv2dNative", "MatMul"})
BF16_OPS = HEAVY_OPS | frozenset({
    "BiasAdd", "Relu", "Relu6", "Elu", "LeakyRelu", "MaxPool", "AvgPool", "Concat", "ConcatV2",
    "Add", "AddV2", "Sub", "Mul", "Maximum", "Minimum", "Reshape", "Squeeze", "Pad", "Identity"})
# Between the logits' matmul/conv and the Softmax or output.
_LOGIT_PATH_OPS = frozenset({"BiasAdd", "Add", "AddV2", "Reshape", "Squeeze", "Identity"})
_PROBABILITY_OPS = frozenset({"Softmax", "LogSoftmax"})
_EPILOGUE_OPS = frozenset({"BiasAdd", "Relu", "Relu6"})
# The stem (`_stem_layers`) stays float32 while layers have fewer input channels than this.
STEM_CHANNELS = 32
_STEM_PASS_OPS = _EPILOGUE_OPS | frozenset({"Pad", "MaxPool", "AvgPool", "Identity"})

Bf16Result = collections.namedtuple("Bf16Result", ["graph_def", "bfloat16", "float_reasons"])


def to_bfloat16(graph_def, input_names, output_names, only=None, excluded_ops=(),
                excluded_nodes=(), float_logits=True, moments=None):
    """Returns Bf16Result(graph, names now in bfloat16, {name: why it stays float32} for the
    float32 ops with a float32 T). `only`: consider just these names (the mixed mode's layers
    left out of int8). `moments(tensor)`: (E[x], Var[x]) per channel from the batch norms, or
    None; with it the weights are rounded keeping each channel's mean output (`bfloat16_means`)."""
    index = GraphIndex(graph_def)
    keep_float = {n: "a graph input" for n in input_names}
    keep_float.update({n: "excluded by --excluded_nodes" for n in excluded_nodes})
    if float_logits:
        keep_float.update({n: "logits: float32 for accuracy" for n in logits_layer(index, output_names)})
    region, reasons = set(), {}
    for node in graph_def.node:
        if not _has_float_t(node) or (only is not None and node.name not in only):
            continue
        if node.name in keep_float:
            reasons[node.name] = keep_float[node.name]
        elif node.op in excluded_ops:
            reasons[node.name] = "excluded by --excluded_ops"
        elif node.op not in BF16_OPS:
            reasons[node.name] = "float32 for accuracy (%s)" % node.op
        else:
            region.add(node.name)
    for name in _stem_layers(index, region, input_names):
        reasons[name] = ("reads a graph input (the image stays exact)"
                         if _source_layer(index, index.node(name).input[0]) in set(input_names)
                         else "stem: fewer than %d input channels after a float32 layer" % STEM_CHANNELS)
    region -= set(reasons)
    for name in _epilogues_of_float_layers(index, region):
        reasons[name] = "the BiasAdd/activation of a float32 conv stays fused with it"
    region -= set(reasons)
    for name in _drop_isolated_light_ops(index, region):
        reasons[name] = "alone between float32 ops (Casts would cost more)"
    region -= set(reasons)
    graph_def = with_rounded_layers(graph_def, index, region, _weight_axis, HEAVY_OPS, moments)
    # The logits still store their filter as bfloat16 (a large share of a small model's bytes);
    # the stem's filters stay float32 (a few thousand values).
    stored_bf16 = {n for n, why in reasons.items() if why.startswith("logits")}
    graph = _rewrite(graph_def, GraphIndex(graph_def), region, set(output_names), stored_bf16)
    return Bf16Result(graph, sorted(region), reasons)


def logits_layer(index, output_names):
    """Names of the last linear layer: walking back from each Softmax input or graph output
    through BiasAdd/Add/Reshape/Squeeze to the Conv2D/MatMul that produced it."""
    starts = [n.input[0] for n in index.graph_def.node if n.op in _PROBABILITY_OPS]
    starts += list(output_names)
    names = set()
    for start in starts:
        path, node = [], index.get(start)
        while node is not None and node.op in _LOGIT_PATH_OPS:
            path.append(node.name)
            node = index.get(node.input[0])
        if node is not None and node.op in HEAVY_OPS:
            names.update(path + [node.name])
    return names


def _stem_layers(index, region, input_names):
    """Region conv/matmuls of the stem: one that reads a graph input (rounding an 8-bit image
    to bfloat16 moves pixels by up to a quarter gray level, the same way every run), and after
    it, while each reads the one before (through bias, activation, pad or pool) and has fewer
    than STEM_CHANNELS input channels.

    Why narrow layers: a bfloat16 tensor keeps 8 bits of each value, and the first, narrow
    feature maps carry the photo in few channels, so their rounding errors reach the logits
    least diluted. Measured on MobileNet v1 0.25 (1000 photos, activations rounded one tensor
    at a time, weights float32): median change of the log probabilities 2.0, 1.5, 1.1, 1.0 and
    1.2% for the outputs of its five layers with 3-16 input channels, 0.02-0.5% for each of the
    22 after. Narrow layers are also where bfloat16 pays least: a reduction shorter than 32
    values leaves most of an AMX tile row (32 bfloat16) or AVX-512 register empty. The
    generated Inception-v3, ResNet-50 and MobileNet-v2 go from 3 to 32 or more channels in one
    layer, so only their first conv is kept."""
    heavy = {n for n in region if index.node(n).op in HEAVY_OPS}
    source = {n: _source_layer(index, index.node(n).input[0]) for n in heavy}
    stem = {n for n in heavy if source[n] in set(input_names)}
    while True:
        new = {n for n in heavy - stem if source[n] in stem
               and _input_channels(index, index.node(n)) < STEM_CHANNELS}
        if not new:
            return stem
        stem |= new


def _source_layer(index, tensor):
    """The node behind `tensor`, looking through single-input bias, activation, pad and pool
    ops (None where it is not a conv/matmul or graph input)."""
    node = index.get(tensor)
    while node is not None and node.op in _STEM_PASS_OPS:
        node = index.get(node.input[0])
    return None if node is None else node.name


def _input_channels(index, layer):
    """The filter's input depth (Conv2D/depthwise [h, w, in, .], MatMul's K), or 0 if unknown."""
    weights = index.get(layer.input[1])
    if weights is None or weights.op != "Const":
        return 0
    dims = [d.size for d in weights.attr["value"].tensor.tensor_shape.dim]
    if layer.op == "MatMul":
        return dims[1] if layer.attr["transpose_b"].b else dims[0]
    return dims[2]


def _epilogues_of_float_layers(index, region):
    """BiasAdd/Relu/Relu6 right after a conv/matmul that stays float32: in bfloat16 they would
    add a bias to a rounded, unfused conv result that it nearly cancels (folded batch norms)."""
    epilogues, changed = set(), True
    while changed:  # BiasAdd first, then the Relu that reads it
        changed = False
        for name in sorted(region - epilogues):
            node = index.node(name)
            producer = index.get(node.input[0]) if node.op in _EPILOGUE_OPS else None
            if producer is not None and (producer.name in epilogues or (
                    producer.name not in region and producer.op in HEAVY_OPS)):
                epilogues.add(name)
                changed = True
    return epilogues


def _has_float_t(node):
    return "T" in node.attr and node.attr["T"].type == FLOAT


def _float_inputs(node, dtypes):
    """Indices of the node's data inputs that carry float32."""
    return [i for i, inp in enumerate(node.input)
            if not inp.startswith("^") and dtypes.get(canonical_input(inp)) == FLOAT]


def _drop_isolated_light_ops(index, region):
    """Light ops (not conv/matmul) with no neighbour in the region: converting one alone buys
    nothing and costs two Casts. Repeated, since dropping one can isolate the next."""
    dropped = set()
    while True:
        alone = [name for name in region - dropped if index.node(name).op not in HEAVY_OPS
                 and not _region_neighbours(index, name, region - dropped)]
        if not alone:
            return dropped
        dropped.update(alone)


def _region_neighbours(index, name, region):
    node = index.node(name)
    producers = {split_input(i)[0] for i in node.input if not i.startswith("^")}
    consumers = {c.name for c, _ in index.data_consumers(name)}
    return (producers | consumers) & region


def tensor_dtypes(graph_def):
    """{canonical tensor name: DataType enum} of every node output, from TF's own op
    definitions (the graph is imported, not run)."""
    from quantize_graph.runner import _load_kernels_if_needed
    _load_kernels_if_needed(graph_def)  # Qg ops are defined by our op library
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    return {tensor_name(op.name, i): t.dtype.as_datatype_enum
            for op in graph.get_operations() for i, t in enumerate(op.outputs)}


def _rewrite(graph_def, index, region, outputs, stored_bf16):
    dtypes = tensor_dtypes(graph_def)
    names = NameAllocator(graph_def)
    renamed = {n: names(n + "/bfloat16") for n in region & outputs}
    out, replaced, bf16_consts = [], set(), {}  # bf16_consts: float32 Const -> bfloat16 twin

    def source(tensor):
        node_name, port, _ = split_input(tensor)
        return tensor_name(renamed.get(node_name, node_name), port)

    # Consts: a bfloat16 twin for region readers (the Const itself when only they read it);
    # the filters of `stored_bf16` layers stored as bfloat16, cast back under their old name.
    for node in graph_def.node:
        if node.op != "Const" or node.attr["dtype"].type != FLOAT:
            continue
        readers = [(c, i) for c, i in index.data_consumers(node.name)]
        by_region = [c for c, i in readers if c.name in region and i in _float_inputs(c, dtypes)]
        if by_region and len(by_region) == len(readers):
            out.append(_bf16_const_node(node.name, node, _weight_axis(index, node.name)))
            replaced.add(node.name)
            bf16_consts[node.name] = node.name
        elif by_region:
            bf16_consts[node.name] = names(node.name + "/bfloat16")
            out.append(_bf16_const_node(bf16_consts[node.name], node, _weight_axis(index, node.name)))
        elif _weight_axis(index, node.name) is not None and all(
                c.name in stored_bf16 for c, _ in readers):
            # A float32 layer's filter (not its bias, whose rounding would shift the channel).
            out.append(_bf16_const_node(names(node.name + "/bfloat16"), node,
                                        _weight_axis(index, node.name)))
            out.append(_cast_node(node.name, out[-1].name, BF16, FLOAT))
            replaced.add(node.name)

    casts = {}  # (tensor, to dtype) -> Cast node name, one per tensor and direction

    def cast(tensor, to):
        if to == FLOAT and tensor in renamed:
            return tensor  # the output's own Cast, added below, answers under its name
        if (tensor, to) not in casts:
            node_name, port, _ = split_input(tensor)
            base = node_name if port == 0 else "%s_%d" % (node_name, port)
            name = names("%s/%s" % (base, "to_bfloat16" if to == BF16 else "to_float32"))
            out.append(_cast_node(name, source(tensor), FLOAT if to == BF16 else BF16, to))
            casts[(tensor, to)] = name
        return casts[(tensor, to)]

    for node in graph_def.node:
        if node.name in replaced:
            continue
        new = type(node)()
        new.CopyFrom(node)
        if node.name in region:
            new.name = renamed.get(node.name, node.name)
            new.attr["T"].type = BF16
            for i in _float_inputs(node, dtypes):
                tensor = canonical_input(node.input[i])
                producer = split_input(tensor)[0]
                if producer in region:
                    new.input[i] = source(tensor)
                elif producer in bf16_consts:
                    new.input[i] = bf16_consts[producer]
                else:
                    new.input[i] = cast(tensor, BF16)
        else:
            for i in _float_inputs(node, dtypes):
                tensor = canonical_input(node.input[i])
                if split_input(tensor)[0] in region:
                    new.input[i] = cast(tensor, FLOAT)
        out.append(new)
    # An output node moved into the region: a Cast answers under its name.
    out.extend(_cast_node(name, new_name, BF16, FLOAT) for name, new_name in renamed.items())
    return graph_with_nodes(graph_def, out)


def _cast_node(name, tensor, src, dst):
    node = create_node("Cast", name, [tensor])
    set_attr_dtype(node, "SrcT", tf.as_dtype(src))
    set_attr_dtype(node, "DstT", tf.as_dtype(dst))
    set_attr_bool(node, "Truncate", False)
    return node


def _bf16_const_node(name, node, axis=None):
    """`node`'s float32 value as bfloat16: weights (an output-channel `axis`) keeping each
    channel's rounding-error sum near zero, anything else (and values `bfloat16_means` already
    rounded) to nearest."""
    value = const_value(node)
    nearest = value.astype(BF16_NUMPY)
    if axis is None or np.array_equal(nearest.astype(np.float32), value):
        return make_const(name, nearest, tf.bfloat16)
    return make_const(name, round_keeping_sums(value, axis), tf.bfloat16)


def _weight_axis(index, const_name):
    """The output-channel axis of a Const that only conv/matmul filters read, else None."""
    axes = set()
    for reader, i in index.data_consumers(const_name):
        if i != 1 or reader.op not in HEAVY_OPS:
            return None
        if reader.op == "MatMul":
            axes.add(0 if reader.attr["transpose_b"].b else 1)
        else:  # Conv2D [h, w, in, out]; depthwise [h, w, in, multiplier]: per input channel
            axes.add(3 if reader.op == "Conv2D" else 2)
    return axes.pop() if len(axes) == 1 else None


def _tensor_moments(graph_def, ctx):
    """tensor -> (E[x], Var[x]) per channel, the batch norms' moments (ctx.moments) propagated,
    so that rounding keeps each channel's output (passes/bfloat16_means.py); None without."""
    if not ctx.moments:
        return None
    stats = statistics_ranges.propagated(graph_def, ctx.moments, ctx.inputs, ctx.options.input_range,
                                         statistics_ranges.DEFAULT_K)
    return lambda tensor: statistics_ranges.channel_moments(stats, tensor)


def run(graph_def, ctx):
    """The pass: facts `bfloat16` (names now in bfloat16) and `float_reasons`. Mode bfloat16:
    every node but the excluded ones; with ctx.only (eightbit's --bfloat16_fallback): just
    those, the layers left out of int8, whatever excluded them from int8."""
    if ctx.only is not None:
        out = to_bfloat16(graph_def, ctx.inputs, ctx.outputs, only=ctx.only)
    else:
        out = to_bfloat16(graph_def, ctx.inputs, ctx.outputs, excluded_ops=ctx.options.excluded_ops,
                          excluded_nodes=ctx.options.excluded_nodes, moments=_tensor_moments(graph_def, ctx))
    return result(out.graph_def, bfloat16=out.bfloat16, float_reasons=out.float_reasons)
