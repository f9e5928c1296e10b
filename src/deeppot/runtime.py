"""Process-wide settings: thread counts (read as DeePMD-kit users set them) and the allocator."""

import ctypes
import ctypes.util
import os
import sys
from dataclasses import dataclass
from typing import Optional, Tuple

from deeppot.errors import DeeppotError

_STARTED_AS = (os.getpid(), os.getppid())
"""This process and its parent when deeppot was first imported (the command line imports it before torch)."""


def starting_parent() -> int:
    """The pid of the process that started this one, as read when deeppot was first imported (seconds before
    training starts; :func:`deeppot.train.distributed.die_with_parent` tells by it whether that process has gone
    meanwhile); in a process forked after that import, its parent now."""
    pid, parent = _STARTED_AS
    return parent if pid == os.getpid() else os.getppid()

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_tuned = False


def tune_allocator() -> None:
    """Keep freed memory in the process (glibc only).

    Each evaluation allocates and frees tensors of tens of MB; by default glibc serves these with
    mmap and returns them to the system, so every step pays page faults on fresh pages. Serving them
    from the heap and not trimming it made evaluation about 15-20% faster on the development machine
    (benchmarks/bench_water.py), at the cost of keeping the peak memory reserved.
    """
    global _tuned
    if _tuned or not sys.platform.startswith("linux"):
        return
    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name)
    if hasattr(libc, "mallopt"):
        libc.mallopt(_M_MMAP_MAX, 0)
        libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    _tuned = True


@dataclass(frozen=True)
class ThreadSettings:
    """The thread counts in use and where each came from (an environment variable or deeppot's default)."""

    intra_op: int
    intra_source: str
    inter_op: int
    inter_source: str
    wait_policy: str

    def describe(self) -> str:
        return (f"threads: {self.intra_op} intra-op ({self.intra_source}), {self.inter_op} inter-op "
                f"({self.inter_source}), OpenMP wait policy {self.wait_policy}; set "
                "DP_INTRA_OP_PARALLELISM_THREADS / DP_INTER_OP_PARALLELISM_THREADS (or OMP_NUM_THREADS) to change")


_settings: Optional[ThreadSettings] = None


def positive_int_from_env(names, environ=os.environ) -> Tuple[Optional[int], str]:
    """The first of the variables ``names`` that holds a positive integer, and its name; 0 or unset
    means "not given" (as in DeePMD-kit)."""
    for name in names:
        value = environ.get(name, "").strip()
        if not value:
            continue
        if not value.isdigit():
            raise DeeppotError(f"environment variable {name}={value!r}: not a whole number of threads; "
                               f"set it to e.g. 1 or unset it")
        if int(value) > 0:  # 0 means "default", as in DeePMD-kit
            return int(value), name
    return None, ""


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configure_threads() -> ThreadSettings:
    """Set torch's thread counts the way DeePMD-kit users set them; call before heavy work.

    - intra-op threads: ``DP_INTRA_OP_PARALLELISM_THREADS``, else ``OMP_NUM_THREADS``, else the cores
      this process may use;
    - inter-op threads: ``DP_INTER_OP_PARALLELISM_THREADS``, else torch's default;
    - OpenMP's wait policy: ``OMP_WAIT_POLICY`` if set, else PASSIVE. With torch's default (active
      spin-waiting) threads that find their cores busy with other work spin against each other and a
      training step became 3 to 25 times slower; passive waiting costs little on a quiet machine
      (benchmarks/bench_threads.py). The policy only takes effect when this runs before torch is imported
      (the command line does so); the counts take effect at any time.
    """
    global _settings
    if _settings is not None:
        return _settings
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    intra, intra_source = positive_int_from_env(("DP_INTRA_OP_PARALLELISM_THREADS", "OMP_NUM_THREADS"))
    if intra is None:
        intra, intra_source = usable_cores(), "default: cores available"
    inter, inter_source = positive_int_from_env(("DP_INTER_OP_PARALLELISM_THREADS",))
    import torch

    torch.set_num_threads(intra)
    if inter is not None:
        try:
            torch.set_num_interop_threads(inter)
        except RuntimeError:  # already fixed once parallel work has run in this process
            inter_source += " (too late to change in this process)"
    else:
        inter_source = "torch default"
    _settings = ThreadSettings(intra, intra_source, torch.get_num_interop_threads(), inter_source,
                               os.environ["OMP_WAIT_POLICY"])
    return _settings
