"""Cached generated test graphs: Inception-v3 (tools/make_inception_v3.py), ResNet-50
(tools/make_resnet50.py) and MobileNet-v2 (tools/make_mobilenet_v2.py), made on first use.

The cache lives in $QG_CACHE_DIR (default <repo>/.cache, git-ignored); calibration photos come from
$QG_SHARED_DIR/images/imagenet_samples (default <repo>/../shared). A cached file is reused while it
is newer than the generator script and the shared tools/keras_generator.py.
"""
import fcntl
import importlib.util
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(REPO, "tools")
GENERATOR = os.path.join(TOOLS, "make_inception_v3.py")
SHARED_GENERATOR = os.path.join(TOOLS, "keras_generator.py")


def shared_dir():
    return os.environ.get("QG_SHARED_DIR", os.path.join(REPO, "..", "shared"))


def photos_dir():
    return os.path.join(shared_dir(), "images", "imagenet_samples")


def cache_dir():
    return os.environ.get("QG_CACHE_DIR", os.path.join(REPO, ".cache"))


def load_generator(name="make_inception_v3"):
    """tools/<name>.py as a module (tools/ is not a package)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(TOOLS, name + ".py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def _fresh(paths, generator=GENERATOR):
    generator_time = max(os.path.getmtime(generator), os.path.getmtime(SHARED_GENERATOR))
    return all(os.path.exists(p) and os.path.getmtime(p) > generator_time for p in paths)


def _cached(filename, generator_name, make):
    """The path of a cached graph in cache_dir(), made by `make(path)` when missing or stale."""
    directory = cache_dir()
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, filename)
    generator = os.path.join(TOOLS, generator_name + ".py")
    if not _fresh([path], generator):
        with open(os.path.join(directory, "." + filename + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not _fresh([path], generator):
                make(path)
    return path


def resnet50_path(image_size=224):
    """Generated ResNet-50 (input `input` [?, size, size, 3] in [-1, 1], output `softmax`)."""
    return _cached("resnet50_%d.pb" % image_size, "make_resnet50", lambda path: load_generator(
        "make_resnet50").generate(path, photos_dir(), image_size=image_size))


def mobilenet_v2_path(image_size=224):
    """Generated MobileNet-v2 (input `input` [?, size, size, 3] in [-1, 1], output `softmax`)."""
    return _cached("mobilenet_v2_%d.pb" % image_size, "make_mobilenet_v2", lambda path: load_generator(
        "make_mobilenet_v2").generate(path, photos_dir(), image_size=image_size))


def inception_v3_paths():
    """(modern_path, legacy_path) of the cached graphs, generating both if either is stale."""
    directory = cache_dir()
    os.makedirs(directory, exist_ok=True)
    paths = (os.path.join(directory, "inception_v3.pb"),
             os.path.join(directory, "inception_v3_legacy.pb"))
    if not _fresh(paths):
        # Parallel test processes wait for one generator instead of all generating.
        with open(os.path.join(directory, ".inception_v3.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not _fresh(paths):
                load_generator().generate_both(*paths, photos_dir())
    return paths


def inception_v3_saved_model():
    """The cached float Inception-v3 as a TF1-style SavedModel with variables (its weights are
    variables again, so reading it exercises freezing), signature serving_default:
    images [?,299,299,3] float32 in [-1, 1] -> probabilities [?,1001]. Returns its directory."""
    graph_path = inception_v3_paths()[0]
    directory = cache_dir()
    path = os.path.join(directory, "inception_v3_saved_model")
    stamp = os.path.join(path, "saved_model.pb")
    if not (os.path.exists(stamp) and os.path.getmtime(stamp) > os.path.getmtime(graph_path)):
        with open(os.path.join(directory, ".inception_v3.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (os.path.exists(stamp) and os.path.getmtime(stamp) > os.path.getmtime(graph_path)):
                _write_saved_model_with_variables(graph_path, path)
    return path


def _write_saved_model_with_variables(graph_path, path):
    """Turns every float weight Const of the frozen graph back into a variable and saves the
    graph as a SavedModel (built beside `path`, then renamed)."""
    import shutil
    import tempfile

    import tensorflow as tf
    from tensorflow.core.framework import graph_pb2
    from tensorflow.python.framework import tensor_util

    graph_def = graph_pb2.GraphDef()
    with open(graph_path, "rb") as f:
        graph_def.ParseFromString(f.read())
    weights = {n.name: tensor_util.MakeNdarray(n.attr["value"].tensor) for n in graph_def.node
               if n.op == "Const" and n.attr["dtype"].type == tf.float32.as_datatype_enum
               and len(n.attr["value"].tensor.tensor_content) >= 4 * 64}
    rest = graph_pb2.GraphDef()
    rest.versions.CopyFrom(graph_def.versions)
    rest.node.extend(n for n in graph_def.node if n.name not in weights)
    staging = tempfile.mkdtemp(prefix=".tmp-saved-model-", dir=os.path.dirname(path))
    try:
        graph = tf.Graph()
        with graph.as_default():
            variables = {name: tf.compat.v1.get_variable(
                "weights/%d" % i, shape=value.shape, dtype=tf.float32, use_resource=True,
                initializer=tf.compat.v1.zeros_initializer())
                for i, (name, value) in enumerate(sorted(weights.items()))}
            tf.compat.v1.import_graph_def(rest, name="", input_map={
                name + ":0": tf.identity(v) for name, v in variables.items()})
            images = graph.get_tensor_by_name("input:0")
            probabilities = graph.get_tensor_by_name("softmax:0")
            with tf.compat.v1.Session(graph=graph) as session:
                session.run(tf.compat.v1.global_variables_initializer())
                for name, v in variables.items():
                    v.load(weights[name], session)
                builder = tf.compat.v1.saved_model.Builder(os.path.join(staging, "model"))
                signature = tf.compat.v1.saved_model.predict_signature_def(
                    {"images": images}, {"probabilities": probabilities})
                builder.add_meta_graph_and_variables(
                    session, ["serve"], signature_def_map={"serving_default": signature})
                builder.save()
        if os.path.exists(path):
            shutil.rmtree(path)
        os.rename(os.path.join(staging, "model"), path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
