"""Exponential learning-rate schedule of DeePMD-kit 3.2 (spec section 2.5)."""

import math
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class ExpDecaySchedule:
    """``lr(t) = max(start_lr * decay_rate ** floor(t / decay_steps), stop_lr)`` for 0-based step t.

    Without ``decay_rate``: ``decay_rate = (stop_lr / start_lr) ** (decay_steps / T)``, T = numb_steps
    - warmup_steps; if decay_steps >= T it is first reduced to 100 (T//10 > 100) or T//100 + 1.
    ``smooth`` uses t/decay_steps without the floor. During warm-up (t < warmup_steps) the rate grows
    linearly from warmup_start_factor * start_lr to start_lr.
    """

    start_lr: float
    stop_lr: float
    decay_steps: int
    decay_rate: float
    smooth: bool = False
    warmup_steps: int = 0
    warmup_start_factor: float = 0.0

    @classmethod
    def build(
        cls,
        start_lr: float,
        stop_lr: float,
        numb_steps: int,
        decay_steps: int = 5000,
        decay_rate: Optional[float] = None,
        smooth: bool = False,
        warmup_steps: int = 0,
        warmup_start_factor: float = 0.0,
    ) -> "ExpDecaySchedule":
        decay_span = numb_steps - warmup_steps
        if decay_rate is None and decay_span <= 0:  # nothing to decay over (numb_steps 0)
            decay_rate = 1.0
        if decay_rate is None:
            if decay_steps >= decay_span:
                decay_steps = 100 if decay_span // 10 > 100 else decay_span // 100 + 1
            decay_rate = math.exp(math.log(max(stop_lr, 1e-10) / start_lr) / (decay_span / decay_steps))
        return cls(start_lr, stop_lr, decay_steps, decay_rate, smooth, warmup_steps, warmup_start_factor)

    def value(self, step: int) -> float:
        if step < self.warmup_steps:
            f = self.warmup_start_factor
            return f * self.start_lr + (1.0 - f) * self.start_lr * step / self.warmup_steps
        t = step - self.warmup_steps
        exponent = t / self.decay_steps if self.smooth else t // self.decay_steps
        return max(self.start_lr * self.decay_rate**exponent, self.stop_lr)
