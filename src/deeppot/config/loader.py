"""The whole input file: :class:`InputConfig`, :func:`validate_input` and :func:`load_input`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import Field, ValidationError, model_validator

from deeppot.config.base import Section, TypeRegistry, clean_section
from deeppot.config.learning_rate import DEFAULT_START_LR, LEARNING_RATES, ExpLearningRateConfig
from deeppot.config.loss import LOSSES, EnerLossConfig, TensorLossConfig
from deeppot.config.messages import Problem, SectionProblems, format_problems, problems_from_pydantic
from deeppot.config.model import ModelConfig
from deeppot.config.modifier import resolve_modifier_path
from deeppot.config.optimizer import OPTIMIZERS, AdamConfig, AdamWConfig
from deeppot.config.training import TrainingConfig
from deeppot.errors import ConfigError

YAML_SUFFIXES = (".yaml", ".yml")


class InputConfig(Section):
    """A validated input.json with every default filled in."""

    VARIANTS: ClassVar[dict[str, TypeRegistry]] = {
        "learning_rate": LEARNING_RATES,
        "loss": LOSSES,
        "optimizer": OPTIMIZERS,
    }

    model: ModelConfig
    """Model architecture."""
    learning_rate: ExpLearningRateConfig = Field(
        default_factory=lambda: ExpLearningRateConfig(start_lr=DEFAULT_START_LR)
    )
    """Learning-rate schedule; start_lr 1e-3 when the section is absent."""
    loss: Annotated[EnerLossConfig | TensorLossConfig, Field(discriminator="type")] = Field(
        default_factory=EnerLossConfig
    )
    """Training loss."""
    optimizer: Annotated[AdamConfig | AdamWConfig, Field(discriminator="type")] = Field(
        default_factory=AdamConfig
    )
    """Optimizer."""
    training: TrainingConfig
    """Data, step counts, logging and checkpointing."""

    # the loss type each fitting type trains with
    LOSS_OF_FITTING: ClassVar[dict[str, str]] = {"ener": "ener", "dipole": "tensor", "polar": "tensor"}

    @model_validator(mode="after")
    def _check_loss_fits_model(self) -> InputConfig:
        fitting, needed = self.model.fitting_net.type, self.LOSS_OF_FITTING[self.model.fitting_net.type]
        if self.loss.type != needed:
            raise SectionProblems([(("loss", "type"), f"'{self.loss.type}' cannot train a '{fitting}' fitting "
                                    f"(model/fitting_net/type); use \"type\": \"{needed}\"")])
        return self

    def normalized(self) -> dict[str, Any]:
        """The full configuration as plain JSON data: canonical keys, all defaults, no comments."""
        return self.model_dump(mode="json")


def validate_input(raw: Any, source: str = "input.json") -> InputConfig:
    """Validate parsed input data.

    All problems are collected and raised together as one :class:`ConfigError`,
    one line per problem, each prefixed by ``source`` and the JSON path.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: (top level): expected a JSON object with model and training sections")
    problems: list[Problem] = []
    skipped: set[tuple[str | int, ...]] = set()
    cleaned = clean_section(raw, InputConfig, (), problems, skipped)
    config: InputConfig | None = None
    try:
        config = InputConfig.model_validate(cleaned)
    except ValidationError as exc:
        for problem in problems_from_pydantic(exc.errors(), cleaned):
            if not any(problem.path[: len(p)] == p for p in skipped):
                problems.append(problem)
    if problems or config is None:
        raise ConfigError(format_problems(source, problems))
    return config


def load_input(path: str | Path) -> InputConfig:
    """Read and validate a JSON (or, for .yaml/.yml, YAML) input file."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{path}: input file not found; check the path")
    text = file.read_text(encoding="utf-8")
    if file.suffix.lower() in YAML_SUFFIXES:
        raw = _parse_yaml(text, str(path))
    else:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{path}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}; fix the syntax there"
            ) from None
    config = validate_input(raw, str(path))
    resolve_modifier_path(config.model.modifier, file.parent)
    from deeppot.model.pair_table import resolve_table_file  # reads the table file: numpy, after validation

    resolve_table_file(config.model, file.parent)
    return config


def _parse_yaml(text: str, source: str) -> Any:
    import yaml  # optional dependency, only needed for YAML input

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: {where}invalid YAML: {reason}; fix the syntax there") from None
