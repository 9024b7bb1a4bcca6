"""Times QgQuantizedAvgPool / QgQuantizedMaxPool / QgQuantizedConcat on Inception-v3 shapes
(batch 1, 2 threads by default): `python tools/bench_pool_concat.py [--threads=2 --runs=20
--copies=20]
[--library=PATH]`.

Each graph holds --copies copies of the op on the same constant inputs and the time printed is
per copy, so session.run's own overhead (~0.1 ms, noisy) is spread over them.
--library loads another build of the op library (e.g. a copy of an older _qg_ops.so) so two
builds can be compared, each in its own process. Each op runs on constant inputs (constant
folding off) as a target, so the time is the op's and not a copy of its output; the median of
--runs runs is printed, in microseconds. QG_CPU_PATH=portable times the portable loops.
"""
import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from quantize_graph import kernels  # noqa: E402

# (name, input NHWC, k, stride, padding)
AVG = [("avg 3x3/1 SAME 35x35x192", (1, 35, 35, 192), 3, 1, "SAME"),
       ("avg 3x3/1 SAME 35x35x256", (1, 35, 35, 256), 3, 1, "SAME"),
       ("avg 3x3/1 SAME 35x35x288", (1, 35, 35, 288), 3, 1, "SAME"),
       ("avg 3x3/1 SAME 17x17x768", (1, 17, 17, 768), 3, 1, "SAME"),
       ("avg 3x3/1 SAME 8x8x1280", (1, 8, 8, 1280), 3, 1, "SAME"),
       ("avg 3x3/1 SAME 8x8x2048", (1, 8, 8, 2048), 3, 1, "SAME")]
MAX = [("max 3x3/2 VALID 147x147x64", (1, 147, 147, 64), 3, 2, "VALID"),
       ("max 3x3/2 VALID 71x71x192", (1, 71, 71, 192), 3, 2, "VALID"),
       ("max 3x3/2 VALID 35x35x288", (1, 35, 35, 288), 3, 2, "VALID"),
       ("max 3x3/2 VALID 17x17x768", (1, 17, 17, 768), 3, 2, "VALID")]
# (name, spatial size, channels of each input) of Inception-v3's channel concats
CONCAT = [("concat 35x35 64+64+96+32", 35, (64, 64, 96, 32)),
          ("concat 35x35 64+64+96+64", 35, (64, 64, 96, 64)),
          ("concat 17x17 384+96+288", 17, (384, 96, 288)),
          ("concat 17x17 192x4", 17, (192, 192, 192, 192)),
          ("concat 8x8 320+192+768", 8, (320, 192, 768)),
          ("concat 8x8 384+384", 8, (384, 384)),
          ("concat 8x8 320+768+768+192", 8, (320, 768, 768, 192))]


def session(graph, threads):
    cfg = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                   inter_op_parallelism_threads=1)
    cfg.graph_options.optimizer_options.opt_level = tf.compat.v1.OptimizerOptions.L0
    off = cfg.graph_options.rewrite_options.OFF
    cfg.graph_options.rewrite_options.constant_folding = off
    return tf.compat.v1.Session(graph=graph, config=cfg)


def median_us(graph, ops, threads, runs):
    with session(graph, threads) as s:
        for _ in range(3):
            s.run(ops)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            s.run(ops)
            times.append(time.perf_counter() - t)
    return 1e6 * float(np.median(times)) / len(ops)


def cases(qg, rng, copies):
    for name, shape, k, stride, padding in AVG + MAX:
        g = tf.Graph()
        with g.as_default():
            x = tf.constant(rng.integers(0, 256, shape, dtype=np.uint8), tf.quint8)
            fn = qg.qg_quantized_avg_pool if name.startswith("avg") else qg.qg_quantized_max_pool
            ys = [fn(x, 0.0, 6.0, ksize=[1, k, k, 1], strides=[1, stride, stride, 1],
                     padding=padding)[0].op for _ in range(copies)]
        yield name, g, ys
    for identity in (False, True):
        for name, hw, chans in CONCAT:
            g = tf.Graph()
            with g.as_default():
                xs = [tf.constant(rng.integers(0, 256, (1, hw, hw, c), dtype=np.uint8),
                                  tf.quint8) for c in chans]
                maxes = [6.0 if identity else float(rng.uniform(3, 7)) for _ in chans]
                ys = [qg.qg_quantized_concat(xs, [0.0] * len(chans), maxes, 0.0, 6.0,
                                             axis=3)[0].op for _ in range(copies)]
            yield name + (" (same ranges)" if identity else ""), g, ys


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--copies", type=int, default=20, help="copies of the op in each graph")
    p.add_argument("--library", default=None, help="op library to load (default: the built one)")
    args = p.parse_args(argv)
    qg = tf.load_op_library(args.library) if args.library else kernels.load()
    rng = np.random.default_rng(0)
    total = 0.0
    for name, g, ops in cases(qg, rng, args.copies):
        us = median_us(g, ops, args.threads, args.runs)
        total += us
        print(f"{name:40s} {us:9.1f} us", flush=True)
    print(f"{'sum':40s} {total:9.1f} us")


if __name__ == "__main__":
    main()
