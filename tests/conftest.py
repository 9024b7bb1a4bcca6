"""Helpers shared by the tests."""
import os
import re

# Before any test module imports TensorFlow: oneDNN's int8 kernels (the onednn target) are
# only there if TF_ENABLE_ONEDNN_OPTS is set when TF is first imported (quantize_graph sets
# it too, but tests may import TF first).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_dir():
    """The shared models/images folder: $QG_SHARED_DIR, else <repo>/../shared."""
    return Path(os.environ.get("QG_SHARED_DIR") or REPO.parent / "shared")


@pytest.fixture(scope="session")
def shared():
    return shared_dir()


# TensorFlow's own C++ start-up log lines (the "oneDNN custom operations are on" notice is
# printed before its log level is read): not the tool's output, so tests drop them.
_TF_LOG_LINE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|[IWE]\d{4} )")


def without_tf_logs(stderr):
    return "".join(l for l in stderr.splitlines(keepends=True) if not _TF_LOG_LINE.match(l))


@pytest.fixture
def fed_examples(monkeypatch):
    """The batch size of every run of a float graph (GraphRunner.run) from here on: how often
    calibration data went through the graph."""
    from quantize_graph import runner
    fed = []
    run = runner.GraphRunner.run

    def counting(self, outputs, feeds):
        fed.append(len(next(iter(feeds.values()))))
        return run(self, outputs, feeds)
    monkeypatch.setattr(runner.GraphRunner, "run", counting)
    return fed
