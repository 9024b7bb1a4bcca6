"""Image preprocessing shared by label_image and the calibration/evaluation tools.

Images are decoded and resized with TensorFlow ops run eagerly, so every tool sees exactly the
same pixels for the same file and flags.
"""
import os
import re

import numpy as np
import tensorflow as tf

from quantize_graph.errors import QuantizeGraphError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")

_INDEXED_LABEL_RE = re.compile(r"^\s*(\d+)\s*:(.*)$")


def read_file_bytes(path, what="image"):
    """The raw bytes of `path`; a one-line error naming the file if it can't be read."""
    if not path:
        raise QuantizeGraphError("no %s file given" % what)
    if os.path.isdir(path):
        raise QuantizeGraphError("%s '%s' is a directory, not a file" % (what, path))
    if not os.path.exists(path):
        raise QuantizeGraphError("%s file '%s' does not exist" % (what, path))
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise QuantizeGraphError("cannot read %s file '%s': %s" % (what, path, e.strerror))


def read_image(path, height, width, mean, std, crop_fraction=None):
    """Decodes `path` to float32 [height, width, 3]: crop, bilinear resize, (x - mean) / std."""
    check_preprocessing(height, width, std, crop_fraction)
    image = decode_image(read_file_bytes(path), path)
    if crop_fraction is not None:
        image = tf.image.central_crop(image, crop_fraction)
    image = tf.image.resize(image, [height, width], method="bilinear")
    return ((image.numpy() - mean) / std).astype(np.float32)


def check_preprocessing(height, width, std, crop_fraction):
    """Rejects settings that would fail deep inside TF or silently produce garbage."""
    if height <= 0 or width <= 0:
        raise QuantizeGraphError("image size must be positive, got %dx%d" % (height, width))
    if std == 0:
        raise QuantizeGraphError("input std must not be 0 (it divides the pixel values)")
    if crop_fraction is not None and not 0 < crop_fraction <= 1:
        raise QuantizeGraphError("crop fraction must be in (0, 1], got %g" % crop_fraction)


def decode_image(data, path):
    """JPEG/PNG/GIF (first frame)/BMP bytes to a float32 [H, W, 3] tensor of 0..255 values."""
    try:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError):
        raise QuantizeGraphError(
            "cannot decode image '%s' (expected JPEG, PNG, GIF or BMP)" % path)
    return tf.cast(image, tf.float32)


def list_images(folder):
    """Every image file under `folder`, recursively, as sorted paths (extension case ignored)."""
    if not os.path.isdir(folder):
        raise QuantizeGraphError("image folder '%s' does not exist or is not a folder" % folder)
    found = []
    for root, _, files in os.walk(folder):
        found.extend(os.path.join(root, f) for f in files if f.lower().endswith(IMAGE_EXTENSIONS))
    return sorted(found)


def read_labels(path):
    """Class names by index, from one label per line or from `N:name` lines.

    The `N:name` form (TF-slim's labels.txt) is used only when every non-blank line has it, so a
    plain label such as "12:00 clock" can't switch formats by accident. Indices it skips are
    named by their number.
    """
    lines = read_file_bytes(path, "labels").decode("utf-8", errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    matches = [_INDEXED_LABEL_RE.match(line) for line in lines if line.strip()]
    if matches and all(matches):
        return _indexed_labels(matches, path)
    return [line.strip() for line in lines]


def _indexed_labels(matches, path):
    by_index = {}
    for m in matches:
        index = int(m.group(1))
        if index in by_index:
            raise QuantizeGraphError("labels file '%s' gives index %d twice" % (path, index))
        by_index[index] = m.group(2).strip()
    return [by_index.get(i, str(i)) for i in range(max(by_index) + 1)]
