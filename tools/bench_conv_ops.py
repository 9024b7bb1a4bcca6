"""QgQuantizedConv2D against oneDNN's int8 conv (QuantizedConv2DWithBiasAndReluAndRequantize,
what --target=onednn writes), op by op, on Inception-v3's conv shapes and ResNet-50's 3x3s:

    python tools/bench_conv_ops.py [--batch 8 --runs 15 --only 7x1 --weight_max 127]

Both ops take the same quint8 input and qint8 weights (constant inputs, constant folding off,
run as targets), interleaved after 3 warm-ups; prints a markdown row per shape with the median
wall and CPU milliseconds (CPU time: all threads; on a shared machine it measures the work, the
wall the neighbours too) and onednn / qg ratios (> 1: ours faster). Set QG_CPU_PATH and
ONEDNN_MAX_CPU_ISA together to compare one ISA (e.g. vnni / AVX512_CORE_VNNI, avx2 / AVX2).
On the avx2 path use --weight_max 64: the byte kernel needs pair-limited weights (the kernels
target writes them), random codes up to 127 send it to the int16 kernel.
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
from tools.bench_kernels import session  # noqa: E402

# (name, input H, W, C, kernel h, w, output channels, stride, padding)
SHAPES = [
    ("3x3/2 299x299x3->32", 299, 299, 3, 3, 3, 32, 2, "VALID"),
    ("3x3 149x149x32->32", 149, 149, 32, 3, 3, 32, 1, "VALID"),
    ("3x3 147x147x32->64", 147, 147, 32, 3, 3, 64, 1, "SAME"),
    ("1x1 73x73x64->80", 73, 73, 64, 1, 1, 80, 1, "VALID"),
    ("3x3 73x73x80->192", 73, 73, 80, 3, 3, 192, 1, "VALID"),
    ("1x1 35x35x288->64", 35, 35, 288, 1, 1, 64, 1, "SAME"),
    ("5x5 35x35x48->64", 35, 35, 48, 5, 5, 64, 1, "SAME"),
    ("3x3 35x35x96->96", 35, 35, 96, 3, 3, 96, 1, "SAME"),
    ("3x3/2 35x35x288->384", 35, 35, 288, 3, 3, 384, 2, "VALID"),
    ("1x1 17x17x768->192", 17, 17, 768, 1, 1, 192, 1, "SAME"),
    ("7x1 17x17x192->192", 17, 17, 192, 7, 1, 192, 1, "SAME"),
    ("1x7 17x17x192->192", 17, 17, 192, 1, 7, 192, 1, "SAME"),
    ("3x3 8x8x448->384", 8, 8, 448, 3, 3, 384, 1, "SAME"),
    ("1x3 8x8x384->384", 8, 8, 384, 1, 3, 384, 1, "SAME"),
    ("1x1 8x8x2048->448", 8, 8, 2048, 1, 1, 448, 1, "SAME"),
    # ResNet-50 (224x224): the stem and the 3x3 convs of its four stages
    ("resnet 7x7/2 224x224x3->64", 224, 224, 3, 7, 7, 64, 2, "SAME"),
    ("resnet 3x3 56x56x64->64", 56, 56, 64, 3, 3, 64, 1, "SAME"),
    ("resnet 3x3 28x28x128->128", 28, 28, 128, 3, 3, 128, 1, "SAME"),
    ("resnet 3x3 14x14x256->256", 14, 14, 256, 3, 3, 256, 1, "SAME"),
    ("resnet 3x3 7x7x512->512", 7, 7, 512, 3, 3, 512, 1, "SAME"),
]


def graphs(qg, batch, h, w, c, kh, kw, cout, stride, padding, weight_max):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch, h, w, c), dtype=np.uint8)
    f = rng.integers(-weight_max, weight_max + 1, (kh, kw, c, cout), dtype=np.int8)
    strides = [1, stride, stride, 1]
    g_qg, g_dnn = tf.Graph(), tf.Graph()
    with g_qg.as_default():
        y_qg = qg.qg_quantized_conv2d(
            tf.constant(x, tf.quint8), tf.constant(f, tf.qint8),
            np.full(cout, 1e-3, np.float32), np.zeros(cout, np.float32), 0.0, 1.0, 0.0, 6.0,
            [], [], [], strides=strides, padding=padding, activation="relu",
            constant_weights=True)[0]  # as the kernels target writes it: weights packed once
    with g_dnn.as_default():
        y_dnn = tf.raw_ops.QuantizedConv2DWithBiasAndReluAndRequantize(
            input=tf.constant(x, tf.quint8), filter=tf.constant(f, tf.qint8),
            bias=tf.constant(np.zeros(cout, np.float32)), min_input=tf.constant(0.0),
            max_input=tf.constant(1.0),
            min_filter=tf.constant(np.full(cout, -0.127, np.float32)),
            max_filter=tf.constant(np.full(cout, 0.127, np.float32)),
            min_freezed_output=tf.constant(0.0), max_freezed_output=tf.constant(6.0),
            strides=strides, padding=padding, out_type=tf.quint8)[0]
    return (g_qg, y_qg.op), (g_dnn, y_dnn.op)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--only", default=None, help="shapes whose name starts with this")
    p.add_argument("--weight_max", type=int, default=127)
    args = p.parse_args()
    qg = kernels.load()
    print("Qg path %s, ONEDNN_MAX_CPU_ISA=%s, batch %d, %d threads, load %.1f" % (
        qg.qg_cpu_path().numpy().decode(), os.environ.get("ONEDNN_MAX_CPU_ISA", "(all)"),
        args.batch, args.threads, os.getloadavg()[0]))
    print("\n| shape | qg wall | qg CPU | onednn wall | onednn CPU | onednn / qg CPU |")
    print("|---|---|---|---|---|---|")
    total = np.zeros(4)
    for name, *shape in SHAPES:
        if args.only and not name.startswith(args.only):
            continue
        (g1, y1), (g2, y2) = graphs(qg, args.batch, *shape, args.weight_max)
        with session(g1, args.threads) as s1, session(g2, args.threads) as s2:
            for _ in range(3):
                s1.run(y1)
                s2.run(y2)
            times = [[], [], [], []]
            for _ in range(args.runs):
                for i, (s, y) in enumerate(((s1, y1), (s2, y2))):
                    t0, c0 = time.perf_counter(), time.process_time()
                    s.run(y)
                    times[2 * i].append(time.perf_counter() - t0)
                    times[2 * i + 1].append(time.process_time() - c0)
        med = np.array([np.median(t) * 1e3 for t in times])
        total += med
        print("| %s | %.2f | %.2f | %.2f | %.2f | %.2fx |" % (name, *med, med[3] / med[1]),
              flush=True)
    print("| all | %.1f | %.1f | %.1f | %.1f | %.2fx |" % (*total, total[3] / total[1]))


if __name__ == "__main__":
    main()
