"""End-to-end demo: train a tiny digits CNN, freeze it, quantize it to eight bits, compare.

The CNN carries batch norms, so the original command quantizes it with no calibration data:
the ranges come from the batch norms' statistics and the fast onednn target is chosen.

Run it with the project's virtualenv Python (`make demo` does). Everything it makes is cached in
.cache/demo, so a second run only quantizes again when the float graph changed.
"""
import os
import subprocess
import sys
import time

# Set before TensorFlow loads (here and in the tools started below) to keep its logging quiet.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# TF's Python warnings (deprecated v1 helpers used on purpose here) would bury the demo's output.
tf.get_logger().setLevel("ERROR")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE_DIR = os.path.join(REPO_ROOT, ".cache", "demo")

# Named for the model's form, so a cache from an older demo model is not reused.
FLOAT_GRAPH = "digits_bn_float.pb"
EIGHTBIT_GRAPH = "digits_bn_eightbit.pb"
SAMPLE_IMAGE = "sample_digit.png"
LABELS = "labels.txt"

INPUT_NAME = "input"
OUTPUT_NAME = "softmax"
IMAGE_SIZE = 8
# label_image decodes every image to 3 channels and computes (pixel - mean) / std; with these
# values it feeds the model exactly the 0..1 scale it was trained on.
INPUT_MEAN = 0.0
INPUT_STD = 255.0
SEED = 0
EPOCHS = 30


def load_digits_split():
    """Held-out split of scikit-learn's digits as (x_train, y_train, x_test, y_test).

    Images become 8-bit pixels first, so a PNG written from a test image holds exactly the
    values the model sees; the gray channel is replicated to the 3 that label_image decodes.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    x = np.repeat(pixels[..., np.newaxis], 3, axis=-1).astype(np.float32) / INPUT_STD
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.2, stratify=digits.target, random_state=SEED)
    return x_train, y_train, x_test, y_test


def build_model():
    """Logits model: an inception-style block of two conv branches, then conv, pools, dense;
    every conv is followed by a batch norm, as in most CNNs."""
    import keras
    from keras import layers

    def conv_bn_relu(x, filters, size):
        x = layers.Conv2D(filters, size, padding="same", use_bias=False)(x)
        return layers.ReLU()(layers.BatchNormalization()(x))

    image = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    wide = conv_bn_relu(image, 16, 3)
    narrow = conv_bn_relu(image, 16, 1)
    x = layers.Concatenate()([wide, narrow])
    x = layers.MaxPooling2D(2)(x)
    x = conv_bn_relu(x, 32, 3)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Flatten()(x)
    logits = layers.Dense(10)(x)
    return keras.Model(image, logits)


def train(x_train, y_train):
    import keras

    keras.utils.set_random_seed(SEED)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, batch_size=32, epochs=EPOCHS, verbose=0)
    return model


def freeze(model):
    """The model plus a Softmax as a constant GraphDef with input `input` and output `softmax`."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    @tf.function(autograph=False)
    def serve(x):
        return tf.nn.softmax(model(x, training=False), name=OUTPUT_NAME)

    spec = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32, name=INPUT_NAME)
    graph_def = convert_variables_to_constants_v2(
        serve.get_concrete_function(spec)).graph.as_graph_def()
    # Drops the function's trailing Identity/NoOp so `softmax` is the graph's only output.
    return tf.compat.v1.graph_util.extract_sub_graph(graph_def, [OUTPUT_NAME])


def graph_accuracy(graph_def, x, y, batch_size=256):
    """Top-1 accuracy of a GraphDef on (x, y), run through the project's GraphRunner."""
    from quantize_graph.runner import GraphRunner

    correct = 0
    with GraphRunner(graph_def) as runner:
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size]
            probs, = runner.run([OUTPUT_NAME + ":0"], {INPUT_NAME + ":0": batch})
            correct += int(np.sum(np.argmax(probs, axis=1) == y[start:start + batch_size]))
    return correct / len(x)


def write_sample(image, path):
    """One test image as a grayscale PNG of its 0..255 pixels."""
    pixels = np.round(image[..., :1] * INPUT_STD).astype(np.uint8)
    tf.io.write_file(path, tf.io.encode_png(pixels))


def train_and_freeze(out_dir):
    """Trains, freezes and writes the float graph, sample PNG and labels into `out_dir`.

    Returns a dict of the paths plus Keras's and the frozen graph's held-out accuracy, which
    must agree: the frozen graph is what every later step uses.
    """
    os.makedirs(out_dir, exist_ok=True)
    x_train, y_train, x_test, y_test = load_digits_split()
    model = train(x_train, y_train)
    keras_accuracy = float(np.mean(np.argmax(model.predict(x_test, verbose=0), 1) == y_test))
    graph_def = freeze(model)
    paths = demo_paths(out_dir)
    tf.io.write_file(paths["float"], graph_def.SerializeToString())
    write_sample(x_test[0], paths["sample"])
    with open(paths["labels"], "w") as f:
        f.write("".join("%d\n" % digit for digit in range(10)))
    return dict(paths, keras_accuracy=keras_accuracy,
                graph_accuracy=graph_accuracy(graph_def, x_test, y_test), graph_def=graph_def)


def demo_paths(out_dir):
    return {"float": os.path.join(out_dir, FLOAT_GRAPH),
            "eightbit": os.path.join(out_dir, EIGHTBIT_GRAPH),
            "sample": os.path.join(out_dir, SAMPLE_IMAGE),
            "labels": os.path.join(out_dir, LABELS)}


def start_tool(name, args):
    """Starts a console script from this Python's virtualenv, capturing its output."""
    script = os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.exists(script):
        sys.exit("demo: '%s' is not installed beside %s (run `make demo`)" % (name, sys.executable))
    return subprocess.Popen([script] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO_ROOT)


def finish_tool(name, process):
    """Waits for a started tool; returns its stdout, or shows its output and exits on failure."""
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        sys.stderr.write(stdout + stderr)
        sys.exit("demo: %s failed (exit %d)" % (name, process.returncode))
    return stdout


def section(title):
    print("\n== %s ==" % title)


def ensure_float_graph(paths):
    if all(os.path.exists(p) for p in (paths["float"], paths["sample"], paths["labels"])):
        print("reusing %s (make clean to retrain)" % rel(paths["float"]))
        return
    start = time.time()
    trained = train_and_freeze(CACHE_DIR)
    print("trained %d epochs in %.1f s" % (EPOCHS, time.time() - start))
    print("held-out accuracy: Keras %.4f, frozen graph %.4f"
          % (trained["keras_accuracy"], trained["graph_accuracy"]))
    print("wrote %s, %s, %s" % tuple(rel(paths[k]) for k in ("float", "sample", "labels")))


def ensure_eightbit_graph(paths):
    """Quantizes only when there is no eight-bit graph or the float graph is newer."""
    if (os.path.exists(paths["eightbit"])
            and os.path.getmtime(paths["eightbit"]) >= os.path.getmtime(paths["float"])):
        print("reusing %s" % rel(paths["eightbit"]))
        return
    start = time.time()
    # The original command, no calibration data; --input_mean/--input_std (as label_image
    # takes them) tell it the input's range, so the convs reading the image are 8-bit too.
    args = ["--input=" + rel(paths["float"]), "--output=" + rel(paths["eightbit"]),
            "--mode=eightbit", "--output_node_names=" + OUTPUT_NAME,
            "--input_mean=%g" % INPUT_MEAN, "--input_std=%g" % INPUT_STD]
    print("quantize_graph " + " ".join(args))
    out = finish_tool("quantize_graph", start_tool("quantize_graph", args))
    for line in out.splitlines():
        if not line.startswith("wrote "):
            print("  " + line)
    print("quantize_graph --mode=eightbit: %.1f s" % (time.time() - start))


def start_label_image(paths, graph_key):
    return start_tool("label_image", [
        "--graph=" + paths[graph_key], "--image=" + paths["sample"], "--labels=" + paths["labels"],
        "--input_layer=" + INPUT_NAME, "--output_layer=" + OUTPUT_NAME,
        "--input_height=%d" % IMAGE_SIZE, "--input_width=%d" % IMAGE_SIZE,
        "--input_mean=%g" % INPUT_MEAN, "--input_std=%g" % INPUT_STD, "--top_k=3"])


def compare_accuracy(paths, x_test, y_test):
    from quantize_graph.graph.io import load_graph_def

    for key in ("float", "eightbit"):
        accuracy = graph_accuracy(load_graph_def(paths[key]), x_test, y_test)
        print("%-9s %.4f  (%d test images)" % (key, accuracy, len(y_test)))


def rel(path):
    return os.path.relpath(path, REPO_ROOT)


def main():
    paths = demo_paths(CACHE_DIR)
    section("1. Float model (Keras on scikit-learn digits, frozen)")
    ensure_float_graph(paths)
    section("2. Quantize")
    ensure_eightbit_graph(paths)
    section("3. File sizes")
    for key in ("float", "eightbit"):
        print("%-9s %7d bytes  %s" % (key, os.path.getsize(paths[key]), rel(paths[key])))
    _, _, x_test, y_test = load_digits_split()
    section("4. label_image --top_k=3 on %s (true digit: %d)" % (rel(paths["sample"]), y_test[0]))
    # Both runs start at once: each spends most of its time importing TensorFlow.
    runs = {key: start_label_image(paths, key) for key in ("float", "eightbit")}
    for key, process in runs.items():
        print("%s graph:" % key)
        print("  " + finish_tool("label_image", process).rstrip().replace("\n", "\n  "))
    section("5. Held-out accuracy")
    compare_accuracy(paths, x_test, y_test)


if __name__ == "__main__":
    main()
