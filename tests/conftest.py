import os
import sys
from pathlib import Path

# One thread per process: with the default two, OpenMP spin-waiting on a shared 2-core machine made
# the suite several times slower. Set before torch is imported, so CLI subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

# make tests/helpers.py importable as `helpers`
sys.path.insert(0, str(Path(__file__).resolve().parent))
