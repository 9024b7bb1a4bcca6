"""--target=onednn against --target=kernels only, interleaved (one run of each in turn), 2 threads,
on the graphs tools/bench_targets.py writes (converted here first where missing):

    python tools/bench_ab.py --model inception_v3 --runs 10 --batches 8,1 [--out_dir DIR]

Quicker than bench_targets (no TF float, no TFLite), for comparing two builds of the Qg op
library on a loaded machine: run it once per build (QG_REPO below) and compare the onednn / kernels
ratios, which the neighbours' load affects far less than the milliseconds. With QG_REPO set, the
quantize_graph package (and its _qg_ops.so) comes from that checkout instead of this one.
"""
import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.environ.get("QG_REPO") or REPO)
import quantize_graph  # noqa: E402  (sets TF_ENABLE_ONEDNN_OPTS before TF loads)

sys.path.insert(1, REPO)  # tests.model_cache, after the chosen quantize_graph
sys.path.insert(0, os.path.join(REPO, "tools"))
import numpy as np  # noqa: E402

import bench_targets as bt  # noqa: E402
from quantize_graph.preprocess import list_images, read_image  # noqa: E402
from quantize_graph.tools.benchmark_graph import Model  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", choices=bt.MODELS)
    parser.add_argument("--photos", default=None, help="labelled photos; the first 100 "
                        "calibrate (default: ../shared/images/imagenet_samples, or under "
                        "$QG_SHARED_DIR)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--batches", default="8,1")
    parser.add_argument("--out_dir", default=None,
                        help="where the converted graphs are (default: the model cache)")
    args = parser.parse_args()
    from tests.model_cache import cache_dir, photos_dir
    args.photos = args.photos or photos_dir()
    out_dir = args.out_dir or os.path.join(cache_dir(), "bench_targets")
    os.makedirs(out_dir, exist_ok=True)
    print("Qg GEMM path: %s (library %s)" % (bt.qg_path(), quantize_graph.__file__), flush=True)
    for name in args.model or ["inception_v3"]:
        spec = bt.model_spec(name)
        graphs = {t: bt.quantized_graph(spec, t, args.photos, out_dir, reuse=True)
                  for t in ("onednn", "kernels")}
        files = list_images(args.photos)[100:100 + 8]
        images = np.stack([read_image(f, *spec.preprocessing) for f in files]).astype(np.float32)
        runners = {t: Model(p, spec.input, spec.output, 2) for t, p in graphs.items()}
        try:
            for batch in (int(b) for b in args.batches.split(",")):
                fixed = runners["onednn"].fixed_batch
                if fixed not in (None, batch):
                    print("%s batch %d: not run (the graph's input has a fixed batch of %d)" % (
                        name, batch, fixed), flush=True)
                    continue
                times = bt.time_interleaved(runners, images[:batch], args.runs)
                med = {t: float(np.median(v)) for t, v in times.items()}
                print("%s batch %d: onednn %.1f ms, kernels %.1f ms, onednn / kernels %.2fx, "
                      "load %.1f" % (name, batch, med["onednn"], med["kernels"],
                                     med["onednn"] / med["kernels"], os.getloadavg()[0]),
                      flush=True)
        finally:
            for r in runners.values():
                r.close()


if __name__ == "__main__":
    main()
