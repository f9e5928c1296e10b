"""The ``learning_rate`` section (only the exponential-decay schedule).

The schedule itself is computed elsewhere; this class only holds its parameters.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from deeppot.config.base import Section, TypeRegistry
from deeppot.config.messages import Path, SectionProblems

DEFAULT_START_LR = 1e-3
"""start_lr used when the whole learning_rate section is absent."""
DEFAULT_STOP_LR = 5e-8
"""stop_lr used when neither stop_lr nor stop_lr_ratio is given."""


class ExpLearningRateConfig(Section):
    """Exponentially decaying learning rate with optional linear warmup."""

    type: Literal["exp"] = "exp"
    """Schedule type."""
    start_lr: float = Field(gt=0)
    """Learning rate at the start of training (after warmup)."""
    stop_lr: float | None = Field(None, gt=0)
    """Learning rate at the end of training; after validation always set (from
    ``stop_lr_ratio`` if that was given, else 5e-8 if neither was)."""
    stop_lr_ratio: float | None = Field(None, gt=0)
    """stop_lr as a fraction of start_lr; alternative to stop_lr."""
    decay_steps: int = Field(5000, gt=0)
    """The learning rate decays every this many steps."""
    decay_rate: float | None = Field(None, gt=0)
    """Decay factor per ``decay_steps``; ``None`` derives it from start_lr, stop_lr and numb_steps."""
    smooth: bool = False
    """Decay continuously instead of in steps of ``decay_steps``."""
    warmup_steps: int = Field(0, ge=0)
    """Number of linear warmup steps at the beginning of training."""
    warmup_ratio: float | None = Field(None, ge=0, lt=1)
    """Warmup length as a fraction of numb_steps; alternative to warmup_steps."""
    warmup_start_factor: float = Field(0.0, ge=0)
    """Warmup starts at ``warmup_start_factor * start_lr``."""
    scale_by_worker: Literal["linear", "sqrt", "none"] = "linear"
    """How the optimizer's learning rate scales with the number of data-parallel processes N (torchrun):
    ``linear`` x N, ``sqrt`` x sqrt(N), ``none`` x 1, as DeePMD-kit's TensorFlow trainer does (its PyTorch
    trainer ignores it). The loss prefactors and lcurve.out follow the unscaled schedule."""

    @model_validator(mode="after")
    def _resolve_stop_lr(self) -> ExpLearningRateConfig:
        found: list[tuple[Path, str]] = []
        if self.stop_lr_ratio is not None:
            from_ratio = self.start_lr * self.stop_lr_ratio
            # A normalized out.json carries both; that is fine when they agree.
            if self.stop_lr is not None and not math.isclose(self.stop_lr, from_ratio, rel_tol=1e-9):
                found.append((("stop_lr",), "stop_lr and stop_lr_ratio are mutually exclusive; give only one"))
            self.stop_lr = from_ratio
        elif self.stop_lr is None:
            self.stop_lr = DEFAULT_STOP_LR
        if self.stop_lr > self.start_lr:
            key = "stop_lr_ratio" if self.stop_lr_ratio is not None else "stop_lr"
            found.append(((key,), f"gives a stop_lr of {self.stop_lr:g}, larger than start_lr {self.start_lr:g}: the "
                          "learning rate would grow and the loss prefactors, which follow lr/start_lr, turn "
                          "negative. Set stop_lr below start_lr (e.g. 1e-8 with start_lr 1e-3)"))
        if self.warmup_steps != 0 and self.warmup_ratio is not None:
            found.append(
                (("warmup_ratio",), "warmup_steps and warmup_ratio are mutually exclusive; give only one")
            )
        if found:
            raise SectionProblems(found)
        return self


LearningRateConfig = ExpLearningRateConfig

LEARNING_RATES = TypeRegistry(
    what="learning_rate",
    classes={"exp": ExpLearningRateConfig},
    default="exp",
    unsupported=("cosine", "wsd"),
)
"""Schedule types accepted in ``learning_rate/type``."""
