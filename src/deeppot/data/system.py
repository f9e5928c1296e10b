"""One DeePMD-kit data system in the deepmd/npy or deepmd/hdf5 layout.

A system is a folder holding ``type.raw`` (one integer type per atom), an optional
``type_map.raw`` (element names, one per line), an optional empty ``nopbc`` file, and one or
more ``set.*`` folders of ``.npy`` arrays whose first axis is the frame. Units: Angstrom, eV,
eV/Angstrom; the virial is in eV. Every array is returned in float64.

Mixed-type systems (DeePMD-kit's format for mixed-type descriptors such as se_atten, spec section 4):
every set holds ``real_atom_types.npy`` (nframes x natoms integers), the types of each frame's atoms,
-1 for a virtual (padding) atom; ``type.raw`` then only gives the number of atoms, and ``type_map.raw``
names the type indices (needed unless the model's type_map does). Frames of different compositions
share one system; ``DeepmdSystem.atype`` is then per frame.

An HDF5 group ``file.h5#/group`` with the same entries as datasets is read the same way: the
loader sees either through a small store (``FolderStore`` here, ``H5Store`` in
:mod:`deeppot.data.hdf5`) and validates both with the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from deeppot import keys
from deeppot.data.hdf5 import open_h5_store, split_h5_path
from deeppot.data.tensor_labels import read_tensor_labels
from deeppot.errors import DataError

# |det(box)| below this volume (Angstrom^3) counts as a singular cell.
_MIN_CELL_VOLUME = 1e-6

# Per-frame atom types of a mixed-type system (set.*/real_atom_types.npy).
_REAL_TYPES = "real_atom_types"

# Optional label files; each must be in every set or in none.
_LABEL_FILES = (keys.ENERGY, keys.FORCE, keys.VIRIAL)


class Store(Protocol):
    """Read access to the entries of one system, named relative to it (``"set.000/coord.npy"``).

    ``name`` is the system's path for messages and ``DeepmdSystem.path``.
    """

    name: str

    def where(self, entry: str) -> str:
        """The full name of ``entry`` for messages."""

    def has(self, entry: str) -> bool:
        """Whether the file (or dataset) ``entry`` exists."""

    def set_names(self) -> list[str]:
        """Names of the ``set.*`` entries, sorted."""

    def read_tokens(self, entry: str) -> list[str]:
        """The whitespace-separated tokens of a ``.raw`` entry."""

    def read_array(self, entry: str) -> np.ndarray:
        """A numeric array entry (memory-mapped where possible); DataError if unreadable."""


class FolderStore:
    """A deepmd/npy system folder."""

    def __init__(self, root: Path):
        self.root = root
        self.name = str(root)

    def where(self, entry: str) -> str:
        return str(self.root / entry)

    def has(self, entry: str) -> bool:
        return (self.root / entry).is_file()

    def set_names(self) -> list[str]:
        return sorted(p.name for p in self.root.glob("set.*") if p.is_dir())

    def read_tokens(self, entry: str) -> list[str]:
        return (self.root / entry).read_text().split()

    def read_array(self, entry: str) -> np.ndarray:
        """Memory-map a .npy file, turning read failures into DataError."""
        try:
            return np.load(self.root / entry, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DataError(
                f"{self.where(entry)}: not a readable .npy array ({err}). Re-create it with numpy.save."
            ) from None


def open_store(path: str | Path) -> AbstractContextManager[Store]:
    """The store of the system at ``path``: a folder, or ``file.h5#/group`` in an HDF5 file."""
    h5 = split_h5_path(path)
    if h5 is not None:
        return open_h5_store(*h5)
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: data system folder not found. Check the path in 'systems'.")
    return nullcontext(FolderStore(root))


TRAINING_TYPE_MAP_HINT = "Add them to model/type_map in input.json."
"""What to do about an element the type_map lacks, when the type_map is input.json's."""

@dataclass
class DeepmdSystem:
    """Frames of one system, concatenated over its sets, in float64.

    Shapes use nf = ``nframes`` and N = ``natoms``.

    Attributes
    ----------
    path : str
        The system folder, or ``file.h5#/group`` for a system in an HDF5 file.
    natoms : int
        Atoms per frame, N.
    atype : np.ndarray
        (N,) int64 model types (indices into the model ``type_map``; the raw ``type.raw``
        indices when there is no name mapping); for a mixed-type system (nf, N), the types of
        each frame, -1 for a virtual atom. :meth:`frame_types` gives (k, N) for either.
    type_names : list[str]
        Name of each model type, for display: ``type_names[atype[i]]`` names atom i.
    nframes : int
        Number of frames, nf.
    pbc : bool
        False when the folder has a ``nopbc`` file.
    coord : np.ndarray
        (nf, N, 3) Cartesian coordinates, Angstrom.
    box : np.ndarray | None
        (nf, 3, 3) cell, rows are the cell vectors a, b, c, Angstrom; None without PBC.
    energy : np.ndarray | None
        (nf,) total energy, eV.
    force : np.ndarray | None
        (nf, N, 3) forces, eV/Angstrom.
    virial : np.ndarray | None
        (nf, 9) virial, eV, row-major xx xy xz yx yy yz zx zy zz.
    fparam : np.ndarray | None
        (nf, numb_fparam) frame parameters; None when the model uses none.
    aparam : np.ndarray | None
        (nf, N, numb_aparam) atomic parameters; None when the model uses none.
    atom_order : np.ndarray
        (N,) int64: atom i here is atom ``atom_order[i]`` of the files. The identity unless
        the system was loaded with ``sort_atoms=True``.
    tensors : dict[str, np.ndarray]
        The tensor labels asked for and present (keys of ``keys.TENSOR_LABELS``): (nf, k) per frame,
        (nf, N, k) per atom (:mod:`deeppot.data.tensor_labels`).
    """

    path: str
    natoms: int
    atype: np.ndarray
    type_names: list[str]
    nframes: int
    pbc: bool
    coord: np.ndarray
    box: np.ndarray | None
    energy: np.ndarray | None
    force: np.ndarray | None
    virial: np.ndarray | None
    fparam: np.ndarray | None
    aparam: np.ndarray | None
    atom_order: np.ndarray
    tensors: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def mixed_type(self) -> bool:
        """Whether the atom types vary per frame (``real_atom_types.npy``); atype is then (nf, N)."""
        return self.atype.ndim == 2

    def frame_types(self, frames: np.ndarray) -> np.ndarray:
        """(k, N) int64 model types of the frames ``frames`` ((k,) frame numbers), -1 for a virtual atom."""
        frames = np.asarray(frames, dtype=np.int64)
        return np.array(self.atype[frames]) if self.mixed_type else np.tile(self.atype, (frames.size, 1))

    def has(self, label: str) -> bool:
        """Whether the array ``label`` (e.g. ``keys.ENERGY``, ``keys.BOX``) is present."""
        if label not in (keys.BOX, *_LABEL_FILES, keys.FPARAM, keys.APARAM):
            raise KeyError(f"unknown data array {label!r}")
        return getattr(self, label) is not None

    def to_file_order(self, per_atom: np.ndarray, axis: int = 1) -> np.ndarray:
        """Put a per-atom array (atoms along ``axis``, in this system's order) back into the
        atom order of the files, e.g. (nf, N, 3) predicted forces of a sorted system."""
        out = np.empty_like(per_atom)
        index = [slice(None)] * per_atom.ndim
        index[axis] = self.atom_order
        out[tuple(index)] = per_atom
        return out

    @classmethod
    def load(
        cls,
        path: str | Path,
        type_map: list[str] | None,
        sort_atoms: bool = False,
        numb_fparam: int = 0,
        numb_aparam: int = 0,
        type_map_hint: str = TRAINING_TYPE_MAP_HINT,
        tensor_labels: Sequence[str] = (),
        sel_type: Sequence[int] | None = None,
    ) -> DeepmdSystem:
        """Read and validate a deepmd/npy system folder or deepmd/hdf5 group.

        Parameters
        ----------
        path
            The system folder (the one holding ``type.raw``), or ``file.h5#/group`` for a
            system in an HDF5 file.
        type_map
            The model's element names. When given and the system has ``type_map.raw``, types
            are remapped by element name; otherwise the raw indices are the model types.
        sort_atoms
            Reorder atoms stably by model type (as DeePMD-kit does in training).
        numb_fparam, numb_aparam
            Frame and atomic parameters per frame / per atom that the model needs. When 0
            the corresponding files are not read.
        type_map_hint
            What the user should do when the system has an element ``type_map`` lacks; it
            depends on where ``type_map`` came from (input.json, the model file, an option).
        tensor_labels, sel_type
            Tensor labels to read (keys of ``keys.TENSOR_LABELS``) and the model types whose atoms an
            atomic label may be limited to (None: all types).

        Raises
        ------
        DataError
            For any missing, malformed or inconsistent file; the message names the file.
        """
        with open_store(path) as store:
            system = cls._load(store, type_map, sort_atoms, numb_fparam, numb_aparam, type_map_hint)
            if tensor_labels:
                if system.mixed_type and sel_type is not None:
                    raise DataError(f"{store.name}: atomic tensor labels of selected types (sel_type) are not "
                                    "supported for a mixed-type system (real_atom_types.npy); use standard systems.")
                selected = np.ones(system.natoms, dtype=bool) if sel_type is None else np.isin(system.atype, sel_type)
                coords = [store.read_array(f"{name}/coord.npy") for name in store.set_names()]
                frames = [int(c.shape[0]) if c.ndim > 1 else 1 for c in coords]
                order = np.argsort(system.atom_order)  # file atom -> position here
                labels = read_tensor_labels(store, store.set_names(), frames, selected[order], tensor_labels)
                system.tensors = {k: v[:, system.atom_order] if v.ndim == 3 else v for k, v in labels.items()}
            return system

    @classmethod
    def _load(
        cls,
        store: Store,
        type_map: list[str] | None,
        sort_atoms: bool,
        numb_fparam: int,
        numb_aparam: int,
        type_map_hint: str,
    ) -> DeepmdSystem:
        """``load`` on an open store; every array is read before the store closes."""
        raw_types = _read_type_raw(store)
        natoms = len(raw_types)
        pbc = not store.has("nopbc")

        set_names = store.set_names()
        if not set_names:
            raise DataError(
                f"{store.name}: no set.* folder. Put the frames in set.000/coord.npy, "
                "set.000/box.npy, ..."
            )
        sets = [_read_set(store, d, natoms, pbc, numb_fparam, numb_aparam) for d in set_names]
        mixed = [d for d, s in zip(set_names, sets) if _REAL_TYPES in s]
        if mixed and len(mixed) < len(sets):
            standard = [d for d in set_names if d not in mixed]
            raise DataError(
                f"{store.name}: {_REAL_TYPES}.npy is in {', '.join(mixed)} but missing in {', '.join(standard)}. "
                "A system is mixed-type in every set or in none: split it into two systems."
            )
        if mixed:
            real_types = [s.pop(_REAL_TYPES) for s in sets]
            atype, type_names = _mixed_model_types(store, set_names, real_types, type_map, type_map_hint)
        else:
            atype, type_names = _model_types(store, raw_types, type_map, type_map_hint)
        for name in (*_LABEL_FILES, keys.FPARAM, keys.APARAM):
            present = [d for d, s in zip(set_names, sets) if name in s]
            if present and len(present) < len(sets):
                missing = [d for d, s in zip(set_names, sets) if name not in s]
                raise DataError(
                    f"{store.name}: {name}.npy is in {', '.join(present)} but missing in "
                    f"{', '.join(missing)}. Provide it in every set or in none."
                )

        def joined(name: str) -> np.ndarray | None:
            if name not in sets[0]:
                return None
            parts = [s[name] for s in sets]
            return parts[0] if len(parts) == 1 else np.concatenate(parts)

        box = joined(keys.BOX)
        force = joined(keys.FORCE)
        aparam = joined(keys.APARAM)
        energy = joined(keys.ENERGY)
        if sort_atoms and not mixed:  # a mixed-type system keeps the file order (types vary per frame)
            order = np.argsort(atype, kind="stable").astype(np.int64)
        else:
            order = np.arange(natoms, dtype=np.int64)
        coord = _per_atom(joined(keys.COORD), natoms, order, sort_atoms)
        system = cls(
            path=store.name,
            natoms=natoms,
            atype=atype[..., order],
            type_names=type_names,
            nframes=coord.shape[0],
            pbc=pbc,
            coord=coord,
            box=None if box is None else box.reshape(-1, 3, 3),
            energy=None if energy is None else energy.reshape(-1),
            force=None if force is None else _per_atom(force, natoms, order, sort_atoms),
            virial=joined(keys.VIRIAL),
            fparam=joined(keys.FPARAM),
            aparam=None if aparam is None else _per_atom(aparam, natoms, order, sort_atoms),
            atom_order=order,
        )
        if numb_fparam > 0 and system.fparam is None:
            raise DataError(
                f"{store.where(set_names[0] + '/fparam.npy')}: missing; the model has "
                f"numb_fparam = {numb_fparam}. "
                "Add fparam.npy of shape (nframes, numb_fparam) to every set."
            )
        if numb_aparam > 0 and system.aparam is None:
            raise DataError(
                f"{store.where(set_names[0] + '/aparam.npy')}: missing; the model has "
                f"numb_aparam = {numb_aparam}. "
                "Add aparam.npy of shape (nframes, natoms * numb_aparam) to every set."
            )
        return system


def _per_atom(flat: np.ndarray, natoms: int, order: np.ndarray, reorder: bool) -> np.ndarray:
    """(nf, N*k) -> (nf, N, k), atoms permuted by ``order`` when ``reorder``."""
    arr = flat.reshape(flat.shape[0], natoms, -1)
    return arr[:, order] if reorder else arr


def _read_type_raw(store: Store) -> np.ndarray:
    """(N,) int64 raw atom types from ``type.raw`` (whitespace-separated integers)."""
    path = store.where("type.raw")
    if not store.has("type.raw"):
        raise DataError(
            f"{path}: missing. Every system folder needs type.raw with one integer type per atom."
        )
    tokens = store.read_tokens("type.raw")
    if not tokens:
        raise DataError(f"{path}: empty. Write one integer type per atom.")
    try:
        types = np.array([int(t) for t in tokens], dtype=np.int64)
    except ValueError:
        bad = next(t for t in tokens if not t.lstrip("-").isdigit())
        raise DataError(
            f"{path}: {bad!r} is not an integer. type.raw holds 0-based integer types, "
            "one per atom; element names go in type_map.raw."
        ) from None
    if types.min() < 0:
        raise DataError(f"{path}: negative type {types.min()}. Types are 0-based indices.")
    return types


def _model_types(
    store: Store, raw_types: np.ndarray, type_map: list[str] | None, type_map_hint: str
) -> tuple[np.ndarray, list[str]]:
    """Map raw types to model types; return (atype (N,) int64, names of the model types)."""
    map_file = store.where("type_map.raw")
    system_names = store.read_tokens("type_map.raw") if store.has("type_map.raw") else None
    if system_names is not None and raw_types.max() >= len(system_names):
        raise DataError(
            f"{store.where('type.raw')}: type {raw_types.max()} is out of range of type_map.raw, which "
            f"names {len(system_names)} elements {system_names}. Fix type.raw or add the missing "
            f"names to {map_file}."
        )
    if type_map and system_names is not None:
        missing = [name for name in system_names if name not in type_map]
        if missing:
            raise DataError(
                f"{map_file}: elements {missing} are not in the type_map {list(type_map)}. {type_map_hint}"
            )
        lookup = np.array([type_map.index(name) for name in system_names], dtype=np.int64)
        return lookup[raw_types], list(type_map)
    if type_map:
        if raw_types.max() >= len(type_map):
            raise DataError(
                f"{store.where('type.raw')}: type {raw_types.max()} is out of range of the type_map "
                f"{list(type_map)}. Fix type.raw, or: {type_map_hint}"
            )
        return raw_types, list(type_map)
    if system_names is not None:
        return raw_types, system_names
    return raw_types, [f"type_{i}" for i in range(int(raw_types.max()) + 1)]


def _read_real_types(store: Store, set_name: str, nframes: int, natoms: int) -> np.ndarray:
    """(nframes, N) int64 raw types of a mixed-type set's real_atom_types.npy (-1: virtual atom)."""
    entry = f"{set_name}/{_REAL_TYPES}.npy"
    file = store.where(entry)
    raw = _check_shape(store.read_array(entry), file, nframes, natoms, f"{natoms} atoms (type.raw)")
    values = np.asarray(raw)
    if not np.issubdtype(values.dtype, np.number) or not np.all(np.isfinite(values)) \
            or not np.array_equal(values, np.round(values)):
        raise DataError(f"{file}: holds non-integer values; it must hold integer types, -1 for a virtual atom.")
    types = values.astype(np.int64)
    if types.min(initial=0) < -1:
        frame, atom = np.argwhere(types < -1)[0]
        raise DataError(
            f"{file}: type {types[frame, atom]} of atom {atom} in frame {frame} (0-based); types are 0-based "
            "indices into type_map.raw, -1 for a virtual atom."
        )
    return types


def _mixed_model_types(
    store: Store, set_names: list[str], real_types: list[np.ndarray], type_map: list[str] | None, type_map_hint: str
) -> tuple[np.ndarray, list[str]]:
    """Per-frame model types (nf, N) int64 of a mixed-type system, -1 for a virtual atom, from each set's
    raw types (real_atom_types.npy), remapped by element name when the system has type_map.raw and the model a
    type_map (as DeePMD-kit). Returns (atype, names of the model types)."""
    system_names = store.read_tokens("type_map.raw") if store.has("type_map.raw") else None
    names = system_names if system_names is not None else (list(type_map) if type_map else None)
    if names is None:
        raise DataError(
            f"{store.where('type_map.raw')}: missing. A mixed-type system (set.*/{_REAL_TYPES}.npy) needs "
            "type_map.raw, the element name of each type index, one per line."
        )
    source = "type_map.raw" if system_names is not None else f"the type_map {list(type_map)}"
    for set_name, types in zip(set_names, real_types):
        if types.max(initial=-1) >= len(names):
            frame, atom = np.argwhere(types >= len(names))[0]
            raise DataError(
                f"{store.where(set_name + '/' + _REAL_TYPES + '.npy')}: type {types[frame, atom]} of atom {atom} in "
                f"frame {frame} (0-based) is out of range of {source}, which names {len(names)} elements "
                f"{names}. Fix the file or add the missing names to {store.where('type_map.raw')}."
            )
    raw = real_types[0] if len(real_types) == 1 else np.concatenate(real_types)
    if not type_map or system_names is None:
        return raw, list(names)
    missing = [name for name in system_names if name not in type_map]
    if missing:
        raise DataError(
            f"{store.where('type_map.raw')}: elements {missing} are not in the type_map {list(type_map)}. "
            f"{type_map_hint}"
        )
    lookup = np.array([type_map.index(name) for name in system_names] + [-1], dtype=np.int64)  # -1 stays -1
    return lookup[raw], list(type_map)


def _read_set(
    store: Store, set_name: str, natoms: int, pbc: bool, numb_fparam: int, numb_aparam: int
) -> dict[str, np.ndarray]:
    """Read the arrays of one set, flattened per frame: {name: (nf, ndof) float64}.

    Arrays already in float64 stay memory-mapped (npy); others are converted once.
    """
    coord_file = f"{set_name}/coord.npy"
    if not store.has(coord_file):
        raise DataError(
            f"{store.where(coord_file)}: missing. Every set needs coord.npy of shape "
            "(nframes, natoms * 3)."
        )
    coord_raw = store.read_array(coord_file)
    nframes = coord_raw.shape[0] if coord_raw.ndim > 1 else 1
    expected = {
        keys.COORD: (3 * natoms, f"3 x {natoms} atoms"),
        keys.BOX: (9, "9 (3 x 3 cell)"),
        keys.ENERGY: (1, "1"),
        keys.FORCE: (3 * natoms, f"3 x {natoms} atoms"),
        keys.VIRIAL: (9, "9 (3 x 3 tensor)"),
    }
    if numb_fparam > 0:
        expected[keys.FPARAM] = (numb_fparam, f"numb_fparam = {numb_fparam}")
    if numb_aparam > 0:
        expected[keys.APARAM] = (numb_aparam * natoms, f"{numb_aparam} x {natoms} atoms")

    out: dict[str, np.ndarray] = {}
    for name, (ndof, meaning) in expected.items():
        entry = f"{set_name}/{name}.npy"
        file = store.where(entry)
        if name == keys.BOX and not pbc:
            continue
        if not store.has(entry):
            if name == keys.BOX:
                raise DataError(
                    f"{file}: missing in a periodic system. Add box.npy of shape (nframes, 9), "
                    "or, for a molecule without periodic boundaries, add "
                    f"{store.where('nopbc')} (an empty file; in HDF5 any dataset)."
                )
            continue
        raw = coord_raw if name == keys.COORD else store.read_array(entry)
        arr = _check_shape(raw, file, nframes, ndof, meaning)
        arr = np.asarray(arr, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        if bad.size:
            raise DataError(
                f"{file}: NaN or inf in frame {bad[0]} (0-based, {bad.size} bad frames in all). "
                "Remove or fix those frames."
            )
        out[name] = arr
    if store.has(f"{set_name}/{_REAL_TYPES}.npy"):
        out[_REAL_TYPES] = _read_real_types(store, set_name, nframes, natoms)
    if keys.BOX in out:
        volume = np.linalg.det(out[keys.BOX].reshape(-1, 3, 3))
        singular = np.flatnonzero(np.abs(volume) < _MIN_CELL_VOLUME)
        if singular.size:
            raise DataError(
                f"{store.where(set_name + '/box.npy')}: the cell of frame {singular[0]} (0-based) is singular "
                f"(volume {volume[singular[0]]:.3g} A^3). Rows must be three independent cell "
                "vectors; for a molecule use an empty nopbc file instead of a box."
            )
    return out


def _check_shape(
    arr: np.ndarray, file: str, nframes: int, ndof: int, meaning: str
) -> np.ndarray:
    """Reshape ``arr`` to (nframes, ndof) or raise a DataError that says what is wrong.

    Only the total size must match, as DeePMD-kit reshapes by size (e.g. an aparam.npy of
    shape (1, nframes * natoms) is accepted).
    """
    if arr.size == nframes * ndof:
        return arr.reshape(nframes, ndof)
    frames_here = arr.shape[0] if arr.ndim > 1 else (1 if arr.size == ndof else arr.size)
    if frames_here != nframes and arr.size % ndof == 0:
        raise DataError(
            f"{file}: has {arr.size // ndof} frames but coord.npy of the same set has {nframes}. "
            "All files of one set must hold the same frames."
        )
    if arr.size % nframes == 0:
        raise DataError(
            f"{file}: has {arr.size // nframes} values per frame, expected {ndof} = {meaning}. "
            "Check that the file belongs to this system."
        )
    raise DataError(
        f"{file}: has shape {arr.shape}, expected ({nframes}, {ndof}) with {ndof} = {meaning} "
        f"for the {nframes} frames of coord.npy."
    )
