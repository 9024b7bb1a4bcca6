"""Mode bfloat16's figures: file size, top-1 agreement against the float graph's own agreement
under +-1 gray level of input noise, and speed vs float at batch 1 and 8 (2 threads, the two
graphs interleaved in one process, medians), on generated Inception-v3, ResNet-50 and
MobileNet-v2; and top-1 of the real MobileNet v1 0.25 on the 1000 labelled photos.

  .venv/bin/python tools/bench_bfloat16.py [--runs=20] [--models=inception_v3,resnet50,...]

Agreement is measured on photos 100-299 (the 200 photos tools/bench.py uses); the noise baseline
feeds the float graph the same photos plus uniform noise of +-1 of 255 levels (as
tests/test_make_inception_v3.py). Prints a markdown table with the CPU's bf16 flags and the load.
"""
import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import quantize_graph as qg  # noqa: E402  (sets TF_ENABLE_ONEDNN_OPTS before TF loads)
from quantize_graph.calibration_data import Preprocessing  # noqa: E402
from quantize_graph.cpu_bf16 import NATIVE_FLAGS, cpu_flags  # noqa: E402
from quantize_graph.evaluate import predict, read_labels_csv, top_k_accuracy  # noqa: E402
from quantize_graph.preprocess import list_images, read_image  # noqa: E402
from quantize_graph.tools.benchmark_graph import benchmark, cpu_model  # noqa: E402
from tests.model_cache import inception_v3_paths, mobilenet_v2_path, resnet50_path, shared_dir  # noqa: E402

import numpy as np  # noqa: E402

MODELS = {
    "inception_v3": ("Inception-v3", lambda: inception_v3_paths()[0], 299),
    "resnet50": ("ResNet-50", resnet50_path, 224),
    "mobilenet_v2": ("MobileNet-v2", mobilenet_v2_path, 224),
}
MOBILENET_V1 = ("models/mobilenet_v1_0.25_224/frozen_graph.pb", "input",
                "MobilenetV1/Predictions/Reshape_1")


def noise_like(images, seed=0):
    """Uniform noise of +-1 gray level on images scaled to [-1, 1] (mean 127.5, std 127.5)."""
    return np.random.default_rng(seed).uniform(-1, 1, images.shape).astype(np.float32) / 127.5


def agreements(float_path, bf16_path, photos, size, batch=8):
    """(bf16 vs float, float+noise vs float) top-1 agreement on photos 100-299."""
    files = list_images(photos)[100:300]
    images = np.stack([read_image(f, *Preprocessing(size, size, 127.5, 127.5, 0.875)) for f in files])
    graph = qg.load_graph_def(float_path)
    clean = predict(graph, "input", "softmax", images, batch).argmax(1)
    noisy = predict(graph, "input", "softmax", images + noise_like(images), batch).argmax(1)
    bf16 = predict(qg.load_graph_def(bf16_path), "input", "softmax", images, batch).argmax(1)
    return float(np.mean(bf16 == clean)), float(np.mean(noisy == clean))


def load():
    return os.getloadavg()[0]


def model_rows(args, out_dir):
    rows = []
    for key in args.models.split(","):
        name, path_fn, size = MODELS[key]
        float_path = path_fn()
        bf16_path = os.path.join(out_dir, key + "_bf16.pb")
        qg.quantize_file(float_path, bf16_path, ["softmax"], mode="bfloat16")
        agree, noise = agreements(float_path, bf16_path, args.photos, size)
        size_pct = 100.0 * os.path.getsize(bf16_path) / os.path.getsize(float_path)
        load_before = load()
        result = benchmark(float_path, bf16_path, batches=(1, 8), threads=2, runs=args.runs)
        speed = {r["batch"]: (r["A"]["median_ms"], r["B"]["median_ms"], r["ratio"])
                 for r in result["results"]}
        rows.append((name, size_pct, agree, noise, speed, load_before, load()))
        print(_row(rows[-1]), flush=True)
    return rows


def _row(row):
    name, size_pct, agree, noise, speed, l0, l1 = row
    cells = ["%.1f / %.1f ms = %.2fx" % speed[b] for b in (1, 8)]
    return "| %s | %.1f%% | %.3f | %.3f | %s | %s | %.1f-%.1f |" % (
        name, size_pct, agree, noise, cells[0], cells[1], l0, l1)


def mobilenet_v1(photos, out_dir):
    """(float top-1, bf16 top-1, agreement) on the 1000 labelled photos."""
    rel, inp, out = MOBILENET_V1
    float_path = os.path.join(shared_dir(), rel)
    bf16_path = os.path.join(out_dir, "mobilenet_v1_bf16.pb")
    qg.quantize_file(float_path, bf16_path, [out], mode="bfloat16")
    rows = read_labels_csv(os.path.join(photos, "labels.csv"))
    pre = Preprocessing(224, 224, 127.5, 127.5, 0.875)
    images = np.stack([read_image(os.path.join(photos, f), *pre) for f, _ in rows])
    labels = [label + 1 for _, label in rows]  # 1001 classes, 0 = background
    a = predict(qg.load_graph_def(float_path), inp, out, images, 1)
    b = predict(qg.load_graph_def(bf16_path), inp, out, images, 1)
    return (top_k_accuracy(a, labels), top_k_accuracy(b, labels),
            float(np.mean(a.argmax(1) == b.argmax(1))),
            100.0 * os.path.getsize(bf16_path) / os.path.getsize(float_path))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", default=os.path.join(shared_dir(), "images", "imagenet_samples"))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out_dir", default=os.path.join(REPO, ".cache", "bfloat16"))
    parser.add_argument("--skip_mobilenet_v1", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    flags = sorted(cpu_flags() & set(NATIVE_FLAGS + ("amx_tile", "avx512_vnni", "avx512f")))
    print("CPU: %s; flags: %s" % (cpu_model(), " ".join(flags) or "no bf16 units"))
    print("| model | bf16 file | top-1 agreement | float under +-1 gray noise | batch 1 float / bf16 "
          "| batch 8 float / bf16 | load (1 min) |")
    print("|---|---|---|---|---|---|---|")
    model_rows(args, args.out_dir)
    if not args.skip_mobilenet_v1:
        print("MobileNet v1 0.25, 1000 photos: float top-1 %.3f, bf16 top-1 %.3f, agreement %.3f, "
              "file %.1f%%" % mobilenet_v1(args.photos, args.out_dir))


if __name__ == "__main__":
    main()
