"""statistics/measure.py: one run of the float graph gives every consumer's statistics."""
import numpy as np

from quantize_graph.calibration_data import batches
from quantize_graph.pipeline import Options, run_pipeline
from quantize_graph.runner import run_graph
from quantize_graph.statistics.measure import measure
from tests.graphs import conv_relu_pool_graph

RNG = np.random.RandomState(5)


def test_one_pass_gives_ranges_means_and_maxima():
    graph_def, inp, _ = conv_relu_pool_graph()
    data = RNG.uniform(-1, 1, [6, 8, 8, 3]).astype(np.float32)
    got = measure(graph_def, batches({inp: data}, 1), ranges=["bias", "relu"], means=["relu"],
                  maxima=["relu", "pool"])
    assert got.batches_run == 6
    relu, pool, bias = [np.concatenate([run_graph(graph_def, [t + ":0"], {"input:0": data[i:i + 1]})[0]
                                        for i in range(6)]) for t in ("relu", "pool", "bias")]
    assert (got.tensors["bias"].min, got.tensors["bias"].max) == (bias.min(), bias.max())
    np.testing.assert_allclose(got.means["relu"], relu.reshape(-1, 4).mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(got.maxima["pool"], pool.reshape(-1, 4).max(axis=0))


def test_calibration_data_runs_through_the_float_graph_once(fed_examples):
    """Ranges and bias correction's means come from the same run (kernels target)."""
    graph_def, inp, out = conv_relu_pool_graph()
    data = RNG.uniform(-1, 1, [5, 8, 8, 3]).astype(np.float32)
    _, report = run_pipeline(graph_def, [out], Options(target="kernels", calibration_inputs={inp: data}))
    assert report.range_source.startswith("ranges from calibration data")
    assert sum(fed_examples) == 5 and len(fed_examples) == 5  # batch 1: five runs, each example once
