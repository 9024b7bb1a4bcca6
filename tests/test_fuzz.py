"""Fuzzing (issue 11): GraphDefs mutated from small valid ones, every flag with out-of-range
values, calibration arrays of every wrong kind through the CLI, and random calls of each Qg op
in a subprocess. Every case must end in a correct run (an output that imports and runs), or
exit 1 with exactly one `quantize_graph: error:` line and no file written, or (ops) an
InvalidArgument. A crash, hang, traceback or silently accepted bad input fails the test.

The counts are bounded for CI (about a minute of CPU); QG_FUZZ_SCALE=10 (`make fuzz`) runs ten
times as many seeded cases. QG_FUZZ_SEED picks another seed."""
import collections
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from absl import flags

from quantize_graph import cli, kernels, legacy
from quantize_graph.graph.io import load_graph_def
from quantize_graph.runner import run_graph
from tests.fuzz_inputs import calibration_cases, flag_cases, graph_mutants
from tests.graphs import conv_relu_pool_graph, write_graph

FLAGS = flags.FLAGS
SCALE = int(os.environ.get("QG_FUZZ_SCALE", "1"))
SEED = int(os.environ.get("QG_FUZZ_SEED", "11"))
REPO = Path(__file__).resolve().parent.parent
Outcome = collections.namedtuple("Outcome", ["kind", "detail"])


def run_cli(args):
    """(exit code, stderr) of the CLI run in-process, as the console script runs it."""
    FLAGS.unparse_flags()
    saved = dict(vars(legacy.FLAGS))
    code = 0
    import contextlib
    import io
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            cli._main_with_errors(cli._parse_flags(["quantize_graph"] + list(args)))
    except SystemExit as e:
        code = e.code
    finally:
        FLAGS.unparse_flags()
        FLAGS(["quantize_graph"])
        vars(legacy.FLAGS).update(saved)
    return code, err.getvalue()


def judge(args, output, folder, before):
    """Classifies one CLI run: ("ran" | "refused", detail), or raises AssertionError."""
    code, err = run_cli(args)
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("quantize_graph: error: ")]
    assert "Traceback" not in err, err
    if code == 0:
        if output is not None:
            assert output.exists(), "exit 0 but no output"
            _runs(load_graph_def(str(output)))
            output.unlink()
        return Outcome("ran", "")
    assert code == 1, (code, err)
    assert len(errors) == 1 and errors == [ln for ln in lines if "error" in ln], err
    assert "internal error" not in errors[0], errors[0]
    assert _files(folder) == before, "a failed run left files behind"
    return Outcome("refused", errors[0])


def _runs(graph_def):
    """The written graph imports and runs on random inputs of its Placeholders' types."""
    if any(n.op.startswith("Qg") for n in graph_def.node):
        kernels.load()
    rng = np.random.default_rng(0)
    feeds = {}
    placeholders = [n for n in graph_def.node if n.op == "Placeholder"]
    if any(n.attr["shape"].shape.unknown_rank or "shape" not in n.attr for n in placeholders):
        # A mutant without the input's shape is still valid; what to feed it is unknown, so
        # the written graph is only imported.
        import tensorflow as tf
        with tf.Graph().as_default():
            tf.graph_util.import_graph_def(graph_def, name="")
        return
    for node in graph_def.node:
        if node.op == "Placeholder":
            import tensorflow as tf
            dtype = tf.as_dtype(node.attr["dtype"].type)
            shape = [max(d.size, 1) for d in node.attr["shape"].shape.dim]
            values = rng.uniform(0, 1, shape)
            feeds[node.name + ":0"] = (rng.integers(0, 256, shape).astype(np.uint8)
                                       if dtype == tf.quint8 else values.astype(dtype.as_numpy_dtype))
    outputs = [n.name + ":0" for n in graph_def.node
               if not any(n.name == i.split(":")[0].lstrip("^") for m in graph_def.node for i in m.input)
               and n.op not in ("Const", "Placeholder", "NoOp")]
    for value in run_graph(graph_def, outputs, feeds):
        value = np.asarray(value)
        if value.dtype.kind == "f":
            assert np.isfinite(value).all(), "the written graph computes NaN or Inf"


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def report(label, outcomes):
    counts = collections.Counter(o.kind for o in outcomes)
    print("\nfuzz %s: %d cases: %s" % (label, len(outcomes), dict(sorted(counts.items()))))


@pytest.fixture(scope="module")
def base_graph(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz_base")
    graph, inp, out = conv_relu_pool_graph()
    write_graph(graph, folder / "model.pb")
    return folder / "model.pb", inp, out


# eightbit cases take each target in turn; onednn and kernels freeze ranges, here the fallback's.
TARGET_FLAGS = [["--target=reference"],
                ["--target=onednn", "--quantized_fallback_min=-8", "--quantized_fallback_max=8"],
                ["--target=kernels", "--quantized_fallback_min=-8", "--quantized_fallback_max=8"]]


def test_mutated_graphs(tmp_path):
    rng = np.random.default_rng(SEED)
    outcomes = []
    for i, (label, graph, inp, out) in enumerate(graph_mutants(rng, 80 * SCALE)):
        folder = tmp_path / str(i)
        folder.mkdir()
        path = folder / "in.pb"
        path.write_bytes(graph.SerializeToString())
        mode = ["eightbit", "weights", "round", "weights_rounded"][i % 4]
        args = ["--input=%s" % path, "--output=%s" % (folder / "q.pb"), "--mode=" + mode,
                "--output_node_names=" + out] + (
                    TARGET_FLAGS[(i // 4) % len(TARGET_FLAGS)] if mode == "eightbit" else ["--target=reference"])
        before = _files(folder)
        try:
            outcomes.append(judge(args, folder / "q.pb", folder, before))
        except AssertionError as e:
            raise AssertionError("seed %d case %d (%s, mode %s): %s" % (SEED, i, label, mode, e))
    report("graphs", outcomes)
    assert sum(o.kind == "refused" for o in outcomes) > len(outcomes) // 2  # the mutations bite


def test_flags_out_of_range(tmp_path, base_graph):
    path, _, out = base_graph
    outcomes = []
    for label, extra in flag_cases():
        folder = tmp_path / ("case%d" % len(outcomes))
        folder.mkdir()
        extra = [e.format(tmp=folder, input=path) for e in extra]
        args = ["--input=%s" % path, "--output_node_names=" + out]
        output = None
        if not any(e.startswith("--output=") for e in extra):
            output = folder / "q.pb"
            args.append("--output=%s" % output)
        before = _files(folder)
        try:
            outcomes.append(judge(args + [e for e in extra if e != "--output="], output, folder, before))
        except AssertionError as e:
            raise AssertionError("flag case %r: %s" % (label, e))
    report("flags", outcomes)


def test_calibration_data_of_every_wrong_kind(tmp_path, base_graph):
    path, _, out = base_graph
    outcomes = []
    for label, files in calibration_cases([1, 8, 8, 3]):
        folder = tmp_path / ("case%d" % len(outcomes))
        data = folder / "data"
        data.mkdir(parents=True)
        for name, content in files.items():
            target = data / name
            target.parent.mkdir(exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            elif isinstance(content, dict):
                np.savez(target, **content)
            else:
                np.save(target, content)
        source = data / (list(files)[0].split("/")[0])
        args = ["--input=%s" % path, "--output=%s" % (folder / "q.pb"), "--mode=eightbit",
                "--target=reference", "--calibration_data=%s" % source, "--output_node_names=" + out]
        before = _files(folder)
        try:
            outcome = judge(args, folder / "q.pb", folder, before)
        except AssertionError as e:
            raise AssertionError("calibration case %r: %s" % (label, e))
        if label not in ("float64", "int8"):  # real numbers of another type are cast
            assert outcome.kind == "refused", "calibration case %r was accepted" % label
        outcomes.append(outcome)
    report("calibration", outcomes)


def _run_ops(seed, count, env, limit=240):
    """Runs the op cases in subprocesses, going on after a crash; returns {kind: count} and
    the failures."""
    counts, failures, first = collections.Counter(), [], 0
    while first < count:
        try:
            proc = subprocess.run([sys.executable, "-m", "tests.fuzz_ops_child", str(seed), str(first),
                                   str(count - first)], cwd=REPO, env=env, capture_output=True,
                                  text=True, timeout=limit)
            stdout, code, stderr = proc.stdout, proc.returncode, proc.stderr
        except subprocess.TimeoutExpired as e:
            stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            code, stderr = "hang", ""
        started, last = None, first - 1
        for line in stdout.splitlines():
            words = line.split()
            if words[0] == "start":
                started = line
            elif words[0] == "done":
                last = int(words[1])
                kind = words[2]
                counts[kind] += 1
                if kind == "WRONG":
                    failures.append(line)
                started = None
        if code == 0 and started is None:
            break
        failures.append("%s (exit %s): %s" % (started or "start-up", code, stderr[-300:]))
        counts["crash" if code != "hang" else "hang"] += 1
        first = last + 2  # the case after the one that crashed
    return counts, failures


@pytest.mark.parametrize("path", ["default", "portable"])
def test_qg_ops_random_calls(path):
    if not kernels.is_built():
        pytest.skip("Qg op library not built")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if path == "portable":
        env["QG_CPU_PATH"] = "portable"
    count = (300 if path == "default" else 150) * SCALE
    counts, failures = _run_ops(SEED, count, env)
    print("\nfuzz ops (%s path): %d cases: %s" % (path, count, dict(sorted(counts.items()))))
    assert not failures, failures[:5]
    assert counts["ok"] > count // 4 and counts["invalid"] > count // 10
