"""Installs the quantize_graph package and its console scripts."""
from setuptools import find_packages, setup

setup(
    name="quantize_graph",
    version="0.1.0",
    description="Quantize frozen TensorFlow graphs to 8 bits (successor of TF's quantize_graph).",
    packages=find_packages(include=["quantize_graph", "quantize_graph.*"]),
    python_requires=">=3.9",
    install_requires=["tensorflow-cpu==2.21.0", "numpy", "absl-py", "protobuf"],
    entry_points={
        "console_scripts": [
            "quantize_graph=quantize_graph.cli:run",
            "label_image=quantize_graph.tools.label_image:run",
            "benchmark_graph=quantize_graph.tools.benchmark_graph:run",
            "evaluate_graph=quantize_graph.tools.evaluate_graph:run",
        ]
    },
)
