"""Loads SavedModels the way a user of stock TensorFlow would: this script imports TensorFlow and
numpy only, never quantize_graph. Run as a separate process by tests/test_saved_model.py.

  python tests/stock_tf_load.py INPUTS.npy DIR [DIR ...]

Prints one JSON object: per directory, the serving_default signature as tf.saved_model.load
sees it (input and output keys with dtype and shape) and the argmax of every output on the
inputs (fed to the signature's only input); plus whether quantize_graph was imported.
"""
import json
import sys

import numpy as np
import tensorflow as tf


def spec(t):
    return [t.dtype.name, None if t.shape.rank is None else [d for d in t.shape.as_list()]]


def main(inputs_path, directories):
    inputs = np.load(inputs_path)
    report = {}
    for directory in directories:
        function = tf.saved_model.load(directory).signatures["serving_default"]
        _, kwargs = function.structured_input_signature
        (key,) = kwargs
        outputs = {}
        for i in range(0, len(inputs), 8):
            for name, value in function(**{key: tf.constant(inputs[i:i + 8])}).items():
                outputs.setdefault(name, []).extend(np.asarray(value).argmax(axis=-1).tolist())
        report[directory] = {
            "inputs": {k: spec(v) for k, v in kwargs.items()},
            "outputs": {k: spec(v) for k, v in function.structured_outputs.items()},
            "top1": outputs}
    report["imported_quantize_graph"] = any(m.split(".")[0] == "quantize_graph" for m in sys.modules)
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
