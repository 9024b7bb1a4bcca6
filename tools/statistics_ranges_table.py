"""Writes docs/statistics_ranges.md: for the generated Inception-v3, each quantized tensor's range
from batch-norm statistics (no data) next to the ranges minmax and percentile calibration on
100 photos give, with the median and worst ratio of their widths.

    .venv/bin/python tools/statistics_ranges_table.py [--output docs/statistics_ranges.md]
"""
import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import quantize_graph  # noqa: E402,F401  (sets TF_ENABLE_ONEDNN_OPTS before TF loads)
import numpy as np  # noqa: E402

from quantize_graph.annotate import annotate  # noqa: E402
from quantize_graph.calibrate import calibrate  # noqa: E402
from quantize_graph.calibration_data import Preprocessing, batches, load_calibration_inputs  # noqa: E402
from quantize_graph.graph.io import load_graph_def  # noqa: E402
from quantize_graph.passes.prepare import prepare_recording_moments  # noqa: E402
from quantize_graph.statistics.ranges import DEFAULT_K, image_input_range, statistics_ranges  # noqa: E402
from quantize_graph.targets import range_tensors  # noqa: E402
from tests.model_cache import inception_v3_paths, photos_dir  # noqa: E402

PREPROCESSING = Preprocessing(299, 299, 127.5, 127.5, 0.875)


def width(r):
    return r[1] - r[0]


def ratio_summary(ours, theirs, tensors):
    ratios = np.array([width(ours[t]) / width(theirs[t]) for t in tensors if width(theirs[t]) > 0])
    worst = ratios[np.argmax(np.abs(np.log(ratios)))]
    return np.median(ratios), ratios.min(), ratios.max(), worst


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=os.path.join(REPO, "docs", "statistics_ranges.md"))
    args = parser.parse_args()
    path = inception_v3_paths()[0]
    graph, moments = prepare_recording_moments(load_graph_def(path), ["input"], ["softmax"])
    tensors = range_tensors(graph, annotate(graph, "onednn").quantized)
    stats = statistics_ranges(graph, moments, tensors, ["input"], image_input_range(127.5, 127.5))[0]
    data = load_calibration_inputs(photos_dir(), ["input"], 100, PREPROCESSING)
    minmax = calibrate(graph, tensors, batches(data, 8), "minmax")
    percentile = calibrate(graph, tensors, batches(data, 8), "percentile", 99.99)
    both = [t for t in tensors if t in stats]
    lines = ["# Ranges from batch-norm statistics vs calibration (generated Inception-v3)", "",
             "Written by `tools/statistics_ranges_table.py`. Statistics: no data, the graph's %d "
             "batch norms propagated (quantize_graph/statistics/, k = %g deep in the net plus the "
             "early-layer term of `k_at_depth`), input range [-1, 1]. Calibration: photos 0-99 of "
             "imagenet_samples, preprocessed as `make bench` does. %d of the %d tensors the onednn "
             "lowering needs get a statistics range." % (len(moments), DEFAULT_K, len(both), len(tensors)),
             "", "| compared with | median width ratio | smallest | largest | worst (farthest from 1) |",
             "|---|---|---|---|---|"]
    for name, theirs in (("minmax", minmax), ("percentile 99.99", percentile)):
        lines.append("| %s | %.2f | %.2f | %.2f | %.2f |" % ((name,) + ratio_summary(stats, theirs, both)))
    lines += ["", "| tensor | statistics | minmax | percentile | statistics / minmax |", "|---|---|---|---|---|"]
    for t in both:
        lines.append("| `%s` | %.2f .. %.2f | %.2f .. %.2f | %.2f .. %.2f | %.2f |" % (
            t, stats[t][0], stats[t][1], minmax[t][0], minmax[t][1], percentile[t][0], percentile[t][1],
            width(stats[t]) / width(minmax[t]) if width(minmax[t]) > 0 else float("nan")))
    with open(args.output + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(args.output + ".tmp", args.output)
    print("wrote %s (%d tensors)" % (args.output, len(both)))


if __name__ == "__main__":
    main()
