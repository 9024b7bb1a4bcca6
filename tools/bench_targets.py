"""One model, every way we can run it, timed side by side in one process: TF float,
--target=onednn, --target=kernels (our Qg op library), and TFLite from the same TensorFlow wheel
as the outside reference (TFLite float, and full-integer int8 calibrated on the same 100 photos
with the softmax kept float). Used by `make bench` (tools/bench.py) and on its own:

    python tools/bench_targets.py --model mobilenet_v2 --runs 20 [--reuse]

Runs are interleaved (one run of each graph in turn, then again), 2 threads each; the table
gives medians and states the CPU model and its SIMD flags.
"""
import argparse
import collections
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import quantize_graph as qg  # noqa: E402  (sets TF_ENABLE_ONEDNN_OPTS before TF loads)
from quantize_graph.calibration_data import Preprocessing, load_calibration_inputs  # noqa: E402
from quantize_graph.preprocess import list_images, read_image  # noqa: E402
from quantize_graph.tools.benchmark_graph import Model, cpu_model  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

Spec = collections.namedtuple("Spec", ["title", "float_path", "input", "output", "preprocessing"])
SIZE_224 = Preprocessing(224, 224, 127.5, 127.5, 0.875)


def model_spec(name):
    """The float graph (generated ones come from tests/model_cache.py) and how to feed it."""
    from tests.model_cache import inception_v3_paths, mobilenet_v2_path, resnet50_path, shared_dir
    if name == "inception_v3":
        return Spec("Inception-v3 (generated)", inception_v3_paths()[0], "input", "softmax",
                    Preprocessing(299, 299, 127.5, 127.5, 0.875))
    if name == "resnet50":
        return Spec("ResNet-50 (generated)", resnet50_path(224), "input", "softmax", SIZE_224)
    if name == "mobilenet_v2":
        return Spec("MobileNet-v2 (generated)", mobilenet_v2_path(224), "input", "softmax",
                    SIZE_224)
    if name == "mobilenet_v1_025":
        path = os.path.join(shared_dir(), "models", "mobilenet_v1_0.25_224", "frozen_graph.pb")
        return Spec("MobileNet v1 0.25 (real, ImageNet-trained)", path, "input",
                    "MobilenetV1/Predictions/Reshape_1", SIZE_224)
    raise SystemExit("unknown model %r" % name)


MODELS = ("inception_v3", "resnet50", "mobilenet_v2", "mobilenet_v1_025")


def cpu_flags():
    """The SIMD flags that decide which kernels run (from /proc/cpuinfo)."""
    want = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
            "amx_int8")
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), [])
    except OSError:
        flags = []
    return [flag for flag in want if flag in flags]


def quantized_graph(spec, target, photos, out_dir, reuse):
    """--target=onednn / kernels graph of the spec, calibrated on the first 100 photos."""
    stem = os.path.splitext(os.path.basename(spec.float_path))[0]
    if stem == "frozen_graph":
        stem = os.path.basename(os.path.dirname(spec.float_path))
    path = os.path.join(out_dir, "%s_%s.pb" % (stem, target))
    if reuse and os.path.exists(path):
        return path
    calibration = load_calibration_inputs(photos, [spec.input], 100, spec.preprocessing)
    qg.quantize_file(spec.float_path, path, [spec.output], mode="eightbit", target=target,
                     calibration_inputs=calibration)
    return path


def tflite_models(spec, photos, out_dir, reuse):
    """(float, int8) TFLite flatbuffers of the frozen float graph. int8: full-integer (int8
    weights and activations, per-channel weights), calibrated on the same 100 photos; the
    float input and output stay float, and so does the softmax (a denylisted op, via the
    quantization debugger), as in our graphs."""
    stem = os.path.splitext(os.path.basename(spec.float_path))[0]
    if stem == "frozen_graph":
        stem = os.path.basename(os.path.dirname(spec.float_path))
    paths = [os.path.join(out_dir, "%s_tflite_%s.tflite" % (stem, kind)) for kind in
             ("float", "int8")]
    if reuse and all(os.path.exists(p) for p in paths + [paths[1] + ".how"]):
        with open(paths[1] + ".how") as f:
            return [open(p, "rb").read() for p in paths], f.read()

    def converter():
        h, w = spec.preprocessing.height, spec.preprocessing.width
        return tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
            spec.float_path, [spec.input], [spec.output], {spec.input: [1, h, w, 3]})

    calibration = load_calibration_inputs(photos, [spec.input], 100, spec.preprocessing)
    images = calibration[spec.input]

    def representative():
        for image in images:
            yield [image[None].astype(np.float32)]

    float_model = converter().convert()
    conv = converter()
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    how = "softmax float"
    try:
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=conv, debug_dataset=representative,
            debug_options=tf.lite.experimental.QuantizationDebugOptions(
                denylisted_ops=["SOFTMAX"]))
        int8_model = debugger.get_nondebug_quantized_model()
    except Exception as e:  # noqa: BLE001  (older or v1 converters: plain full-integer)
        print("TFLite: softmax denylist unavailable (%s); softmax int8 too" %
              str(e).splitlines()[0][:120], flush=True)
        conv = converter()
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        int8_model = conv.convert()
        how = "softmax int8"
    for path, content in zip(paths, (float_model, int8_model)):
        with open(path, "wb") as f:
            f.write(content)
    with open(paths[1] + ".how", "w") as f:  # for --reuse
        f.write(how)
    return [float_model, int8_model], how


class TFLiteModel:
    """A TFLite interpreter (2 threads, its default delegate: XNNPACK) resized to a batch."""

    def __init__(self, content, threads):
        self.content, self.threads, self.batch = content, threads, None

    def __call__(self, x):
        if self.batch != x.shape[0]:
            self.interpreter = tf.lite.Interpreter(model_content=self.content,
                                                   num_threads=self.threads)
            index = self.interpreter.get_input_details()[0]["index"]
            self.interpreter.resize_tensor_input(index, list(x.shape))
            self.interpreter.allocate_tensors()
            self.batch = x.shape[0]
        inp = self.interpreter.get_input_details()[0]
        self.interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.interpreter.get_output_details()[0]["index"])

    def close(self):
        pass


def agreement(runners, images, batch):
    """{name: top-1 agreement with TF float} over `images`, fed `batch` at a time."""
    top1 = {name: [] for name in runners}
    for i in range(0, len(images) - batch + 1, batch):
        for name, run in runners.items():
            top1[name].append(np.asarray(run(images[i:i + batch])).reshape(batch, -1).argmax(1))
    ref = np.concatenate(top1["TF float"])
    return {name: float(np.mean(np.concatenate(v) == ref)) for name, v in top1.items()}


def time_interleaved(runners, inputs, runs, warmup=3):
    """{name: [ms]}: one run of each runner in turn, `runs` times, after warm-up runs."""
    for _ in range(warmup):
        for run in runners.values():
            run(inputs)
    times = {name: [] for name in runners}
    for _ in range(runs):
        for name, run in runners.items():
            start = time.perf_counter()
            run(inputs)
            times[name].append((time.perf_counter() - start) * 1000.0)
    return times


COLUMNS = ("TF float", "onednn", "kernels", "TFLite float", "TFLite int8")


def multiply_adds(spec):
    """Multiply-adds of one image through the float graph's Conv2D, DepthwiseConv2dNative and
    MatMul nodes (shapes inferred with the input fixed at one image): what every column of the
    table computes, so ms turn into a rate to hold against the CPU's ceilings (`make
    gemm-check` prints them)."""
    from quantize_graph.tools.benchmark_graph import load_graph_def
    h, w = spec.preprocessing.height, spec.preprocessing.width
    with tf.Graph().as_default() as graph:
        image = tf.compat.v1.placeholder(tf.float32, [1, h, w, 3])
        tf.import_graph_def(load_graph_def(spec.float_path), {spec.input + ":0": image}, name="")
        total = 0
        for op in graph.get_operations():
            if op.type not in ("Conv2D", "DepthwiseConv2dNative", "MatMul"):
                continue
            out, weights = op.outputs[0].shape.as_list(), op.inputs[1].shape.as_list()
            if op.type == "MatMul":  # K: the weights' first dimension, or second when transposed
                per_output = weights[1] if op.get_attr("transpose_b") else weights[0]
            elif op.type == "Conv2D":
                per_output = weights[0] * weights[1] * weights[2]
            else:  # each output channel reads one input channel's window
                per_output = weights[0] * weights[1]
            total += int(np.prod(out)) * per_output
    return total


def rate_line(macs, medians, batch, threads):
    """'batch N: TF float 92, ...': billions of multiply-adds a second, a thread."""
    return "batch %d: %s" % (batch, ", ".join(
        "%s %.0f" % (c, macs * batch / (medians[c] / 1000.0) / threads / 1e9) for c in COLUMNS))


def bench_model(name, photos, out_dir, runs, batches=(1, 8), threads=2, reuse=False,
                agreement_photos=200):
    """Markdown section for one model: medians per batch of the five ways of running it, and
    each one's top-1 agreement with TF float on the photos after the 100 calibration ones."""
    spec = model_spec(name)
    os.makedirs(out_dir, exist_ok=True)
    graphs = {"TF float": spec.float_path,
              "onednn": quantized_graph(spec, "onednn", photos, out_dir, reuse),
              "kernels": quantized_graph(spec, "kernels", photos, out_dir, reuse)}
    (tfl_float, tfl_int8), how = tflite_models(spec, photos, out_dir, reuse)
    files = list_images(photos)[100:100 + max(max(batches), agreement_photos)]
    images = np.stack([read_image(f, *spec.preprocessing) for f in files]).astype(np.float32)
    runners = {k: Model(p, spec.input, spec.output, threads) for k, p in graphs.items()}
    runners["TFLite float"] = TFLiteModel(tfl_float, threads)
    runners["TFLite int8"] = TFLiteModel(tfl_int8, threads)
    lines = ["### %s" % spec.title, "",
             "| batch | " + " | ".join(COLUMNS) + " | float / kernels | onednn / kernels | "
             "kernels / TFLite int8 | load |", "|---" * (len(COLUMNS) + 5) + "|"]
    fixed = runners["TF float"].fixed_batch
    macs = multiply_adds(spec)
    rates = []
    try:
        for batch in batches:
            if fixed is not None and batch != fixed:
                lines.append("| %d | (the graph's input has a fixed batch of %d) |" % (batch, fixed))
                continue
            x = images[:batch]
            times = time_interleaved(runners, x, runs)
            med = {k: float(np.median(v)) for k, v in times.items()}
            load = os.getloadavg()[0]
            rates.append(rate_line(macs, med, batch, threads))
            lines.append("| %d | %s | %.2fx | %.2fx | %.2fx | %.1f |" % (
                batch, " | ".join("%.1f" % med[c] for c in COLUMNS),
                med["TF float"] / med["kernels"], med["onednn"] / med["kernels"],
                med["kernels"] / med["TFLite int8"], load))
            print(lines[-1], flush=True)
        agree = agreement(runners, images[:agreement_photos], fixed or 1)
    finally:
        for r in runners.values():
            r.close()
    lines += ["", "Top-1 agreement with TF float on %d photos (not the calibration ones): %s." % (
        agreement_photos, ", ".join("%s %.1f%%" % (k, 100 * v) for k, v in agree.items()
                                    if k != "TF float"))]
    lines += ["", "Multiply-adds: %.3g G an image; at these medians, G a second a thread: %s." % (
        macs / 1e9, "; ".join(rates))]
    lines += ["", "Median ms of %d interleaved runs per graph (after 3 warm-up runs), %d threads "
              "each; TFLite int8: full-integer, %s, XNNPACK." % (runs, threads, how), "", ""]
    return "\n".join(lines)


def header():
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")  # e.g. AVX512_CORE_VNNI: oneDNN without AMX
    return ("CPU: %s; flags: %s; TensorFlow %s; TF_ENABLE_ONEDNN_OPTS=%s%s; Qg GEMM path: %s." % (
        cpu_model(), ", ".join(cpu_flags()) or "none of avx2/avx512", tf.__version__,
        os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "; ONEDNN_MAX_CPU_ISA=" + isa if isa else "",
        qg_path()))


def qg_path():
    from quantize_graph import kernels
    try:
        return kernels.load().qg_cpu_path().numpy().decode()
    except Exception as e:  # noqa: BLE001
        return "unavailable (%s)" % str(e).splitlines()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", choices=MODELS,
                        help="repeatable; default: all four")
    parser.add_argument("--photos", default=None, help="labelled photos; the first 100 "
                        "calibrate (default: ../shared/images/imagenet_samples, or under "
                        "$QG_SHARED_DIR)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--out_dir", default=None, help="where the converted graphs go "
                        "(default: the model cache)")
    parser.add_argument("--reuse", action="store_true", help="reuse converted graphs found there")
    args = parser.parse_args()
    from tests.model_cache import cache_dir, photos_dir
    args.photos = args.photos or photos_dir()
    out_dir = args.out_dir or os.path.join(cache_dir(), "bench_targets")
    print(header(), flush=True)
    batches = tuple(int(b) for b in args.batches.split(","))
    for name in args.model or MODELS:
        print(bench_model(name, args.photos, out_dir, args.runs, batches, reuse=args.reuse),
              flush=True)


if __name__ == "__main__":
    main()
