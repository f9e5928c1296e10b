"""Data systems in the deepmd/hdf5 layout: one HDF5 file holding several systems.

A system is addressed as ``file.h5#/group`` (``file.h5#/`` for a system at the file's root). Each
group mirrors a deepmd/npy folder, as dpdata's ``deepmd/hdf5`` writer lays it out:

- ``type.raw``: integer dataset (N,), one type per atom;
- ``type_map.raw``: optional byte-string dataset of element names;
- ``nopbc``: optional dataset (any value) marking a system without periodic boundaries;
- ``set.000``, ``set.001``, ...: groups of datasets named like the npy files (``coord.npy``,
  ``box.npy``, ``energy.npy``, ``force.npy``, ``virial.npy``, ...), first axis the frame.

``H5Store`` gives :class:`deeppot.data.system.DeepmdSystem` the same view of a group as
``FolderStore`` gives of a folder, so one loader validates both.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from deeppot.errors import DataError

# File name endings searched for HDF5 systems inside a data folder.
H5_SUFFIXES = (".h5", ".hdf5")


def split_h5_path(path: str | Path) -> tuple[Path, str] | None:
    """(HDF5 file, absolute group path) named by ``path``, or None when it names a folder.

    ``"data.h5#/water"`` and ``"data.h5#water"`` give ``(Path("data.h5"), "/water")``; an existing
    HDF5 file without ``#`` gives its root group ``"/"``. The file need not exist when ``#`` is given.
    """
    text = str(path)
    if "#" in text and not Path(text).is_dir():
        file, group = text.split("#", 1)
        return Path(file), "/" + group.strip("/")
    file = Path(text)
    if file.is_file() and h5py.is_hdf5(file):
        return file, "/"
    return None


def system_name(file: Path, group: str) -> str:
    """The string naming a system group: ``file.h5#/group``."""
    return f"{file}#{group}"


@contextmanager
def _open(file: Path) -> Iterator[h5py.File]:
    """Open an HDF5 file read-only, turning a missing or unreadable file into DataError."""
    if not file.is_file():
        raise DataError(f"{file}: HDF5 data file not found. Check the path in 'systems'.")
    try:
        handle = h5py.File(file, "r")
    except OSError as err:
        raise DataError(
            f"{file}: not a readable HDF5 file ({err}). Write it with dpdata's deepmd/hdf5 format."
        ) from None
    with handle:
        yield handle


def find_systems(file: Path, group: str = "/") -> list[str]:
    """Every system below ``group`` of ``file`` (itself included): groups holding ``type.raw``.

    Returns sorted names ``file.h5#/group``; empty when there is none.
    """
    with _open(file) as handle:
        if group not in handle or not isinstance(handle[group], h5py.Group):
            raise DataError(
                f"{system_name(file, group)}: no such group in the HDF5 file. "
                f"It has {sorted(handle.keys())} at the top level."
            )
        top = handle[group]
        found = [top.name] if "type.raw" in top else []

        def visit(name: str, obj) -> None:
            if isinstance(obj, h5py.Group) and "type.raw" in obj:
                found.append(obj.name)

        top.visititems(visit)
    return sorted(system_name(file, name) for name in found)


class H5Store:
    """One system group of an open HDF5 file, read through the store interface.

    Entry names are relative to the group, e.g. ``"type.raw"`` or ``"set.000/coord.npy"``.
    """

    def __init__(self, file: Path, group: h5py.Group):
        self.file = file
        self.group = group
        self.name = system_name(file, group.name)

    def where(self, entry: str) -> str:
        """The name of ``entry`` for messages: ``file.h5#/group/set.000/force.npy``."""
        return f"{self.name.rstrip('/')}/{entry}"

    def has(self, entry: str) -> bool:
        """Whether the dataset ``entry`` exists."""
        return isinstance(self.group.get(entry), h5py.Dataset)

    def set_names(self) -> list[str]:
        """Names of the ``set.*`` groups, sorted."""
        return sorted(k for k, v in self.group.items() if k.startswith("set.") and isinstance(v, h5py.Group))

    def read_tokens(self, entry: str) -> list[str]:
        """The elements of a ``.raw`` dataset as strings (byte strings decoded as UTF-8)."""
        values = np.atleast_1d(self.group[entry][()])
        return [v.decode() if isinstance(v, bytes) else str(v) for v in values.ravel()]

    def read_array(self, entry: str) -> np.ndarray:
        """A numeric dataset, read into memory."""
        data = self.group.get(entry)
        array = data[()] if isinstance(data, h5py.Dataset) else None
        if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number):
            raise DataError(
                f"{self.where(entry)}: not a numeric array dataset. Write it with dpdata's "
                "deepmd/hdf5 format."
            )
        return array


@contextmanager
def open_h5_store(file: Path, group: str) -> Iterator[H5Store]:
    """Open ``file`` and yield the store of ``group``; the file is closed on exit."""
    with _open(file) as handle:
        node = handle.get(group)
        if not isinstance(node, h5py.Group):
            raise DataError(
                f"{system_name(file, group)}: no such group in the HDF5 file. "
                f"Systems in it: {find_systems(file) or 'none'}."
            )
        yield H5Store(file, node)
