"""deepmd/hdf5 data: the same systems as deepmd/npy, addressed as ``file.h5#/group``."""

from __future__ import annotations

from pathlib import Path

import dpdata
import h5py
import numpy as np
import pytest

from deeppot.data import DeepmdSystem, expand_systems
from deeppot.errors import DataError

ARRAYS = ("coord", "box", "energy", "force", "virial", "atype", "atom_order")


def labeled_system(nframes: int = 7, atom_names=("O", "H"), types=(1, 0, 1, 1, 0), seed: int = 0,
                   nopbc: bool = False) -> dpdata.LabeledSystem:
    """A synthetic dpdata LabeledSystem with random coordinates and labels."""
    rng = np.random.default_rng(seed)
    types = np.array(types)
    natoms = len(types)
    data = {
        "atom_names": list(atom_names),
        "atom_numbs": [int((types == t).sum()) for t in range(len(atom_names))],
        "atom_types": types,
        "orig": np.zeros(3),
        "cells": np.tile(6.0 * np.eye(3), (nframes, 1, 1)) + rng.uniform(0, 0.1, (nframes, 3, 3)),
        "coords": rng.uniform(0, 6, (nframes, natoms, 3)),
        "energies": rng.normal(size=nframes),
        "forces": rng.normal(size=(nframes, natoms, 3)),
        "virials": rng.normal(size=(nframes, 3, 3)),
    }
    if nopbc:
        data["nopbc"] = True
    return dpdata.LabeledSystem(data=data)


def write_both(tmp_path: Path, system: dpdata.LabeledSystem, group: str = "sys") -> tuple[Path, str]:
    """Write ``system`` as an npy folder (sets of 3 frames) and as a group of an .h5 file."""
    folder = tmp_path / "npy"
    system.to("deepmd/npy", str(folder), set_size=3)
    h5 = tmp_path / "data.h5"
    with h5py.File(h5, "a") as handle:
        system.to("deepmd/hdf5", handle.create_group(group), set_size=3)
    return folder, f"{h5}#/{group}"


def assert_same(a: DeepmdSystem, b: DeepmdSystem) -> None:
    assert (a.natoms, a.nframes, a.pbc, a.type_names) == (b.natoms, b.nframes, b.pbc, b.type_names)
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.mark.parametrize("type_map", [None, ["H", "O"], ["C", "O", "H"]])
@pytest.mark.parametrize("sort_atoms", [False, True])
def test_hdf5_round_trip_equals_npy(tmp_path, type_map, sort_atoms):
    system = labeled_system()
    folder, group = write_both(tmp_path, system)
    from_npy = DeepmdSystem.load(folder, type_map, sort_atoms=sort_atoms)
    from_h5 = DeepmdSystem.load(group, type_map, sort_atoms=sort_atoms)
    assert from_h5.path == group
    assert from_h5.nframes == 7  # three sets: 3 + 3 + 1
    assert_same(from_npy, from_h5)
    np.testing.assert_allclose(from_h5.energy, system["energies"])
    assert from_h5.type_names == (type_map or ["O", "H"])


def test_hdf5_without_pbc(tmp_path):
    folder, group = write_both(tmp_path, labeled_system(nopbc=True))
    from_h5 = DeepmdSystem.load(group, None)
    assert not from_h5.pbc and from_h5.box is None
    assert_same(DeepmdSystem.load(folder, None), from_h5)


def test_expand_hdf5_file_groups_and_folder_search(tmp_path):
    h5 = tmp_path / "data" / "many.h5"
    h5.parent.mkdir()
    with h5py.File(h5, "w") as handle:
        for name in ("water", "deep/nested/sys", "deep/other"):
            labeled_system(nframes=2).to("deepmd/hdf5", handle.create_group(name))
        handle.create_group("not_a_system").create_dataset("x", data=np.zeros(3))
    labeled_system(nframes=2).to("deepmd/npy", str(tmp_path / "data" / "npy_sys"))

    expected = [f"{h5}#/deep/nested/sys", f"{h5}#/deep/other", f"{h5}#/water"]
    assert expand_systems(str(h5)) == expected
    assert expand_systems("many.h5", base=h5.parent) == expected
    assert expand_systems(f"{h5}#/deep") == expected[:2]
    assert expand_systems("data", base=tmp_path) == sorted([*expected, str(tmp_path / "data" / "npy_sys")])
    # a list entry with '#' is taken as given (normalised), a bare HDF5 file gives all its systems
    assert expand_systems([f"{h5}#water", str(h5)]) == [expected[2], *expected]
    for path in expected:
        assert DeepmdSystem.load(path, None).nframes == 2


def test_expand_hdf5_errors(tmp_path):
    h5 = tmp_path / "empty.h5"
    with h5py.File(h5, "w") as handle:
        handle.create_group("nothing")
    with pytest.raises(DataError, match="no data system found"):
        expand_systems(str(h5))
    with pytest.raises(DataError, match="no such group") as info:
        expand_systems(f"{h5}#/missing")
    assert "nothing" in str(info.value)
    with pytest.raises(DataError, match="not found"):
        expand_systems(f"{tmp_path / 'absent.h5'}#/sys")
    with pytest.raises(DataError, match="no such group"):
        expand_systems([f"{h5}#/missing"])


def test_hdf5_validation_names_the_dataset(tmp_path):
    _, group = write_both(tmp_path, labeled_system())
    h5 = tmp_path / "data.h5"
    with h5py.File(h5, "a") as handle:
        del handle["sys/set.000/force.npy"]
        handle["sys/set.000/force.npy"] = np.zeros((3, 14))
    with pytest.raises(DataError) as info:
        DeepmdSystem.load(group, None)
    message = str(info.value)
    assert f"{h5}#/sys/set.000/force.npy" in message
    assert "14 values per frame, expected 15 = 3 x 5 atoms" in message

    with h5py.File(h5, "a") as handle:
        del handle["sys/set.000/force.npy"]
    with pytest.raises(DataError, match="force.npy is in set.001, set.002 but missing in set.000"):
        DeepmdSystem.load(group, None)

    with h5py.File(h5, "a") as handle:
        del handle["sys/type.raw"]
    with pytest.raises(DataError, match=f"{h5}#/sys/type.raw: missing"):
        DeepmdSystem.load(group, None)


def test_hdf5_missing_box_unknown_element_and_group(tmp_path):
    _, group = write_both(tmp_path, labeled_system())
    h5 = tmp_path / "data.h5"
    with pytest.raises(DataError, match=r"elements \['O'\] are not in the type_map.*model/type_map in input.json"):
        DeepmdSystem.load(group, ["H", "C"])
    with pytest.raises(DataError, match="no such group"):
        DeepmdSystem.load(f"{h5}#/other", None)
    with h5py.File(h5, "a") as handle:
        del handle["sys/set.001/box.npy"]
    with pytest.raises(DataError) as info:
        DeepmdSystem.load(group, None)
    assert f"{h5}#/sys/set.001/box.npy: missing" in str(info.value) and "nopbc" in str(info.value)


def test_not_an_hdf5_file(tmp_path):
    fake = tmp_path / "fake.h5"
    fake.write_text("not hdf5")
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        DeepmdSystem.load(f"{fake}#/sys", None)
