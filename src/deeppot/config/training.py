"""The ``training`` section: data systems, batch sizes, step counts, logging and checkpoints."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from deeppot.config.base import Section
from deeppot.config.messages import Path, SectionProblems, show

_BATCH_RULE = re.compile(r"(auto|max|filter):([1-9][0-9]*)")


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_batch_size(value: Any) -> Any:
    if _is_positive_int(value) or value == "auto":
        return value
    if isinstance(value, list) and value and all(_is_positive_int(v) for v in value):
        return value
    if isinstance(value, str) and _BATCH_RULE.fullmatch(value):
        return value
    raise ValueError(
        f"{show(value)} is not a valid batch size; use a positive integer, a list of positive "
        "integers (one per system), 'auto', or 'auto:N' / 'max:N' / 'filter:N' with N a positive integer"
    )


def _check_systems(value: Any) -> Any:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return value
    raise ValueError(f"expected a directory path or a non-empty list of paths, got {show(value)}")


def _check_numb_btch(value: Any) -> Any:
    if _is_positive_int(value) or value == "all":
        return value
    raise ValueError(f"{show(value)} is not a valid number of batches; use a positive integer or \"all\"")


_PROB_BLOCK = re.compile(r"\d+:\d+:[0-9.eE+-]+")


def _check_auto_prob(value: str) -> str:
    if value in ("prob_uniform", "prob_sys_size"):
        return value
    head, *blocks = value.split(";")
    if head == "prob_sys_size" and blocks and all(_PROB_BLOCK.fullmatch(b) for b in blocks):
        return value
    raise ValueError(
        f"'{value}' is not a valid sampling rule; use 'prob_uniform', 'prob_sys_size' or "
        "'prob_sys_size;start:end:weight;...'"
    )


class DataConfig(Section):
    """A set of training systems and how frames are drawn from them."""

    ALIASES: ClassVar[dict[str, str]] = {"auto_prob_style": "auto_prob", "sys_weights": "sys_probs"}

    systems: Annotated[str | list[str], BeforeValidator(_check_systems)]
    """Paths of data systems; a single directory is searched recursively for systems."""
    rglob_patterns: list[str] | None = None
    """Glob patterns used when searching a directory for systems."""
    batch_size: Annotated[int | list[int] | str, BeforeValidator(_check_batch_size)] = "auto"
    """Frames per batch: an integer, one integer per system, "auto" (= "auto:32"), "auto:N"
    (ceil(N/natoms)), "max:N" (max(1, N//natoms)) or "filter:N" (like max, dropping systems
    with more than N atoms)."""
    auto_prob: Annotated[str, AfterValidator(_check_auto_prob)] = "prob_sys_size"
    """How systems are sampled: "prob_uniform", "prob_sys_size" or "prob_sys_size;a:b:w;..."."""
    sys_probs: list[float] | None = None
    """Explicit sampling probability of each system; overrides auto_prob."""
    min_pair_dist: float = Field(0.0, ge=0)
    """Frames with an atom pair closer than this distance (Angstrom) are skipped; 0 disables."""

    @model_validator(mode="after")
    def _check_lengths(self) -> DataConfig:
        found: list[tuple[Path, str]] = []
        if isinstance(self.systems, list):
            nsys = len(self.systems)
            for key, value in (("batch_size", self.batch_size), ("sys_probs", self.sys_probs)):
                if isinstance(value, list) and len(value) != nsys:
                    found.append(
                        ((key,), f"has {len(value)} entries but systems has {nsys}; give one per system")
                    )
        if found:
            raise SectionProblems(found)
        return self


class ValidationDataConfig(DataConfig):
    """Systems used for validation during training."""

    ALIASES: ClassVar[dict[str, str]] = {**DataConfig.ALIASES, "numb_batch": "numb_btch"}

    numb_btch: Annotated[int | Literal["all"], BeforeValidator(_check_numb_btch)] = 1
    """Batches evaluated at each validation, drawn like training batches (metrics averaged with the atoms of
    each batch as weight, as DeePMD-kit). "all" (not in DeePMD-kit) evaluates every validation frame once instead
    and pools the squared errors of all frames, so an energy model's rmse_e_val, rmse_f_val and rmse_v_val equal
    ``deeppot test``'s Energy RMSE/Natoms, Force RMSE and Virial RMSE/Natoms on the same model and systems
    (tensor models keep DeePMD-kit's column definitions, e.g. the global RMSE divided by the atom count)."""


class MixedPrecisionConfig(Section):
    """Mixed precision of the networks, as DeePMD-kit TF's (deeppot.nn.precision): float32 weights, inputs and
    outputs; each layer computes in compute_prec."""

    output_prec: Literal["float32"] = "float32"
    """Precision of the network weights, inputs and outputs (float32 only, as in DeePMD-kit)."""
    compute_prec: Literal["float16", "bfloat16"]
    """Precision the layers compute in: float16 or bfloat16."""


class TrainingConfig(Section):
    """The ``training`` section."""

    ALIASES: ClassVar[dict[str, str]] = {
        "stop_batch": "numb_steps",
        "num_steps": "numb_steps",
        "num_step": "numb_steps",
        "numb_step": "numb_steps",
    }

    training_data: DataConfig
    """Training systems."""
    validation_data: ValidationDataConfig | None = None
    """Validation systems; ``None`` means no validation."""
    stat_file: str | None = None
    """Cache of the data statistics: an .h5/.hdf5 file or a directory of .npy files."""
    stat_file_mode: Literal["update", "read"] = "update"
    """Whether the statistics cache is (re)written or only read."""
    mixed_precision: MixedPrecisionConfig | None = None
    """Mixed-precision settings."""
    numb_steps: int = Field(ge=0)
    """Total number of training steps."""
    seed: int | None = None
    """Random seed for data sampling; ``None`` draws one."""
    disp_file: str = "lcurve.out"
    """File the learning curve is written to."""
    disp_freq: int = Field(1000, gt=0)
    """Write the learning curve every this many steps."""
    save_freq: int = Field(1000, gt=0)
    """Save a checkpoint every this many steps."""
    save_ckpt: str = "model.ckpt"
    """Checkpoint file-name prefix."""
    save_dir: str | None = None
    """Directory for checkpoints; ``None`` means the working directory."""
    max_ckpt_keep: int = Field(5, gt=0)
    """Number of most recent checkpoints kept."""
    ckpt_keep_ratio: float | None = Field(None, gt=0, lt=1)
    """Keep older checkpoints spaced by this ratio of the step count."""
    disp_training: bool = True
    """Print training progress."""
    time_training: bool = True
    """Print timing information."""
    disp_avg: bool = False
    """Print losses averaged over the display interval instead of the current batch."""
    profiling: bool = False
    """Write a profiling timeline."""
    profiling_file: str = "timeline.json"
    """File of the profiling timeline."""
    enable_profiler: bool = False
    """Enable the framework profiler."""
    tensorboard: bool = False
    """Write TensorBoard logs."""
    tensorboard_log_dir: str = "log"
    """Directory of the TensorBoard logs."""
    tensorboard_freq: int = Field(1, gt=0)
    """Write TensorBoard logs every this many steps."""
    gradient_max_norm: float | None = Field(None, ge=0)
    """Clip the gradient norm to this value; ``None`` or 0 disables clipping."""
    change_bias_after_training: bool = False
    """Recompute the output bias from the training data after training."""
    enable_ema: bool = False
    """Keep an exponential moving average of the parameters."""
    ema_decay: float = Field(0.999, ge=0, lt=1)
    """Decay of the parameter moving average."""
    zero_stage: int = Field(0, ge=0, le=3)
    """ZeRO optimizer-state sharding stage for distributed training."""
    fast_step: Literal["auto", "on", "off"] = "auto"
    """deeppot's compiled training step (torch.compile; same numbers as the eager step to round-off): "auto" uses it
    for float64 se_e2_a/se_e2_r energy models when numb_steps >= 10000 (it pays back its compile time, 20 s to 2.5
    minutes once per process), "on" wherever it applies, "off" never. Not a DeePMD-kit key."""
