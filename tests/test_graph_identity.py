"""The tool's output does not drift: the real MobileNet v1 0.25 quantized every way (reference,
onednn and kernels targets; no data and 20 calibration photos) must come out node for node as
recorded in tests/golden/ (written by tools/graph_snapshots.py, compared by graph/snapshot.py).
A deliberate change of the output rewrites the file (see tools/graph_snapshots.py)."""
import os
import subprocess
import sys

import numpy as np
import pytest
from tensorflow.core.framework import graph_pb2

from quantize_graph.graph import snapshot
from tests.conftest import REPO, shared_dir

GOLDEN = REPO / "tests" / "golden" / "mobilenet_v1.json.gz"


def test_mobilenet_v1_quantizes_as_recorded():
    if not (shared_dir() / "models" / "mobilenet_v1_0.25_224" / "frozen_graph.pb").exists():
        pytest.fail("the real MobileNet v1 is missing from %s (set QG_SHARED_DIR)" % shared_dir())
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "graph_snapshots.py"),
                           "--compare=%s" % GOLDEN, "--models=mobilenet_v1"],
                          capture_output=True, text=True, timeout=600)
    identical = [l for l in proc.stdout.splitlines() if l.endswith(": identical")]
    assert proc.returncode == 0 and len(identical) == 6, proc.stdout[-3000:] + proc.stderr[-2000:]


def _graph(value):
    g = graph_pb2.GraphDef()
    node = g.node.add(name="w", op="Const")
    node.attr["value"].tensor.CopyFrom(__import__("tensorflow").make_tensor_proto(value))
    g.node.add(name="out", op="Identity", input=["w"])
    return g


def test_snapshot_sees_changed_values_ops_and_inputs():
    base = snapshot.describe(_graph(np.arange(40, dtype=np.int8)), {"w:0": (0.0, 1.0)})
    assert snapshot.differences(base, base) == []
    moved = np.arange(40, dtype=np.int8)
    moved[3] += 1
    assert snapshot.differences(base, snapshot.describe(_graph(moved), {"w:0": (0.0, 1.0)}))
    # One integer a step away passes only with slack.
    assert snapshot.differences(base, snapshot.describe(_graph(moved), {"w:0": (0.0, 1.0)}),
                                integer_slack=1) == []
    assert snapshot.differences(base, snapshot.describe(_graph(np.arange(40, dtype=np.int8)),
                                                        {"w:0": (0.0, 1.001)}))
    renamed = _graph(np.arange(40, dtype=np.int8))
    renamed.node[1].op = "Snapshot"
    assert any("op" in l for l in snapshot.differences(base, snapshot.describe(renamed, {"w:0": (0.0, 1.0)})))
    floats = snapshot.describe(_graph(np.linspace(0, 1, 40).astype(np.float32)))
    nudged = snapshot.describe(_graph((np.linspace(0, 1, 40) * (1 + 1e-7)).astype(np.float32)))
    assert snapshot.differences(floats, nudged) == []  # within FLOAT_RTOL
    assert snapshot.differences(floats, snapshot.describe(_graph(np.linspace(0, 1.01, 40).astype(np.float32))))
