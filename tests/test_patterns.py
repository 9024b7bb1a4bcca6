"""graph/patterns.py: the one matcher of conv -> BiasAdd -> activation groups (and the residual
Add, the foldable Pad) that the lowering, range equalization, bias correction and the report
read; and no import cycle among the lowering's modules."""
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from quantize_graph.graph import patterns
from quantize_graph.graph.index import GraphIndex
from quantize_graph.passes.prepare import prepare
from tests import graphs
from tests.conftest import REPO

tf1 = tf.compat.v1


def _prepared(builder):
    g, inp, out = builder()
    return prepare(g, [inp], [out])


def _op_names(g):
    return {n.name for n in g.node if n.op not in ("Const", "Placeholder")}


def test_conv_bias_relu_is_one_group_and_pool_reshape_single():
    g = _prepared(graphs.conv_relu_pool_graph)
    index = GraphIndex(g)
    quantized = _op_names(g)
    groups = {c.head: c for c in patterns.conv_groups(index, quantized)}
    conv = groups["conv"]
    assert (conv.bias, conv.activation, conv.residual_add, conv.tail) == ("bias", "relu", None, "relu")
    assert conv.members == ("conv", "bias", "relu")
    assert groups["logits"].members == ("logits",)
    assert isinstance(patterns.single_group(index.nodes["pool"]), patterns.PoolGroup)
    assert isinstance(patterns.single_group(index.nodes["flatten"]), patterns.ReshapeGroup)


def test_a_member_not_quantized_ends_the_group():
    g = _prepared(graphs.conv_relu_pool_graph)
    quantized = _op_names(g) - {"relu"}
    [conv] = [c for c in patterns.conv_groups(GraphIndex(g), quantized) if c.head == "conv"]
    assert conv.members == ("conv", "bias")


def test_residual_candidate_takes_the_add_and_its_relu():
    g = _prepared(graphs.residual_graph)
    index = GraphIndex(g)
    quantized = _op_names(g)
    groups = {c.head: c for c in patterns.conv_groups(index, quantized)}
    [second] = [c for c in groups.values() if c.bias == "b"]
    fused = patterns.residual_candidate(index, quantized, second)
    assert fused.residual_add is not None and fused.activation == "res"
    assert fused.summand == "a" and fused.members[-2:] == (fused.residual_add, "res")
    # A group ending in an activation has no residual Add.
    [first] = [c for c in groups.values() if c.activation == "a"]
    assert patterns.residual_candidate(index, quantized, first) is None


def test_a_pad_equal_to_same_padding_is_foldable():
    rng = np.random.RandomState(0)
    g = tf.Graph()
    with g.as_default():
        x = tf1.placeholder(tf.float32, [1, 8, 8, 4], name="input")
        p = tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]], name="pad")
        w = tf.constant(rng.uniform(-1, 1, [3, 3, 4, 1]).astype(np.float32))
        tf.nn.depthwise_conv2d(p, w, [1, 2, 2, 1], "VALID", name="dw")
        odd = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], name="odd_pad")
        tf.nn.depthwise_conv2d(odd, w, [1, 2, 2, 1], "VALID", name="dw_odd")
    gd = g.as_graph_def()
    index, shapes = GraphIndex(gd), patterns.StaticShapes(gd)
    assert patterns.foldable_pad(index, index.nodes["dw"], shapes) == "input"
    assert patterns.foldable_pad(index, index.nodes["dw_odd"], shapes) is None


def test_no_import_cycle_through_the_lowering():
    proc = subprocess.run([sys.executable, os.path.join(str(REPO), "tools", "import_cycles.py")],
                          capture_output=True, text=True)
    mine = ("lowering", "ops.", "targets", "graph.patterns", "sensitivity", "equalize_ranges",
            "bias_correction")
    cycles = [c for c in proc.stdout.splitlines() if any(m in c for m in mine)]
    assert cycles == [], proc.stdout


def test_the_plan_is_immutable_and_lowering_leaves_the_decision_alone():
    import dataclasses
    import pytest
    from quantize_graph.annotate import annotate
    from quantize_graph.lowering.context import EmitContext
    from quantize_graph.lowering.driver import plan
    from quantize_graph.targets import lower, onednn

    g = _prepared(graphs.conv_relu_pool_graph)
    decision = annotate(g, "onednn")
    before = (set(decision.quantized), dict(decision.float_reasons))
    ranges = {n.name: (-1.0, 1.0) for n in g.node}
    ranges.update({"relu": (0.0, 2.0), "pool": (0.0, 2.0), "flatten": (0.0, 2.0)})
    lowered, chosen = lower("onednn", g, decision, ranges=ranges)
    assert (decision.quantized, decision.float_reasons) == before
    # The input is signed and the conv is 3x3 SAME: no offset input, so the conv group stays float.
    assert {"conv", "bias", "relu"} <= set(chosen.float_reasons) and "pool" in chosen.quantized
    lowering_plan = plan(EmitContext(g, decision.quantized, onednn.quantize_weights, ranges), onednn.TARGET)
    by_head = {p.group.members[0]: p for p in lowering_plan.groups}
    assert by_head["pool"].emitted and by_head["pool"].output.hi == 2.0
    assert not by_head["conv"].emitted and "negative" in by_head["conv"].float_reason
    with pytest.raises(dataclasses.FrozenInstanceError):
        by_head["pool"].float_reason = "changed"
