"""The demo's embedded model: trains to a useful accuracy and freezes to the ops it promises."""
import importlib.util
import os

DEMO_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "tools", "demo.py")


def _load_demo():
    # tools/ is not a package, so the demo is imported from its path.
    spec = importlib.util.spec_from_file_location("demo", DEMO_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_and_freeze_gives_accurate_frozen_graph(tmp_path):
    demo = _load_demo()
    result = demo.train_and_freeze(str(tmp_path))

    assert result["graph_accuracy"] >= 0.9
    assert abs(result["graph_accuracy"] - result["keras_accuracy"]) < 0.01
    ops = {node.op for node in result["graph_def"].node}
    assert {"Conv2D", "Relu", "ConcatV2", "MatMul", "Softmax"} <= ops
    assert ops & {"MaxPool", "AvgPool"}
    nodes = {node.name: node.op for node in result["graph_def"].node}
    assert nodes["input"] == "Placeholder" and nodes["softmax"] == "Softmax"
    for key in ("float", "sample", "labels"):
        assert os.path.getsize(result[key]) > 0
