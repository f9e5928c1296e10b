"""Timing helper shared by the benchmark scripts (run as ``python benchmarks/<script>.py``, which puts this
folder on sys.path)."""

import statistics
import time


def median_ms(function, repeats: int) -> float:
    """Median wall time of ``function()`` over ``repeats`` calls after one warm-up call, in milliseconds."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)
