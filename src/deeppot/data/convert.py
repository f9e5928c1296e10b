"""Convert labeled DFT output (anything dpdata reads) into training and validation data.

Files are read with ``dpdata.LabeledSystem(path, fmt=fmt)`` and merged by composition
(``dpdata.MultiSystems``: frames of one formula are appended, atom order unified). Each
composition's frames are split at random into validation (``round(fraction * nframes)`` frames)
and training (the rest), and written as deepmd/npy folders or deepmd/hdf5 files. The output
folder appears complete or not at all: everything is written into a temporary folder next to it,
renamed at the end.
"""

from __future__ import annotations

import difflib
import glob
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import dpdata
import h5py
import numpy as np
from dpdata.format import Format

from deeppot.errors import DataError, DeeppotError

# Output formats: name -> suffix of the written file ("" for a folder).
OUTPUT_FORMATS = {"deepmd/npy": "", "deepmd/hdf5": ".h5"}
SUBSETS = ("training_data", "validation_data")
_IONIC_STEP = re.compile(r"-+\s*Iteration\s+(\d+)\(")
"""A VASP OUTCAR line opening an electronic iteration of ionic step N: ``--- Iteration N( k) ---``."""

log = logging.getLogger("deeppot")


@dataclass
class ConvertResult:
    """What ``convert`` wrote.

    Attributes
    ----------
    nfiles : int
        Input files read.
    frames_per_file : list[tuple[str, int]]
        Frames read from each input file, in input order.
    frames : dict[str, dict[str, int]]
        ``frames[subset][formula]``: frames of each composition in ``training_data`` and
        ``validation_data`` (a subset with no frame is not written and absent here).
    outputs : dict[str, Path]
        Path written for each subset: a folder (deepmd/npy) or an ``.h5`` file (deepmd/hdf5).
    """

    nfiles: int
    frames_per_file: list[tuple[str, int]] = field(default_factory=list)
    frames: dict[str, dict[str, int]] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)

    def summary(self) -> list[str]:
        """Lines saying how many frames went where."""
        total = sum(n for per_formula in self.frames.values() for n in per_formula.values())
        formulas = sorted({f for per_formula in self.frames.values() for f in per_formula})
        lines = [f"{path}: {n} frames" for path, n in self.frames_per_file]
        lines.append(f"read {self.nfiles} files: {total} frames of {', '.join(formulas)}")
        for subset in SUBSETS:
            per_formula = self.frames.get(subset)
            if not per_formula:
                lines.append(f"{subset}: 0 frames (not written)")
                continue
            detail = f" ({', '.join(f'{f} {n}' for f, n in per_formula.items())})" if len(formulas) > 1 else ""
            lines.append(f"{subset}: {sum(per_formula.values())} frames{detail} -> {self.outputs[subset]}")
        return lines


def read_labeled(
    paths: Sequence[str | Path], fmt: str = "auto", frames_per_file: list[tuple[str, int]] | None = None
) -> dpdata.MultiSystems:
    """Read every file with dpdata and merge the frames by composition; log a warning for a VASP
    OUTCAR that ends inside an ionic step (a cut or still running calculation).

    Parameters
    ----------
    paths
        Files (or folders, for folder formats) holding labeled frames.
    fmt
        A dpdata format name (``vasp/outcar``, ``deepmd/npy``, ...), or ``auto`` to let dpdata
        pick it from the file name.
    frames_per_file
        If given, ``(path, frames read)`` of each file is appended to it.

    Raises
    ------
    DataError
        For a file that is missing, that dpdata cannot read, or that has no labeled frame
        (e.g. an OUTCAR with no finished ionic step); the message names the file.
    """
    _check_format(fmt)
    if not paths:
        raise DeeppotError("no input file given. Name the files to convert, e.g. */OUTCAR.")
    merged = dpdata.MultiSystems()
    for path in paths:
        if not Path(path).exists():
            raise DataError(f"{path}: file not found. Check the input paths.")
        file_fmt = _file_format(path, fmt)
        try:
            system = dpdata.LabeledSystem(str(path), fmt=file_fmt)
        except Exception as err:  # dpdata's parsers raise anything on a malformed file
            raise DataError(
                f"{path}: dpdata cannot read it as '{file_fmt}' ({type(err).__name__}: {err}). "
                "Check that the file is complete and that --fmt names its format."
            ) from None
        if system.get_nframes() == 0:
            raise DataError(
                f"{path}: no labeled frame in it (for a VASP OUTCAR: no finished ionic step). "
                "Leave the file out or rerun the calculation."
            )
        if file_fmt.lower() in ("outcar", "vasp/outcar"):
            _warn_if_cut(path, system.get_nframes())
        if frames_per_file is not None:
            frames_per_file.append((str(path), system.get_nframes()))
        merged.append(system)
    return merged


def _warn_if_cut(outcar: str | Path, nframes: int) -> None:
    """Warn when ``outcar`` started more ionic steps than the ``nframes`` dpdata read from it."""
    started = set()
    with open(outcar, errors="replace") as handle:
        for line in handle:
            match = _IONIC_STEP.search(line)
            if match:
                started.add(int(match.group(1)))
    if len(started) > nframes:
        log.warning("%s: ends inside ionic step %d (%d started, %d complete frames read); the calculation was cut "
                    "or is still running, and the unfinished step is left out", outcar, max(started), len(started),
                    nframes)


def split_indices(nframes: int, valid_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random (training, validation) frame indices, each sorted.

    The validation set is the first ``round(valid_fraction * nframes)`` entries of
    ``rng.permutation(nframes)``, the training set the rest.
    """
    order = rng.permutation(nframes)
    nvalid = round(valid_fraction * nframes)
    return np.sort(order[nvalid:]), np.sort(order[:nvalid])


def convert(
    paths: Sequence[str | Path],
    output: str | Path,
    fmt: str = "auto",
    to: str = "deepmd/npy",
    valid_fraction: float = 0.0,
    seed: int | None = None,
    force: bool = False,
) -> ConvertResult:
    """Read labeled files, split their frames, and write ``output/training_data`` and
    ``output/validation_data``.

    Parameters
    ----------
    paths, fmt
        As for :func:`read_labeled`.
    output
        The folder to create. With one composition in the input, ``training_data`` is a
        deepmd/npy system folder; with several, it holds one system folder per formula (and so
        does ``validation_data``, even when it holds one composition). With ``deepmd/hdf5``,
        ``training_data.h5`` holds one group per formula (``training_data.h5#/H4C1``).
    to
        ``deepmd/npy`` or ``deepmd/hdf5``.
    valid_fraction
        Fraction of each composition's frames put in ``validation_data``, in [0, 1). With 0
        only ``training_data`` is written.
    seed
        Seed of ``numpy.random.default_rng`` for the split; None for a fresh random split.
    force
        Replace ``output`` if it exists (otherwise that is an error).

    Raises
    ------
    DataError
        For an unreadable input file (nothing is written then).
    DeeppotError
        For a bad option or an existing output without ``force``.
    """
    if to not in OUTPUT_FORMATS:
        raise DeeppotError(f"--to {to}: unsupported output format. Choose one of {list(OUTPUT_FORMATS)}.")
    if not 0.0 <= valid_fraction < 1.0:
        raise DeeppotError(f"--valid-fraction {valid_fraction}: must be at least 0 and below 1.")
    output = Path(output)
    if output.exists() and not force:
        raise DeeppotError(f"{output}: already exists. Choose another output or pass --force to replace it.")

    result = ConvertResult(nfiles=len(paths))
    merged = read_labeled(paths, fmt, result.frames_per_file)
    rng = np.random.default_rng(seed)
    subsets: dict[str, dict[str, dpdata.LabeledSystem]] = {name: {} for name in SUBSETS}
    for formula, system in merged.systems.items():
        train, valid = split_indices(system.get_nframes(), valid_fraction, rng)
        for name, index in zip(SUBSETS, (train, valid)):
            if index.size:
                subsets[name][formula] = system.sub_system(index)
    if not subsets["training_data"]:
        raise DeeppotError(
            f"--valid-fraction {valid_fraction} leaves no training frame of the "
            f"{merged.get_nframes()} read. Lower it."
        )

    output.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(output)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.{os.getpid()}.", suffix=".tmp", dir=output.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; the output gets the usual mode
    try:
        for name, systems in subsets.items():
            if not systems:
                continue
            target = name + OUTPUT_FORMATS[to]
            _write(systems, staging / target, to, per_formula=len(merged.systems) > 1)
            result.frames[name] = {f: s.get_nframes() for f, s in systems.items()}
            result.outputs[name] = output / target
        _replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


def _write(systems: dict[str, dpdata.LabeledSystem], target: Path, to: str, per_formula: bool) -> None:
    """Write systems keyed by formula: one .h5 file with a group per formula, or an npy system
    folder at ``target`` (``per_formula`` False) or one below it per formula."""
    if to == "deepmd/hdf5":
        with h5py.File(target, "w") as handle:
            for formula, system in systems.items():
                system.to("deepmd/hdf5", handle.create_group(formula))
    elif not per_formula:
        next(iter(systems.values())).to("deepmd/npy", str(target))
    else:
        for formula, system in systems.items():
            system.to("deepmd/npy", str(target / formula))


def _remove_leftovers(output: Path) -> None:
    """Remove the staging folders (``.<name>.<pid>.*.tmp``/``.old``) that runs killed before they finished
    left beside ``output``; those of a run still going (its process alive) are kept."""
    for leftover in output.parent.glob(f".{glob.escape(output.name)}.*.*"):
        parts = leftover.name[len(output.name) + 2 :].split(".")
        if leftover.suffix not in (".tmp", ".old") or not parts[0].isdigit() or _process_alive(int(parts[0])):
            continue
        shutil.rmtree(leftover, ignore_errors=True)
        log.info("removed %s, left by an interrupted convert", leftover)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _replace(staging: Path, output: Path) -> None:
    """Move the finished ``staging`` folder to ``output``, replacing what was there."""
    if not output.exists():
        staging.rename(output)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{output.name}.{os.getpid()}.", suffix=".old", dir=output.parent))
    output.rename(trash / output.name)
    staging.rename(output)
    shutil.rmtree(trash)


def _file_format(path: str | Path, fmt: str) -> str:
    """The dpdata format to read ``path`` with: ``fmt``, or for ``auto`` the file name's
    extension (``OUTCAR`` -> ``outcar``), as dpdata guesses it."""
    if fmt.lower() != "auto":
        return fmt
    guess = Path(path).name.split(".")[-1].lower()
    if guess not in Format.get_formats():
        raise DataError(
            f"{path}: cannot tell the format from the file name ('{guess}' is not a dpdata format). "
            "Pass --fmt, e.g. --fmt vasp/outcar."
        )
    return guess


def _check_format(fmt: str) -> None:
    """Refuse a format name dpdata does not know, suggesting the nearest."""
    known = Format.get_formats()
    if fmt.lower() == "auto" or fmt.lower() in known:
        return
    near = difflib.get_close_matches(fmt, list(known), n=3)
    hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    raise DeeppotError(f"--fmt {fmt}: not a dpdata format.{hint} Examples: vasp/outcar, vasp/xml, deepmd/npy.")
