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
