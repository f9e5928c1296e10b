"""TensorBoard event files of a training run, as DeePMD-kit's PyTorch backend writes them.

With ``training/tensorboard`` true, every ``tensorboard_freq`` steps (and at step 1) the scalars
``Default/lr``, ``Default/loss`` and ``Default/<metric>`` (the lcurve.out training metrics: rmse, rmse_e, rmse_f,
...; tensor models their rmse_global_*/rmse_local_*) of the current training batch go into ``tensorboard_log_dir``
(relative to the training folder) through ``torch.utils.tensorboard``, tagged with the 1-based step. ``loss`` is
the square of the ``rmse`` metric (= the training loss of the batch); a loss without that metric (tensor) has no
``loss`` scalar. View with ``tensorboard --logdir log``. Needs the ``tensorboard`` package (optional dependency).
"""

from pathlib import Path
from typing import Dict, Optional

from deeppot.errors import ConfigError

TASK_KEY = "Default"  # DeePMD-kit's tag prefix of a single-task model
FLUSH_SECONDS = 10  # the file is readable while training runs


def require_tensorboard(training, source: str = "input.json") -> None:
    """ConfigError, before any work, when ``training/tensorboard`` is true and the package is missing."""
    if not training.tensorboard:
        return
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it)
    except ImportError:
        raise ConfigError(f"{source}: training/tensorboard is true but the 'tensorboard' package is not installed; "
                          "run 'pip install tensorboard' (or install deeppot[tensorboard]), or set "
                          "training/tensorboard to false") from None


class TensorboardLog:
    """Scalars of training steps into an event file; does nothing when made with ``log_dir`` None."""

    def __init__(self, log_dir: Optional[Path], freq: int = 1):
        self.freq = freq
        self.writer = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(log_dir), flush_secs=FLUSH_SECONDS)

    @classmethod
    def for_training(cls, training, output_dir: Path, enabled: bool = True) -> "TensorboardLog":
        """The log the ``training`` section asks for (in ``output_dir``); a no-op one if it asks for none or
        ``enabled`` is false (a data-parallel rank other than the first)."""
        on = training.tensorboard and enabled
        return cls(Path(output_dir) / training.tensorboard_log_dir if on else None, training.tensorboard_freq)

    def write(self, step: int, metrics: Dict[str, float], lr: float) -> None:
        """Scalars of 1-based ``step`` if it is step 1 or a multiple of the frequency."""
        if self.writer is None or (step % self.freq and step != 1):
            return
        self.writer.add_scalar(f"{TASK_KEY}/lr", lr, step)
        if "rmse" in metrics:
            self.writer.add_scalar(f"{TASK_KEY}/loss", metrics["rmse"] ** 2, step)
        for name, value in metrics.items():
            self.writer.add_scalar(f"{TASK_KEY}/{name}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def __enter__(self) -> "TensorboardLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
