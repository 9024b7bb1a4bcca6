"""Times QgQuantizedDepthwiseConv2D against float tf.nn.depthwise_conv2d (oneDNN fp32) on the
3x3 depthwise shapes of MobileNet-v2 (224x224): `python tools/bench_depthwise.py [--batch=1
--threads=2 --runs=30]`. Both graphs hold the op (+ bias, Relu6) on constant inputs (constant
folding off); median of interleaved runs. Set QG_CPU_PATH=portable to time the portable loops.
--library loads another build of the op library (e.g. a copy of an older _qg_ops.so), so two
builds can be compared, each in its own process.
"""
import argparse
import os
import sys

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from quantize_graph import kernels  # noqa: E402
from tools.bench_kernels import interleaved_row  # noqa: E402

# (name, input NHWC at batch 1, stride)
SHAPES = [
    ("3x3 112x112x32", (1, 112, 112, 32), 1),
    ("3x3/2 112x112x96", (1, 112, 112, 96), 2),
    ("3x3 56x56x144", (1, 56, 56, 144), 1),
    ("3x3 28x28x192", (1, 28, 28, 192), 1),
    ("3x3 14x14x384", (1, 14, 14, 384), 1),
    ("3x3 7x7x960", (1, 7, 7, 960), 1),
    # MobileNet v1 0.25: few channels, where a 32-channel block is mostly padding
    ("3x3 112x112x8", (1, 112, 112, 8), 1),
    ("3x3/2 112x112x16", (1, 112, 112, 16), 2),
    ("3x3 56x56x32", (1, 56, 56, 32), 1),
]


def build(qg, shape, stride):
    rng = np.random.default_rng(0)
    c = shape[3]
    strides = [1, stride, stride, 1]
    g_f, g_q = tf.Graph(), tf.Graph()
    with g_f.as_default():
        x = tf.constant(rng.uniform(0, 1, shape).astype(np.float32))
        w = tf.constant(rng.normal(0, 0.1, (3, 3, c, 1)).astype(np.float32))
        y = tf.nn.depthwise_conv2d(x, w, strides, "SAME")
        y_f = tf.nn.relu6(tf.nn.bias_add(y, tf.constant(np.zeros(c, np.float32))))
    with g_q.as_default():
        x = tf.constant(rng.integers(0, 256, shape, dtype=np.uint8), tf.quint8)
        w = tf.constant(rng.integers(-127, 128, (3, 3, c, 1), dtype=np.int8), tf.qint8)
        y_q = qg.qg_quantized_depthwise_conv2d(
            x, w, np.full(c, 1e-3, np.float32), np.zeros(c, np.float32), -1.0, 1.0, 0.0, 6.0,
            strides=strides, padding="SAME", activation="relu6",
            constant_weights=True)[0]  # as quantize_graph writes it: weights prepared once
    return (g_f, y_f.op), (g_q, y_q.op)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--library", default=None, help="op library to load (default: the built one)")
    args = p.parse_args()
    qg = tf.load_op_library(args.library) if args.library else kernels.load()
    print(f"Qg CPU path: {qg.qg_cpu_path().numpy().decode()}, batch {args.batch}, "
          f"{args.threads} threads, median of {args.runs} interleaved runs")
    print("| shape | float ms | Qg int8 ms | float / int8 | float CPU ms | int8 CPU ms | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, shape, stride in SHAPES:
        (gf, yf), (gq, yq) = build(qg, (args.batch,) + shape[1:], stride)
        print(interleaved_row(name, gf, yf, gq, yq, args.threads, args.runs, digits=3),
              flush=True)


if __name__ == "__main__":
    main()
