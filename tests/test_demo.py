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
    # Batch norms (Keras' decomposed form) give the ranges when no data is given.
    assert "Rsqrt" in ops
    nodes = {node.name: node.op for node in result["graph_def"].node}
    assert nodes["input"] == "Placeholder" and nodes["softmax"] == "Softmax"
    for key in ("float", "sample", "labels"):
        assert os.path.getsize(result[key]) > 0


def test_original_command_quantizes_it_with_batch_norm_ranges(tmp_path):
    """No calibration data: the batch norms' statistics give the ranges, auto picks onednn,
    every conv runs in int8 and the held-out accuracy stays within a point of float."""
    import quantize_graph as qg
    from quantize_graph.pipeline import Options, run_pipeline

    demo = _load_demo()
    result = demo.train_and_freeze(str(tmp_path))
    q, report = run_pipeline(result["graph_def"], [demo.OUTPUT_NAME], Options(
        mode="eightbit", input_range=(0.0, 1.0)))
    assert report.target == "onednn"
    assert "ranges from batch-norm statistics, no calibration data" in report.summary()
    assert not [n for n, (op, _) in report.stayed_float.items() if op == "Conv2D"]
    _, _, x_test, y_test = demo.load_digits_split()
    assert demo.graph_accuracy(q, x_test, y_test) >= result["graph_accuracy"] - 0.01
