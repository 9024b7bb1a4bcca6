"""Quantizes the test models every way and writes each result node for node (graph/snapshot.py),
or compares against such a file: the check that a refactoring left the tool's output unchanged.

  python tools/graph_snapshots.py --write=before.json [--models=...] [--targets=...]
  python tools/graph_snapshots.py --compare=before.json      # exit 1 if anything differs

tests/golden/mobilenet_v1.json.gz is the real MobileNet's, checked by tests/test_graph_identity.py;
after a deliberate change of the output, rewrite it with --models=mobilenet_v1 --write=<that path>.

Models: the generated Inception-v3 and its 2015 legacy twin, ResNet-50 and MobileNet-v2 (cached in
$QG_CACHE_DIR), and the real MobileNet v1 0.25 from ../shared; targets reference, onednn and
kernels; each with no data (batch-norm statistics) and with 20 calibration photos.
"""
import gzip
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from absl import app, flags

flags.DEFINE_string("write", "", "Write the snapshots to this JSON file.")
flags.DEFINE_string("compare", "", "Compare against this JSON file (from --write).")
flags.DEFINE_list("models", ["inception_v3", "inception_v3_legacy", "resnet50", "mobilenet_v2",
                             "mobilenet_v1"], "Models to quantize.")
flags.DEFINE_list("targets", ["reference", "onednn", "kernels"], "Targets.")
flags.DEFINE_list("data", ["none", "photos"], "none: no calibration data; photos: 20 photos.")
FLAGS = flags.FLAGS

CALIBRATION_PHOTOS = 20


def _models():
    import model_cache
    shared = model_cache.shared_dir()
    inception, legacy = (None, None)

    def inception_paths():
        nonlocal inception, legacy
        if inception is None:
            inception, legacy = model_cache.inception_v3_paths()
        return inception, legacy
    # name: (path getter, input, output, size, mean, std)
    return {
        "inception_v3": (lambda: inception_paths()[0], "input", "softmax", 299, 127.5, 127.5),
        "inception_v3_legacy": (lambda: inception_paths()[1], "Mul", "softmax", 299, 128.0, 128.0),
        "resnet50": (lambda: model_cache.resnet50_path(224), "input", "softmax", 224, 127.5, 127.5),
        "mobilenet_v2": (lambda: model_cache.mobilenet_v2_path(224), "input", "softmax", 224, 127.5, 127.5),
        "mobilenet_v1": (lambda: os.path.join(shared, "models", "mobilenet_v1_0.25_224", "frozen_graph.pb"),
                         "input", "MobilenetV1/Predictions/Reshape_1", 224, 127.5, 127.5),
    }


def snapshots(models, targets, data):
    import model_cache
    from quantize_graph.calibration_data import Preprocessing, load_calibration_inputs
    from quantize_graph.graph.io import load_graph_def
    from quantize_graph.graph.snapshot import describe
    from quantize_graph.pipeline import Options, run_pipeline

    table = _models()
    out = {}
    for model in models:
        path, inp, output, size, mean, std = table[model]
        graph = load_graph_def(path())
        pre = Preprocessing(size, size, mean, std, 0.875)
        photos = load_calibration_inputs(model_cache.photos_dir(), [inp], CALIBRATION_PHOTOS, pre)
        for target in targets:
            for how in data:
                options = dict(mode="eightbit", target=target)
                if how == "photos":
                    options["calibration_inputs"] = photos
                else:
                    options["input_range"] = ((0 - mean) / std, (255 - mean) / std)
                started = time.time()
                q, report = run_pipeline(graph, [output], Options(**options),
                                         input_names=[inp] if inp != "input" else None)
                key = "%s/%s/%s" % (model, target, how)
                out[key] = describe(q, report.ranges)
                print("%s: %d nodes, %.1f s" % (key, len(q.node), time.time() - started), flush=True)
    return out


def _open(path, mode):
    """A .gz path is read and written compressed (the snapshots kept in tests/golden/)."""
    return gzip.open(path, mode) if path.endswith(".gz") else open(path, mode)


def main(argv):
    del argv
    if bool(FLAGS.write) == bool(FLAGS.compare):
        sys.exit("give one of --write or --compare")
    if FLAGS.write:
        result = snapshots(FLAGS.models, FLAGS.targets, FLAGS.data)
        with _open(FLAGS.write, "wt") as f:
            json.dump(result, f, sort_keys=True)
        return
    from quantize_graph.graph.snapshot import differences
    with _open(FLAGS.compare, "rt") as f:
        before = json.load(f)
    keys = sorted(before)
    models = sorted({k.split("/")[0] for k in keys} & set(FLAGS.models))
    after = snapshots(models, FLAGS.targets, FLAGS.data)
    failed = 0
    for key in sorted(set(before) & set(after)):
        lines = differences(before[key], after[key])
        print("%s: %s" % (key, "identical" if not lines else "%d differences" % len(lines)))
        for line in lines[:20]:
            print("   ", line)
        failed += bool(lines)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    app.run(main)
