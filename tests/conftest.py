"""Helpers shared by the tests."""
import os

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
