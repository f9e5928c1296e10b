"""Estimated time to the end of training, from steady steps only.

The first step after start-up pays for allocations, neighbor-list caching and lazy initialisation, so
it is left out: the rate comes from the steps completed after it.
"""

import time
from typing import Callable, Optional


class EtaClock:
    """Call :meth:`step_done` after every step; :meth:`eta` gives the seconds left, or None while there
    is no steady step yet."""

    def __init__(self, first_step: int, last_step: int, clock: Callable[[], float] = time.perf_counter):
        self.last_step = last_step
        self.clock = clock
        self.started = clock()
        self.steady_from: Optional[float] = None
        self.steady_first_step = first_step + 1
        self.done = first_step

    def step_done(self, step: int) -> None:
        """``step``: 1-based number of the step just finished."""
        self.done = step
        if step == self.steady_first_step:
            self.steady_from = self.clock()

    def eta(self) -> Optional[float]:
        steady_steps = self.done - self.steady_first_step
        if self.steady_from is None or steady_steps <= 0:
            return None
        rate = (self.clock() - self.steady_from) / steady_steps
        return rate * (self.last_step - self.done)

    def elapsed(self) -> float:
        return self.clock() - self.started
