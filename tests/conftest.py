"""Helpers shared by the tests."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_dir():
    """The shared models/images folder: $QG_SHARED_DIR, else <repo>/../shared."""
    return Path(os.environ.get("QG_SHARED_DIR") or REPO.parent / "shared")


@pytest.fixture(scope="session")
def shared():
    return shared_dir()
