"""Input of dipole and polarizability models: the fitting_net and loss sections (DeePMD-kit's keys, the sel_type /
atom_exclude_types relation, a loss that cannot train the fitting) and the tensor labels of a data system."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from deeppot import keys
from deeppot.config import validate_input
from deeppot.data import DeepmdSystem
from deeppot.errors import ConfigError, DataError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SHARED = Path(__file__).resolve().parents[2].parent / "shared/data"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name / "input.json").read_text())


def error_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate_input(raw)
    return str(info.value)


@pytest.mark.parametrize("name, fitting", [("water_dipole", "dipole"), ("water_polar", "polar")])
def test_examples_validate_with_deepmd_defaults(name, fitting):
    config = validate_input(example(name))
    assert config.model.fitting_net.type == fitting and config.loss.type == "tensor"
    assert config.model.atom_exclude_types == [1]
    assert config.model.fitting_net.resnet_dt is True and config.model.fitting_net.sel_type is None
    if fitting == "polar":
        assert config.model.fitting_net.fit_diag is False
        assert config.model.fitting_net.shift_diag is True and config.model.fitting_net.scale == 1.0


@pytest.mark.parametrize("alias", ["sel_type", "dipole_type"])
def test_sel_type_sets_atom_exclude_types(alias):
    raw = example("water_dipole")
    del raw["model"]["atom_exclude_types"]
    raw["model"]["fitting_net"][alias] = 0  # an int is one type, as in DeePMD-kit
    config = validate_input(raw)
    assert config.model.fitting_net.sel_type == [0] and config.model.atom_exclude_types == [1]


def test_sel_type_naming_a_missing_type():
    raw = example("water_polar")
    raw["model"]["fitting_net"]["pol_type"] = [0, 2]
    assert "model/fitting_net/sel_type/1: type index 2 is out of range" in error_of(raw)


def test_sel_type_contradicting_atom_exclude_types():
    raw = example("water_dipole")
    raw["model"]["fitting_net"]["sel_type"] = [1]
    message = error_of(raw)
    assert "model/atom_exclude_types: [1] contradicts fitting_net/sel_type [1]" in message


def test_energy_loss_with_a_dipole_fitting_and_the_reverse():
    raw = example("water_dipole")
    del raw["loss"]
    assert "loss/type: 'ener' cannot train a 'dipole' fitting" in error_of(raw)
    raw = example("water_polar")
    raw["model"]["fitting_net"] = {"type": "ener"}
    assert "loss/type: 'tensor' cannot train a 'ener' fitting" in error_of(raw)


def test_tensor_loss_needs_its_prefactors():
    raw = example("water_dipole")
    del raw["loss"]["pref"]
    assert "loss/pref: required" in error_of(raw).replace("Field required", "required")
    raw = example("water_dipole")
    raw["loss"].update(pref=0.0, pref_atomic=0.0)
    assert "pref and pref_atomic are both 0" in error_of(raw)


def test_polar_scale_per_type_length():
    raw = example("water_polar")
    raw["model"]["fitting_net"]["scale"] = [1.0, 2.0, 3.0]
    assert "model/fitting_net/scale: has 3 entries" in error_of(raw)


# ------------------------------------------------------------------------------------------ data
def test_water_tensor_labels_are_read_in_sorted_atom_order():
    root = SHARED / "water_dipole/training_data_reformat"
    atomic = DeepmdSystem.load(root / "atomic_system", ["O", "H"], sort_atoms=True,
                               tensor_labels=[keys.DIPOLE, keys.ATOM_DIPOLE], sel_type=[0])
    raw = np.load(root / "atomic_system/set.000/atomic_dipole.npy").reshape(-1, 192, 3)
    assert set(atomic.tensors) == {keys.ATOM_DIPOLE}
    np.testing.assert_array_equal(atomic.tensors[keys.ATOM_DIPOLE], raw[:, atomic.atom_order])
    assert np.all(atomic.tensors[keys.ATOM_DIPOLE][:, atomic.atype == 1] == 0)
    glob = DeepmdSystem.load(root / "global_system", ["O", "H"], tensor_labels=[keys.DIPOLE, keys.ATOM_DIPOLE])
    assert set(glob.tensors) == {keys.DIPOLE} and glob.tensors[keys.DIPOLE].shape == (80, 3)


def write_tensor_system(root: Path, types: list[int], atomic: np.ndarray | None = None, name="atomic_dipole.npy"):
    (root / "set.000").mkdir(parents=True)
    (root / "type.raw").write_text(" ".join(map(str, types)))
    (root / "nopbc").write_text("")
    nframes = 2
    np.save(root / "set.000/coord.npy", np.random.default_rng(0).normal(size=(nframes, 3 * len(types))))
    if atomic is not None:
        np.save(root / "set.000" / name, atomic)


def test_selected_types_only_layout_is_spread_over_all_atoms(tmp_path):
    types = [1, 0, 1, 0, 1]
    selected = np.arange(2 * 2 * 3, dtype=float).reshape(2, 6) + 1.0  # 2 frames x (2 type-0 atoms x 3)
    write_tensor_system(tmp_path, types, selected)
    system = DeepmdSystem.load(tmp_path, None, tensor_labels=[keys.ATOM_DIPOLE], sel_type=[0])
    label = system.tensors[keys.ATOM_DIPOLE]
    assert label.shape == (2, 5, 3)
    np.testing.assert_array_equal(label[:, [1, 3]].reshape(2, 6), selected)
    np.testing.assert_array_equal(label[:, [0, 2, 4]], 0.0)


def test_a_tensor_label_of_the_wrong_shape_names_the_file(tmp_path):
    write_tensor_system(tmp_path, [0, 1, 1], np.zeros((2, 7)), name="atomic_polarizability.npy")
    with pytest.raises(DataError) as info:
        DeepmdSystem.load(tmp_path, None, tensor_labels=[keys.ATOM_POLARIZABILITY], sel_type=[0])
    message = str(info.value)
    assert str(tmp_path / "set.000/atomic_polarizability.npy") in message
    assert "3 x 9 (every atom) or 1 x 9" in message
