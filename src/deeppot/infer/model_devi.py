"""Model deviation, as DP-GEN reads it (spec sections 1 "dp model-devi" and 7): the spread of several
models' predictions on the same frames, or with labels the RMS error of them ("real error").

Numpy only, so the LAMMPS pair style's tests can compare its ``out_file`` with these numbers.
Shapes: nm = models, nf = frames, N = atoms. Units: forces eV/Angstrom, virials and energies eV per
atom (DeePMD-kit divides both by N before taking the spread); with ``relative`` the deviations are
divided by a magnitude plus the level and have no unit.

Columns of ``model_devi.out``: step, max/min/avg over the 9 virial components, max/min/avg over the
atoms of the force deviation, the energy deviation, and with ``atomic`` one force deviation per atom.
The LAMMPS pair style writes the same columns without devi_e.
"""

from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from deeppot.train.checkpoint import atomic_write

COLUMNS = ("max_devi_v", "min_devi_v", "avg_devi_v", "max_devi_f", "min_devi_f", "avg_devi_f", "devi_e")


def _spread(values: np.ndarray, reference: Optional[np.ndarray]) -> np.ndarray:
    """Over the model axis 0: the standard deviation (population, as np.std), or without a spread
    the RMS difference from ``reference`` (the labels)."""
    if reference is None:
        return np.std(values, axis=0)
    return np.sqrt(np.mean((values - reference[None]) ** 2, axis=0))


def calc_model_devi_f(
    fs: np.ndarray, real_f: Optional[np.ndarray] = None, relative: Optional[float] = None, atomic: bool = False
) -> Tuple[np.ndarray, ...]:
    """Force deviation of each atom, ``eps_i = |std_models(F_i)|`` (norm over x, y, z of the
    per-component spread), and its max, min and mean over the atoms.

    fs: nm x nf x N x 3 (eV/Angstrom); real_f: nf x N x 3 labels, for the RMS real error instead.
    relative: divide eps_i by ``|<F_i>| + relative`` (the models' mean force, or the label with real_f).
    Returns max, min, avg (each nf) and, with ``atomic``, eps (nf x N).
    """
    fs = np.asarray(fs, dtype=np.float64)
    devi = np.linalg.norm(_spread(fs, real_f), axis=-1)  # nf x N
    if relative is not None:
        magnitude = np.linalg.norm(fs.mean(axis=0) if real_f is None else real_f, axis=-1)
        devi = devi / (magnitude + relative)
    out = (devi.max(axis=-1), devi.min(axis=-1), devi.mean(axis=-1))
    return out + (devi,) if atomic else out


def calc_model_devi_v(
    vs: np.ndarray, real_v: Optional[np.ndarray] = None, relative: Optional[float] = None
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Virial deviation: the spread of each of the 9 components, and its max, min and
    ``avg = sqrt(sum of the 9 squared spreads / 9)``.

    vs: nm x nf x 9 virials per atom (eV); real_v: nf x 9 labels per atom, for the RMS real error.
    relative: divide the spreads by ``|<W>| + relative`` (Frobenius norm of the mean virial, or of the label).
    Returns max, min, avg (each nf).
    """
    vs = np.asarray(vs, dtype=np.float64)
    devi = _spread(vs, real_v)  # nf x 9
    if relative is not None:
        magnitude = np.linalg.norm(vs.mean(axis=0) if real_v is None else real_v, axis=-1)
        devi = devi / (magnitude + relative)[:, None]
    return devi.max(axis=-1), devi.min(axis=-1), np.sqrt(np.mean(devi**2, axis=-1))


def calc_model_devi_e(es: np.ndarray, real_e: Optional[np.ndarray] = None) -> np.ndarray:
    """Energy deviation (nf): spread over the models of the energy per atom. es: nm x nf (x 1), eV per
    atom; real_e: nf (x 1) labels per atom, for the RMS real error."""
    es = np.asarray(es, dtype=np.float64)
    nm, nf = es.shape[0], es.shape[1]
    return _spread(es.reshape(nm, nf), None if real_e is None else np.asarray(real_e).reshape(nf))


def model_devi_columns(
    energies: np.ndarray,
    forces: np.ndarray,
    virials: np.ndarray,
    labels: Optional[dict] = None,
    atomic: bool = False,
    relative: Optional[float] = None,
    relative_v: Optional[float] = None,
) -> np.ndarray:
    """The columns after ``step`` of model_devi.out: nf x 7, or nf x (7 + N) with ``atomic``.

    energies: nm x nf total energies (eV); forces: nm x nf x N x 3 (eV/Angstrom); virials: nm x nf x 9
    (eV); labels: {"energy": nf, "force": nf x N x 3, "virial": nf x 9} in the same units, for the RMS
    real error; energies and virials are divided by N here.
    """
    forces = np.asarray(forces, dtype=np.float64)
    natoms = forces.shape[2]
    labels = labels or {}

    def per_atom(value):
        return None if value is None else np.asarray(value, dtype=np.float64) / natoms

    virial = calc_model_devi_v(per_atom(virials), per_atom(labels.get("virial")), relative_v)
    force = calc_model_devi_f(forces, labels.get("force"), relative, atomic)
    energy = calc_model_devi_e(per_atom(energies), per_atom(labels.get("energy")))
    columns = np.stack([*virial, *force[:3], energy], axis=1)
    return np.concatenate([columns, force[3]], axis=1) if atomic else columns


def model_devi_header(atomic: bool) -> str:
    """The column line of model_devi.out (after the ``# `` that marks a header)."""
    return f"{'step':10s}" + "".join(f"{name:19s}" for name in COLUMNS) + (f"{'atm_devi_f(N)':19s}" if atomic else "")


def append_model_devi_out(path: Path, steps: np.ndarray, columns: np.ndarray, title: str, atomic: bool) -> None:
    """Append a block to ``path`` (created if missing): ``# title``, ``# <column names>``, then one line
    per frame, step as %12d and the rest as %19.6e (DeePMD-kit's layout). Written atomically: the
    file is either the old one or the old one plus the whole block."""
    path = Path(path)
    lines = [f"# {title}", f"# {model_devi_header(atomic)}"]
    for step, row in zip(np.asarray(steps, dtype=np.int64), columns):
        lines.append(f"{step:12d}" + "".join(f"{value:19.6e}" for value in row))
    old = path.read_bytes() if path.exists() else b""
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(old + ("\n".join(lines) + "\n").encode()))
