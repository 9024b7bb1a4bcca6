"""`make bench`: float vs eightbit (onednn, kernels, reference) on generated Inception-v3,
and float vs eightbit (onednn, kernels) on generated ResNet-50 and MobileNet-v2 (224x224).

Batch 1 and 8, 2 threads, graphs interleaved in one process (benchmark_graph). The onednn and
kernels graphs are calibrated on the first 100 photos; top-1 agreement with float is measured on the
200 photos after them. Writes docs/benchmarks.md.
"""
import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import quantize_graph as qg  # noqa: E402  (sets TF_ENABLE_ONEDNN_OPTS before TF loads)
from quantize_graph.calibration_data import Preprocessing, load_calibration_inputs  # noqa: E402
from quantize_graph.evaluate import predict  # noqa: E402
from quantize_graph.preprocess import list_images, read_image  # noqa: E402
from quantize_graph.tools.benchmark_graph import benchmark, machine_info  # noqa: E402
from tests.model_cache import inception_v3_paths, mobilenet_v2_path, resnet50_path  # noqa: E402

import numpy as np  # noqa: E402

PREPROCESSING = Preprocessing(299, 299, 127.5, 127.5, 0.875)


RESIDUAL_MODELS = {"ResNet-50": resnet50_path, "MobileNet-v2": mobilenet_v2_path}
RESIDUAL_PREPROCESSING = Preprocessing(224, 224, 127.5, 127.5, 0.875)


def quantize(float_path, out_path, target, photos, preprocessing=PREPROCESSING):
    start = time.time()
    calibration = None
    if target in ("onednn", "kernels"):
        calibration = load_calibration_inputs(photos, ["input"], 100, preprocessing)
    qg.quantize_file(float_path, out_path, ["softmax"], mode="eightbit", target=target,
                     calibration_inputs=calibration)
    return time.time() - start


def agreement(float_path, quantized_path, photos, preprocessing=PREPROCESSING):
    files = list_images(photos)[100:300]
    images = np.stack([read_image(f, *preprocessing) for f in files])
    a = predict(qg.load_graph_def(float_path), "input", "softmax", images, batch=8)
    b = predict(qg.load_graph_def(quantized_path), "input", "softmax", images, batch=8)
    return float(np.mean(a.argmax(1) == b.argmax(1))), len(files)


def row(result, batch):
    return next(x for x in result["results"] if x["batch"] == batch)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", default=os.path.join(REPO, "..", "shared", "images", "imagenet_samples"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--reference_runs", type=int, default=4)
    parser.add_argument("--output", default=os.path.join(REPO, "docs", "benchmarks.md"))
    args = parser.parse_args()
    float_path, _ = inception_v3_paths()
    cache = os.path.dirname(float_path)
    graphs = {t: os.path.join(cache, "inception_v3_%s.pb" % t) for t in ("onednn", "reference")}
    seconds = {t: quantize(float_path, p, t, args.photos) for t, p in graphs.items()}
    agree, count = agreement(float_path, graphs["onednn"], args.photos)
    print("quantized in %s; onednn top-1 agreement %.1f%% on %d photos" % (
        ", ".join("%s %.0f s" % kv for kv in seconds.items()), 100 * agree, count), flush=True)
    fast = benchmark(float_path, graphs["onednn"], batches=(1, 8), threads=2, runs=args.runs)
    slow = benchmark(float_path, graphs["reference"], batches=(1, 8), threads=2, runs=args.reference_runs)
    text = report(fast, slow, graphs, float_path, agree, count, seconds, args)
    text += kernels_report(float_path, slow, args)
    text += residual_report(args)
    with open(args.output, "w") as f:
        f.write(text)
    print(text)


def report(fast, slow, graphs, float_path, agree, count, seconds, args):
    info = machine_info(2)
    size = {k: os.path.getsize(p) for k, p in dict(graphs, float=float_path).items()}
    lines = ["# Benchmarks", "",
             "Written by `make bench` (tools/bench.py) on %s." % time.strftime("%Y-%m-%d"), "",
             "Machine: %s, %s cores, TensorFlow %s, 2 threads per session, TF_ENABLE_ONEDNN_OPTS=%s "
             "(fp32 runs through oneDNN too)." % (info["cpu"], info["cores"], info.get("tensorflow", "?"),
                                                  os.environ.get("TF_ENABLE_ONEDNN_OPTS")), "",
             "Model: generated Inception-v3 (tools/make_inception_v3.py), float %.1f MB; eightbit "
             "onednn %.1f MB (%.1f%%), reference %.1f MB (%.1f%%)." % (
                 size["float"] / 1e6, size["onednn"] / 1e6, 100 * size["onednn"] / size["float"],
                 size["reference"] / 1e6, 100 * size["reference"] / size["float"]), "",
             "onednn: calibrated on 100 photos (minmax), top-1 agreement with float %.1f%% on the "
             "next %d photos. Quantizing took %.0f s (onednn, with calibration) and %.0f s "
             "(reference)." % (100 * agree, count, seconds["onednn"], seconds["reference"]), "",
             "Interleaved runs in one process, median (min-max) ms:", "",
             "| batch | float | eightbit onednn | float / onednn | float (2nd run) | eightbit reference | float / reference |",
             "|---|---|---|---|---|---|---|"]
    for batch in (1, 8):
        a, b = row(fast, batch), row(slow, batch)
        lines.append("| %d | %.1f (%.1f-%.1f) | %.1f (%.1f-%.1f) | **%.2fx** | %.1f | %.1f (%.1f-%.1f) | %.2fx |" % (
            batch, a["A"]["median_ms"], a["A"]["min_ms"], a["A"]["max_ms"],
            a["B"]["median_ms"], a["B"]["min_ms"], a["B"]["max_ms"], a["ratio"],
            b["A"]["median_ms"], b["B"]["median_ms"], b["B"]["min_ms"], b["B"]["max_ms"], b["ratio"]))
    lines += ["", "Runs: %d per graph (onednn pair), %d (reference pair), after 3 warm-up runs." % (
        args.runs, args.reference_runs), "", ""]
    return "\n".join(lines)


def kernels_report(float_path, reference_result, args):
    """Float vs --target=kernels (our Qg op library) on Inception-v3 (a markdown section)."""
    quantized = os.path.join(os.path.dirname(float_path), "inception_v3_kernels.pb")
    seconds = quantize(float_path, quantized, "kernels", args.photos)
    agree, count = agreement(float_path, quantized, args.photos)
    result = benchmark(float_path, quantized, batches=(1, 8), threads=2, runs=args.runs)
    lines = ["## Our op library (--target=kernels)", "",
             "Generated Inception-v3, calibrated on 100 photos (quantized in %.0f s), file %.1f%% of "
             "float; top-1 agreement with float %.1f%% on the next %d photos. Median (min-max) ms; "
             "the reference column comes from the reference pair above (another interleaved run):"
             % (seconds, 100 * os.path.getsize(quantized) / os.path.getsize(float_path), 100 * agree, count), "",
             "| batch | float | eightbit kernels | float / kernels | reference / kernels |",
             "|---|---|---|---|---|"]
    for batch in (1, 8):
        r, ref = row(result, batch), row(reference_result, batch)
        lines.append("| %d | %.1f (%.1f-%.1f) | %.1f (%.1f-%.1f) | **%.2fx** | %.1fx |" % (
            batch, r["A"]["median_ms"], r["A"]["min_ms"], r["A"]["max_ms"], r["B"]["median_ms"],
            r["B"]["min_ms"], r["B"]["max_ms"], r["ratio"], ref["B"]["median_ms"] / r["B"]["median_ms"]))
    print("kernels done", flush=True)
    return "\n".join(lines + ["", ""])


def residual_report(args):
    """Float vs onednn and vs kernels on the generated ResNet-50 and MobileNet-v2 (markdown)."""
    lines = ["## Residual networks (onednn, kernels)", "",
             "Generated ResNet-50 and MobileNet-v2 (tools/make_resnet50.py, make_mobilenet_v2.py), "
             "224x224, calibrated on 100 photos; agreement on the next 200. Median (min-max) ms:", "",
             "| model | target | agreement | batch | float | eightbit | float / eightbit |",
             "|---|---|---|---|---|---|---|"]
    for name, path_of in RESIDUAL_MODELS.items():
        float_path = path_of(224)
        for target in ("onednn", "kernels"):
            quantized = float_path.replace(".pb", "_%s.pb" % target)
            quantize(float_path, quantized, target, args.photos, RESIDUAL_PREPROCESSING)
            agree, count = agreement(float_path, quantized, args.photos, RESIDUAL_PREPROCESSING)
            result = benchmark(float_path, quantized, batches=(1, 8), threads=2, runs=args.runs)
            for batch in (1, 8):
                r = row(result, batch)
                lines.append("| %s | %s | %.1f%% of %d | %d | %.1f (%.1f-%.1f) | %.1f (%.1f-%.1f) | **%.2fx** |" % (
                    name, target, 100 * agree, count, batch, r["A"]["median_ms"], r["A"]["min_ms"],
                    r["A"]["max_ms"], r["B"]["median_ms"], r["B"]["min_ms"], r["B"]["max_ms"],
                    r["ratio"]))
            print("%s %s done" % (name, target), flush=True)
    return "\n".join(lines + [""])


if __name__ == "__main__":
    main()
