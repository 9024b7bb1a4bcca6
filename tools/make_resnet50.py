"""Generates a ResNet-50 frozen GraphDef (random weights, calibrated on real photos).

`keras.applications.ResNet50(weights=None)` from a fixed seed, made to behave like a trained
net by the recipe in keras_generator.py (kernels matched to their input covariance, batch-norm
beta 0.5 and statistics from the first 32 photos, rank-8 classifier), then written with stock
TF ops: Pad, Conv2D, FusedBatchNormV3 (inference form, one per conv: 53), Relu, MaxPool, the 16
residual AddV2 each followed by a Relu, Mean (global pool), MatMul + BiasAdd + Softmax.
Input: float32 Placeholder `input` [?, size, size, 3] in [-1, 1] (photos cropped 0.875 and
resized; `--input_mean=127.5 --input_std=127.5`), output `softmax` [?, 1000].

Usage:
  python tools/make_resnet50.py --output=/tmp/resnet50.pb \
      --photos=../shared/images/imagenet_samples [--image_size=224] [--seed=0]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keras  # noqa: E402
import keras_generator  # noqa: E402


def generate(output_path, photos_dir, image_size=224, seed=0, num_photos=32, verbose=False):
    return keras_generator.generate_application(keras.applications.ResNet50, output_path,
                                                photos_dir, image_size, seed, num_photos, verbose)


if __name__ == "__main__":
    sys.exit(keras_generator.application_main(keras.applications.ResNet50,
                                              __doc__.split("\n\n")[0]))
