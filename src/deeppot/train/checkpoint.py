"""Checkpoints: ``<save_ckpt>-<step>.pt`` written atomically, a ``checkpoint`` pointer file naming the
latest, a ``<save_ckpt>.pt`` symlink to it, and the newest ``max_ckpt_keep`` kept.

A checkpoint is a dict of plain values and tensors (loadable with ``weights_only=True``):
``model_params`` (the normalized model section), ``model`` (state dict), ``optimizer``, ``step``
(1-based number of completed steps), ``sampler`` / ``valid_sampler`` states, ``min_nbor_dist``,
``mixed_precision`` (None, or the networks' {output_prec, compute_prec}: deeppot.nn.precision). Tensors are
saved on the CPU whatever device trained them (deeppot.train.device).
"""

import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Dict, List

import torch

from deeppot.errors import ModelFileError
from deeppot.train.device import on_cpu

POINTER_FILE = "checkpoint"
FROZEN_METADATA_ENTRY = "deeppot/model.json"
"""The extra file of a frozen model's archive that marks it as one (see deeppot.export.model_file)."""


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``: a crash never leaves a half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_checkpoint(state: Dict, directory: Path, prefix: str, step: int, keep: int) -> Path:
    """Write ``<directory>/<prefix>-<step>.pt`` and update the pointer; returns the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{prefix}-{step}.pt"
    atomic_write(path, lambda tmp: torch.save(on_cpu(state), tmp))
    atomic_write(directory / POINTER_FILE, lambda tmp: Path(tmp).write_text(path.name + "\n"))
    link = directory / f"{prefix}.pt"
    tmp_link = directory / f".{prefix}.pt.tmp"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    os.symlink(path.name, tmp_link)
    os.replace(tmp_link, link)
    _prune(directory, prefix, keep)
    return path


def _checkpoint_steps(directory: Path, prefix: str) -> List[int]:
    steps = []
    for candidate in directory.glob(f"{prefix}-*.pt"):
        suffix = candidate.name[len(prefix) + 1 : -3]
        if suffix.isdigit():
            steps.append(int(suffix))
    return sorted(steps)


def _prune(directory: Path, prefix: str, keep: int) -> None:
    for step in _checkpoint_steps(directory, prefix)[:-keep]:
        (directory / f"{prefix}-{step}.pt").unlink(missing_ok=True)


def resolve_checkpoint(path: str) -> Path:
    """A checkpoint file, or a folder whose ``checkpoint`` pointer names one. Adds ``.pt`` if missing."""
    candidate = Path(path)
    if candidate.is_dir():
        pointer = candidate / POINTER_FILE
        if not pointer.is_file():
            raise ModelFileError(f"{candidate}: no '{POINTER_FILE}' file here; give a checkpoint file with -c")
        candidate = candidate / pointer.read_text().strip()
    elif not candidate.exists() and candidate.suffix != ".pt" and Path(str(candidate) + ".pt").exists():
        candidate = Path(str(candidate) + ".pt")
    if not candidate.is_file():
        raise ModelFileError(f"{candidate}: checkpoint file not found")
    return candidate


def archive_kind(path: Path) -> str:
    """What a model-like file is, from its zip entries alone (nothing is unpickled or loaded):
    ``"frozen"`` (``deeppot freeze`` output), ``"torchscript"`` (another TorchScript archive),
    ``"checkpoint"`` (a ``torch.save`` archive, as training writes) or ``"unknown"``."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return "unknown"
    if any(name.endswith("/extra/" + FROZEN_METADATA_ENTRY) for name in names):
        return "frozen"
    if any(name.endswith("/constants.pkl") for name in names):
        return "torchscript"
    if any(name.endswith("/data.pkl") for name in names):
        return "checkpoint"
    return "unknown"


def load_checkpoint(path: str) -> Dict:
    resolved = resolve_checkpoint(path)
    kind = archive_kind(resolved)
    if kind == "frozen":
        raise ModelFileError(f"{resolved}: already a frozen model (written by 'deeppot freeze'), not a training "
                             "checkpoint; use it as it is (deeppot test -m, DeepPot, ASE, LAMMPS). Freezing takes "
                             "a checkpoint such as model.ckpt-<step>.pt.")
    if kind == "torchscript":
        raise ModelFileError(f"{resolved}: a TorchScript model, not a deeppot training checkpoint "
                             "(model.ckpt-<step>.pt)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(resolved, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign file; torch's own text is about pickles, not about this file
        raise ModelFileError(f"{resolved}: not a readable deeppot checkpoint ({exc.__class__.__name__}; the file "
                             "may be truncated or written by another program)") from None
    if not isinstance(state, dict) or "model" not in state or "model_params" not in state:
        raise ModelFileError(f"{resolved}: not a deeppot checkpoint (no model state inside)")
    return state
