"""Tensor labels of a data system (spec section 4), read for dipole and polarizability models.

Per set: ``dipole.npy`` (nf, 3) and ``polarizability.npy`` (nf, 9) per frame; ``atomic_dipole.npy`` and
``atomic_polarizability.npy`` (also named ``atom_*.npy``) per atom, either for all N atoms (nf, N*k) or only
for the atoms of the model's selected types (nf, nsel*k, DeePMD-kit's ``sel_type`` layout), in file order;
the latter are spread over all atoms with zeros for the others. Units are the labels' own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deeppot import keys
from deeppot.errors import DataError


def label_files(label: str) -> list[str]:
    """File names that may hold ``label`` (a key of ``keys.TENSOR_LABELS``), preferred first."""
    if keys.TENSOR_LABELS[label][1]:
        return ["atomic_" + label[len("atom_"):] + ".npy", label + ".npy"]
    return [label + ".npy"]


def read_tensor_labels(
    store, set_names: Sequence[str], frames_per_set: Sequence[int], selected: np.ndarray, labels: Sequence[str]
) -> dict[str, np.ndarray]:
    """{label: (nf, k) per frame, or (nf, N, k) per atom in file order} for each of ``labels`` the system has.

    ``store`` is the system's store (:class:`deeppot.data.system.Store`); ``frames_per_set`` the frames of each
    set; ``selected`` (N,) bool marks the atoms of the model's selected types. A label in some sets but not in
    all, or of the wrong size, is a DataError naming the file."""
    natoms = selected.size
    found: dict[str, np.ndarray] = {}
    for label in labels:
        names = label_files(label)
        entries = [next((f"{s}/{n}" for n in names if store.has(f"{s}/{n}")), None) for s in set_names]
        if all(entry is None for entry in entries):
            continue
        missing = [s for s, entry in zip(set_names, entries) if entry is None]
        if missing:
            raise DataError(f"{store.name}: {names[0]} is in some sets but missing in {', '.join(missing)}. "
                            "Provide it in every set or in none.")
        found[label] = np.concatenate([
            _read_label(store, entry, nframes, label, natoms, selected)
            for entry, nframes in zip(entries, frames_per_set)
        ])
    return found


def _read_label(store, entry: str, nframes: int, label: str, natoms: int, selected: np.ndarray) -> np.ndarray:
    ncomp, per_atom = keys.TENSOR_LABELS[label]
    array = np.asarray(store.read_array(entry), dtype=np.float64)
    nsel = int(selected.sum())
    if not per_atom and array.size == nframes * ncomp:
        out = array.reshape(nframes, ncomp)
    elif per_atom and array.size == nframes * natoms * ncomp:
        out = array.reshape(nframes, natoms, ncomp)
    elif per_atom and array.size == nframes * nsel * ncomp:
        out = np.zeros((nframes, natoms, ncomp))
        out[:, selected] = array.reshape(nframes, nsel, ncomp)
    else:
        per_frame = array.size / nframes
        expected = (f"{natoms} x {ncomp} (every atom) or {nsel} x {ncomp} (the atoms of the model's selected types)"
                    if per_atom else f"{ncomp}")
        raise DataError(f"{store.where(entry)}: has {per_frame:g} values per frame for the {nframes} frames of "
                        f"coord.npy, expected {expected}. Per-frame tensors go in dipole.npy / polarizability.npy, "
                        "per-atom ones in atomic_dipole.npy / atomic_polarizability.npy.")
    if not np.isfinite(out).all():
        raise DataError(f"{store.where(entry)}: NaN or inf values. Remove or fix those frames.")
    return out
