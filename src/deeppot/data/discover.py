"""Turn the ``systems`` entry of input.json into a list of system folders or HDF5 groups."""

from __future__ import annotations

import os
from pathlib import Path

import h5py

from deeppot.data.hdf5 import H5_SUFFIXES, find_systems, open_h5_store, split_h5_path, system_name
from deeppot.errors import DataError


def expand_systems(
    systems: str | list[str], base: Path | None = None, option: str = "'systems' in input.json"
) -> list[str]:
    """System folders (and HDF5 groups, ``file.h5#/group``) named by ``systems``.

    Parameters
    ----------
    systems
        A single path: searched recursively (itself included) for folders holding
        ``type.raw`` and for ``.h5``/``.hdf5`` files, whose groups holding ``type.raw`` are
        systems; returned sorted. An HDF5 file gives its systems, ``file.h5#/group`` the
        systems at or below that group. A list: taken as given, in order, except that an
        HDF5 file without ``#/group`` stands for all its systems.
    base
        Folder that relative paths are resolved against (e.g. the folder of input.json);
        the current directory when None. Returned paths are normalised (no ``a/../``).
    option
        Where the user gave ``systems``, for the messages (``-s/--system`` for a command).

    Raises
    ------
    DataError
        When a path does not exist or a search finds no system.
    """
    if isinstance(systems, str):
        top = _normalised(base, systems)
        h5 = split_h5_path(top)
        if h5 is not None:
            found = find_systems(*h5)
        elif not top.is_dir():
            raise DataError(f"{top}: data folder not found. Check {option}.")
        else:
            found = sorted(_search_folder(top))
        if not found:
            raise DataError(
                f"{top}: no data system found (no folder below it holds a type.raw file, and no "
                f"HDF5 group does). Point {option} at data in the deepmd/npy or deepmd/hdf5 format."
            )
        return found
    if not systems:
        raise DataError(f"{option} is an empty list. Name at least one data system folder.")
    out = []
    for entry in systems:
        path = _normalised(base, entry)
        h5 = split_h5_path(path)
        if h5 is None:
            if not path.is_dir():
                raise DataError(f"{path}: data system folder not found. Check {option}.")
            out.append(str(path))
        elif "#" in str(entry):
            with open_h5_store(*h5):  # the file and the group exist
                out.append(system_name(*h5))
        else:
            systems_in_file = find_systems(*h5)
            if not systems_in_file:
                raise DataError(f"{path}: no HDF5 group in it holds type.raw. Check {option}.")
            out.extend(systems_in_file)
    return out


def _normalised(base: Path | None, entry: str) -> Path:
    """``entry`` resolved against ``base`` (as given when None), without ``a/../`` detours."""
    return Path(os.path.normpath(entry if base is None else Path(base) / entry))


def _search_folder(top: Path) -> list[str]:
    """Folders below ``top`` holding ``type.raw``, and the systems of HDF5 files below it."""
    found = []
    for path in top.rglob("*"):
        if path.name == "type.raw" and path.is_file():
            found.append(str(path.parent))
        elif path.suffix.lower() in H5_SUFFIXES and path.is_file() and h5py.is_hdf5(path):
            found.extend(find_systems(path))
    return found
