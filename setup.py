"""Installs the quantize_graph package, its console scripts and the Qg CPU op library."""
import importlib.util
import os

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildQgOps(build_ext):
    """Compiles kernels/cc with g++ and tf.sysconfig's flags (kernels/build_cpu.py) instead of
    distutils' compiler, into quantize_graph/kernels/_qg_ops.so (and the build dir)."""

    def build_extension(self, ext):
        spec = importlib.util.spec_from_file_location(
            "build_cpu", os.path.join(HERE, "kernels", "build_cpu.py"))
        builder = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(builder)
        built = builder.build()
        target = self.get_ext_fullpath(ext.name)
        if os.path.abspath(target) != os.path.abspath(built):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            self.copy_file(built, target)

    def get_ext_filename(self, ext_name):
        # tf.load_op_library wants a plain name, not an ABI-tagged one.
        return os.path.join(*ext_name.split(".")) + ".so"


setup(
    name="quantize_graph",
    version="0.1.0",
    description="Quantize frozen TensorFlow graphs to 8 bits (successor of TF's quantize_graph).",
    packages=find_packages(include=["quantize_graph", "quantize_graph.*"]),
    python_requires=">=3.9",
    install_requires=["tensorflow-cpu==2.21.0", "numpy", "absl-py", "protobuf"],
    ext_modules=[Extension("quantize_graph.kernels._qg_ops", sources=[])],
    cmdclass={"build_ext": BuildQgOps},
    entry_points={
        "console_scripts": [
            "quantize_graph=quantize_graph.cli:run",
            "label_image=quantize_graph.tools.label_image:run",
            "benchmark_graph=quantize_graph.tools.benchmark_graph:run",
            "evaluate_graph=quantize_graph.tools.evaluate_graph:run",
        ]
    },
)
