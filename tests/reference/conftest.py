"""Make the shared model factory (tests/physics/deeppot_test_models.py) and the oracle importable."""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _path in (_HERE, _HERE.parent / "physics"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

