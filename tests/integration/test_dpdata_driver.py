"""The ``deeppot`` dpdata driver (registered by the ``dpdata.plugins`` entry point)."""

from __future__ import annotations

from pathlib import Path

import dpdata
import numpy as np
import pytest

from deeppot.config import validate_input
from deeppot.data.convert import convert
from deeppot.errors import DeeppotError
from deeppot.export.model_file import save_model_file
from deeppot.infer import DeepPot
from deeppot.train.trainer import Trainer

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
OUTCAR = DATA / "ch4_vasp" / "000000" / "OUTCAR"
SYSTEM_KEYS = ("atom_names", "atom_numbs", "atom_types", "orig", "cells", "coords")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A small untrained CH4 model (type_map H C), frozen to model.pth."""
    root = tmp_path_factory.mktemp("driver")
    convert([OUTCAR], root / "data", fmt="vasp/outcar")
    config = {
        "model": {
            "type_map": ["H", "C"],
            "descriptor": {"type": "se_e2_a", "sel": [4, 1], "rcut": 6.0, "rcut_smth": 0.5, "neuron": [4, 8],
                           "axis_neuron": 4, "seed": 1},
            "fitting_net": {"neuron": [8, 8], "seed": 1},
        },
        "learning_rate": {"start_lr": 1e-3, "stop_lr": 1e-5, "decay_steps": 10},
        "loss": {"start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000, "limit_pref_f": 1},
        "training": {"training_data": {"systems": str(root / "data" / "training_data"), "batch_size": 1},
                     "numb_steps": 0, "seed": 1},
    }
    trainer = Trainer(validate_input(config), output_dir=root)
    save_model_file(trainer.model, trainer.model_params(), root / "model.pth")
    return root / "model.pth"


@pytest.fixture(scope="module")
def ch4() -> dpdata.LabeledSystem:
    return dpdata.LabeledSystem(str(OUTCAR), fmt="vasp/outcar")


def unlabeled(data: dict, **changes) -> dpdata.System:
    return dpdata.System(data={**{k: data[k] for k in SYSTEM_KEYS}, **changes})


def test_driver_registered_at_import():
    assert "deeppot" in dpdata.driver.Driver.get_drivers()


def test_labeled_system_predict_equals_deep_pot(model, ch4):
    predicted = ch4.predict(driver="deeppot", model=str(model))
    assert isinstance(predicted, dpdata.LabeledSystem) and predicted.get_nframes() == 10
    energy, force, virial = DeepPot(model).eval(ch4["coords"], ch4["cells"].reshape(10, 9), ch4["atom_types"])
    np.testing.assert_array_equal(predicted["energies"], energy.reshape(10))
    np.testing.assert_array_equal(predicted["forces"], force)
    np.testing.assert_array_equal(predicted["virials"], virial.reshape(10, 3, 3))
    assert not np.allclose(predicted["energies"], ch4["energies"])  # the model's labels, not the DFT ones
    np.testing.assert_array_equal(predicted["coords"], ch4["coords"])


def test_unlabeled_system_types_mapped_by_name(model, ch4):
    expected = ch4.predict(driver="deeppot", model=str(model))
    # the same atoms with the element list reversed (C first) and an element absent from the model
    # but not used by any atom
    swapped = unlabeled(ch4.data, atom_names=["C", "H", "Xe"], atom_numbs=[1, 4, 0],
                        atom_types=1 - ch4["atom_types"])
    predicted = swapped.predict(driver="deeppot", model=str(model))
    assert isinstance(predicted, dpdata.LabeledSystem)
    np.testing.assert_allclose(predicted["energies"], expected["energies"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(predicted["forces"], expected["forces"], rtol=0, atol=1e-10)


def test_nopbc_system(model, ch4):
    molecule = unlabeled(ch4.data, nopbc=True)
    predicted = molecule.predict(driver="deeppot", model=str(model))
    energy, _, virial = DeepPot(model).eval(ch4["coords"], None, ch4["atom_types"])
    np.testing.assert_array_equal(predicted["energies"], energy.reshape(-1))
    np.testing.assert_array_equal(predicted["virials"], virial.reshape(-1, 3, 3))


def test_element_missing_from_type_map(model, ch4):
    oxygen = unlabeled(ch4.data, atom_names=["H", "O"])
    with pytest.raises(DeeppotError, match=r"elements \['O'\].*type_map \['H', 'C'\]"):
        oxygen.predict(driver="deeppot", model=str(model))
