"""Reading and validating input.json (DeePMD-kit 3.2 compatible keys and defaults).

Use :func:`load_input` on a file or :func:`validate_input` on parsed data; both
return an :class:`InputConfig` or raise :class:`deeppot.errors.ConfigError`
listing every problem found.
"""

from deeppot.config.base import ACTIVATIONS, PRECISIONS, TypeRegistry, resolve_precision
from deeppot.config.learning_rate import ExpLearningRateConfig, LearningRateConfig
from deeppot.config.loader import InputConfig, load_input, validate_input
from deeppot.config.loss import EnerLossConfig, LossConfig, TensorLossConfig
from deeppot.config.model import (
    DESCRIPTORS,
    FITTINGS,
    DescriptorConfig,
    DipoleFittingConfig,
    EnerFittingConfig,
    ModelConfig,
    PolarFittingConfig,
    SeE2AConfig,
    SeE2RConfig,
    SeE3Config,
)
from deeppot.config.optimizer import AdamConfig, AdamWConfig, OptimizerConfig
from deeppot.config.training import DataConfig, MixedPrecisionConfig, TrainingConfig, ValidationDataConfig

__all__ = [
    "ACTIVATIONS",
    "DESCRIPTORS",
    "FITTINGS",
    "PRECISIONS",
    "AdamConfig",
    "AdamWConfig",
    "DataConfig",
    "DescriptorConfig",
    "DipoleFittingConfig",
    "EnerFittingConfig",
    "EnerLossConfig",
    "ExpLearningRateConfig",
    "InputConfig",
    "LearningRateConfig",
    "LossConfig",
    "MixedPrecisionConfig",
    "ModelConfig",
    "OptimizerConfig",
    "PolarFittingConfig",
    "SeE2AConfig",
    "SeE2RConfig",
    "SeE3Config",
    "TensorLossConfig",
    "TrainingConfig",
    "TypeRegistry",
    "ValidationDataConfig",
    "load_input",
    "resolve_precision",
    "validate_input",
]
