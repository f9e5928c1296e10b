"""Make the shared model factory (tests/physics/deeppot_test_models.py) and the oracle importable."""

import sys
from pathlib import Path

import pytest
import torch

_HERE = Path(__file__).resolve().parent
for _path in (_HERE, _HERE.parent / "physics"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


@pytest.fixture(scope="session", autouse=True)
def _single_thread():
    """These tests evaluate many tiny graphs: intra-op threading only adds overhead (and is very slow
    when the machine is busy), so run them single-threaded and restore the setting afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
