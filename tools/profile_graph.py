"""Where a graph's wall time goes: TF's step stats (FULL_TRACE) per op type, against the wall
time of the same runs without tracing, so what is left over (TF's per-op dispatch, executor
hand-offs, the session call) shows as the difference.

    python tools/profile_graph.py GRAPH.pb --input input --output softmax --batch 1 --runs 30

Prints one markdown table (op type, count, ms per run, share of the untraced wall time) for
docs/profile.md. Op times are the kernels' own (op_start to op_end on their thread); with 2
threads, ops of parallel branches may overlap, so the sum can exceed the critical path.
"""
import argparse
import collections
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import quantize_graph  # noqa: E402,F401  (sets TF_ENABLE_ONEDNN_OPTS before TF loads)
from quantize_graph.tools.benchmark_graph import Model  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def profile(path, input_name, output_name, batch, runs, threads=2):
    model = Model(path, input_name, output_name, threads)
    try:
        x = model.random_input(batch)
        session = model.runner.session
        feed = {model.input: x}
        for _ in range(3):
            session.run(model.output, feed)
        walls = []
        for _ in range(runs):
            start = time.perf_counter()
            session.run(model.output, feed)
            walls.append((time.perf_counter() - start) * 1000.0)
        options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
        per_type = collections.defaultdict(lambda: [0, 0.0])
        traced = []
        op_of = {n.name: n.op for n in model.runner.graph.as_graph_def().node}
        for _ in range(runs):
            meta = tf.compat.v1.RunMetadata()
            start = time.perf_counter()
            session.run(model.output, feed, options=options, run_metadata=meta)
            traced.append((time.perf_counter() - start) * 1000.0)
            for dev in meta.step_stats.dev_stats:
                for node in dev.node_stats:
                    name = node.node_name.split(":")[0]
                    op = op_of.get(name)
                    if op is None:  # _SOURCE, _Recv, ...
                        continue
                    entry = per_type[op]
                    entry[0] += 1
                    entry[1] += (node.op_end_rel_micros - node.op_start_rel_micros) / 1000.0
    finally:
        model.close()
    wall = float(np.median(walls))
    rows = sorted(((op, n // runs, ms / runs) for op, (n, ms) in per_type.items()),
                  key=lambda r: -r[2])
    return wall, float(np.median(traced)), rows


def table(title, wall, traced, rows):
    total = sum(ms for _, _, ms in rows)
    lines = ["### %s" % title, "",
             "Wall %.2f ms a run (untraced median), %.2f ms traced; ops' own time %.2f ms "
             "(%.0f%% of the wall)." % (wall, traced, total, 100 * total / wall), "",
             "| op | nodes | ms a run | % of wall |", "|---|---|---|---|"]
    for op, count, ms in rows:
        if ms < 0.005 * wall:
            continue
        lines.append("| %s | %d | %.3f | %.1f%% |" % (op, count, ms, 100 * ms / wall))
    return "\n".join(lines + [""])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("graph")
    parser.add_argument("--input", default="input")
    parser.add_argument("--output", default="softmax")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--title", default=None)
    args = parser.parse_args()
    wall, traced, rows = profile(args.graph, args.input, args.output, args.batch, args.runs)
    print(table(args.title or "%s, batch %d" % (os.path.basename(args.graph), args.batch),
                wall, traced, rows))


if __name__ == "__main__":
    main()
