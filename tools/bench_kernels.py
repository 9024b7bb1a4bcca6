"""Times QgQuantizedConv2D / QgQuantizedMatMul against float Conv2D / MatMul on Inception-v3
shapes (batch 1, 2 threads by default): `python tools/bench_kernels.py [--threads=2 --runs=30]`.

Float runs as quantize_graph runs it (TF_ENABLE_ONEDNN_OPTS=1, so through oneDNN's fp32).
Both graphs hold the op on constant inputs (constant folding off); median of interleaved runs.
"""
import argparse
import os
import sys
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from quantize_graph import kernels  # noqa: E402

# (name, input NHWC, kernel h, w, output channels, stride, padding)
SHAPES = [
    ("3x3 147x147x32->64", (1, 147, 147, 32), 3, 3, 64, 1, "SAME"),
    ("3x3/2 299x299x3->32", (1, 299, 299, 3), 3, 3, 32, 2, "VALID"),
    ("1x1 35x35x288->64", (1, 35, 35, 288), 1, 1, 64, 1, "SAME"),
    ("3x3 35x35x64->96", (1, 35, 35, 64), 3, 3, 96, 1, "SAME"),
    ("1x7 17x17x128->128", (1, 17, 17, 128), 1, 7, 128, 1, "SAME"),
    ("1x1 17x17x768->192", (1, 17, 17, 768), 1, 1, 192, 1, "SAME"),
    ("3x3 8x8x448->384", (1, 8, 8, 448), 3, 3, 384, 1, "SAME"),
    ("1x1 8x8x2048->384", (1, 8, 8, 2048), 1, 1, 384, 1, "SAME"),
    # MobileNet stems (K = 27) and small pointwise convs
    ("3x3/2 224x224x3->8", (1, 224, 224, 3), 3, 3, 8, 2, "SAME"),
    ("3x3/2 224x224x3->32", (1, 224, 224, 3), 3, 3, 32, 2, "SAME"),
    ("1x1 112x112x8->16", (1, 112, 112, 8), 1, 1, 16, 1, "SAME"),
    ("1x1 7x7x256->256", (1, 7, 7, 256), 1, 1, 256, 1, "SAME"),
]


def build(qg, shape, kh, kw, cout, stride, padding, weight_max=127):
    rng = np.random.default_rng(0)
    cin = shape[3]
    g_f, g_q = tf.Graph(), tf.Graph()
    with g_f.as_default():
        x = tf.constant(rng.uniform(0, 1, shape).astype(np.float32))
        w = tf.constant(rng.normal(0, 0.1, (kh, kw, cin, cout)).astype(np.float32))
        y_f = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w, [1, stride, stride, 1], padding),
                                        tf.constant(np.zeros(cout, np.float32))))
    with g_q.as_default():
        x = tf.constant(rng.integers(0, 256, shape, dtype=np.uint8), tf.quint8)
        w = tf.constant(rng.integers(-weight_max, weight_max + 1, (kh, kw, cin, cout),
                                     dtype=np.int8), tf.qint8)
        y_q = qg.qg_quantized_conv2d(x, w, np.full(cout, 1e-3, np.float32),
                                     np.zeros(cout, np.float32), 0.0, 1.0, 0.0, 6.0, [], [], [],
                                     strides=[1, stride, stride, 1], padding=padding,
                                     activation="relu", constant_weights=True)[0]
    # run as targets (nothing fetched): the time is the op's, not a copy of its output
    return (g_f, y_f.op), (g_q, y_q.op)


def session(graph, threads):
    cfg = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                   inter_op_parallelism_threads=1)
    # The inputs are constants: keep TF from folding the op away before it is timed.
    cfg.graph_options.optimizer_options.opt_level = tf.compat.v1.OptimizerOptions.L0
    off = cfg.graph_options.rewrite_options.OFF
    cfg.graph_options.rewrite_options.constant_folding = off
    return tf.compat.v1.Session(graph=graph, config=cfg)


def interleaved_row(name, gf, yf, gq, yq, threads, runs, digits):
    """A markdown row: float and int8 op runs interleaved after 3 warm-ups, median wall and
    CPU ms of each and their ratios. CPU time (all threads) is shown too: on a shared machine
    wall time mostly measures the neighbours, CPU time the work."""
    with session(gf, threads) as sf, session(gq, threads) as sq:
        for _ in range(3):
            sf.run(yf)
            sq.run(yq)
        tf_, tq, cf, cq = [], [], [], []
        for _ in range(runs):
            t0, c0 = time.perf_counter(), time.process_time()
            sf.run(yf)
            t1, c1 = time.perf_counter(), time.process_time()
            sq.run(yq)
            t2, c2 = time.perf_counter(), time.process_time()
            tf_.append(t1 - t0)
            tq.append(t2 - t1)
            cf.append(c1 - c0)
            cq.append(c2 - c1)
    mf, mq = np.median(tf_) * 1e3, np.median(tq) * 1e3
    pf, pq = np.median(cf) * 1e3, np.median(cq) * 1e3
    return (f"| {name} | {mf:.{digits}f} | {mq:.{digits}f} | {mf / mq:.2f}x | {pf:.2f} | "
            f"{pq:.2f} | {pf / pq:.2f}x |")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--weight_max", type=int, default=127,
                   help="int8 weights in [-w, w]; 64 lets the AVX2 byte kernel run (weight "
                        "pairs fit int16), 127 uses the int16 kernel")
    args = p.parse_args()
    qg = kernels.load()
    print(f"Qg CPU path: {qg.qg_cpu_path().numpy().decode()}, {args.threads} threads, "
          f"median of {args.runs} interleaved runs, weights in [-{args.weight_max}, "
          f"{args.weight_max}]")
    print("| shape | float ms | Qg int8 ms | float / int8 | float CPU ms | int8 CPU ms | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, shape, kh, kw, cout, stride, padding in SHAPES:
        (gf, yf), (gq, yq) = build(qg, shape, kh, kw, cout, stride, padding,
                                     args.weight_max)
        print(interleaved_row(name, gf, yf, gq, yq, args.threads, args.runs, digits=2),
              flush=True)


if __name__ == "__main__":
    main()
