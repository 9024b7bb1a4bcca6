"""Generates a MobileNet-v2 (width 1.0) frozen GraphDef (random weights, calibrated on photos).

`keras.applications.MobileNetV2(weights=None)` from a fixed seed, made to behave like a
trained net by the recipe in keras_generator.py (kernels matched to their input covariance,
batch-norm statistics from the first 32 photos, beta 0.5 where a Relu6 follows and 0 on the
linear bottlenecks, rank-8 classifier), then written with stock TF ops: Conv2D,
DepthwiseConv2dNative (17), FusedBatchNormV3, Relu6, Pad (before the 4 stride-2 depthwise
convs), the 10 linear-bottleneck residual AddV2 (no activation after them), Mean, MatMul +
BiasAdd + Softmax. Input: float32 Placeholder `input` [?, size, size, 3] in [-1, 1]
(`--input_mean=127.5 --input_std=127.5`), output `softmax` [?, 1000].

Usage:
  python tools/make_mobilenet_v2.py --output=/tmp/mobilenet_v2.pb \
      --photos=../shared/images/imagenet_samples [--image_size=224] [--seed=0]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keras  # noqa: E402
import keras_generator  # noqa: E402


def generate(output_path, photos_dir, image_size=224, seed=0, num_photos=32, verbose=False):
    return keras_generator.generate_application(keras.applications.MobileNetV2, output_path,
                                                photos_dir, image_size, seed, num_photos, verbose)


if __name__ == "__main__":
    sys.exit(keras_generator.application_main(keras.applications.MobileNetV2,
                                              __doc__.split("\n\n")[0]))
