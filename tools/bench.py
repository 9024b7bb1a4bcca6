"""`make bench`: float vs eightbit (onednn, reference) on generated Inception-v3, then, per
model (generated Inception-v3, ResNet-50, MobileNet-v2 and the real MobileNet v1 0.25), TF float,
--target=onednn, --target=kernels, TFLite float and TFLite full-integer int8 side by side
(tools/bench_targets.py).

Batch 1 and 8, 2 threads, graphs interleaved in one process. The onednn, kernels and TFLite int8
graphs are calibrated on the first 100 photos; top-1 agreement with float is measured on the
200 photos after them. Writes docs/benchmarks.md (keeping the hand-written sections after its
KEPT_MARKER line); every table states the CPU model and flags.
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
from tests.model_cache import cache_dir, inception_v3_paths  # noqa: E402
sys.path.insert(0, os.path.join(REPO, "tools"))
from bench_targets import MODELS, bench_model, header  # noqa: E402

import numpy as np  # noqa: E402

PREPROCESSING = Preprocessing(299, 299, 127.5, 127.5, 0.875)

# In docs/benchmarks.md, the sections after this line were written by hand (reruns, other CPUs
# emulated, the passes of issue 13): a new run replaces what is above it and keeps them.
KEPT_MARKER = "<!-- make bench rewrites everything above this line and keeps what follows -->"


def with_kept_sections(new_text, old_text):
    """new_text, then the marker and whatever followed it in old_text (if it had the marker)."""
    if old_text is None or KEPT_MARKER not in old_text:
        return new_text
    kept = old_text.split(KEPT_MARKER, 1)[1]
    return new_text.rstrip("\n") + "\n\n" + KEPT_MARKER + kept


def write_report(path, text):
    """Writes text to path (keeping its hand-written sections) through a temporary file, so an
    interrupted run leaves the old file whole."""
    old = None
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(with_kept_sections(text, old))
    os.replace(tmp, path)


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
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated, for the side-by-side tables")
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
    text += targets_report(args)
    write_report(args.output, text)
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


def targets_report(args):
    """TF float, onednn, kernels, TFLite float and int8 per model, interleaved (markdown)."""
    lines = ["## Side by side: TF float, onednn, our kernels, TFLite", "", header(), "",
             "TFLite float and full-integer int8 come from the same TensorFlow wheel "
             "(tf.lite, XNNPACK), converted from the same frozen float graph; int8 is "
             "calibrated on the same 100 photos. Ratios: > 1 means kernels is faster.", ""]
    for name in args.models.split(","):
        lines.append(bench_model(name, args.photos, os.path.join(cache_dir(), "bench_targets"),
                                 args.runs))
        print("%s done" % name, flush=True)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
