"""The ``optimizer`` section: Adam or AdamW."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from deeppot.config.base import Section, TypeRegistry


class AdamConfig(Section):
    """torch.optim.Adam (eps 1e-8)."""

    type: Literal["Adam"] = "Adam"
    """Optimizer type."""
    adam_beta1: float = Field(0.9, ge=0, lt=1)
    """Decay rate of the first-moment estimate."""
    adam_beta2: float = Field(0.999, ge=0, lt=1)
    """Decay rate of the second-moment estimate."""
    weight_decay: float = Field(0.0, ge=0)
    """L2 weight decay."""


class AdamWConfig(Section):
    """torch.optim.AdamW (decoupled weight decay)."""

    type: Literal["AdamW"] = "AdamW"
    """Optimizer type."""
    adam_beta1: float = Field(0.9, ge=0, lt=1)
    """Decay rate of the first-moment estimate."""
    adam_beta2: float = Field(0.999, ge=0, lt=1)
    """Decay rate of the second-moment estimate."""
    weight_decay: float = Field(0.001, ge=0)
    """Decoupled weight decay."""


OptimizerConfig = AdamConfig | AdamWConfig

OPTIMIZERS = TypeRegistry(
    what="optimizer",
    classes={"Adam": AdamConfig, "AdamW": AdamWConfig},
    default="Adam",
    unsupported=("LKF", "AdaMuon", "HybridMuon"),
)
"""Optimizer types accepted in ``optimizer/type``."""
