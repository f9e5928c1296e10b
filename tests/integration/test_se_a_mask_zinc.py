"""se_a_mask end to end on DeePMD-kit's zinc_protein data (frames padded with virtual atoms, aparam the mask):
examples/zinc_protein/input.json (shrunk: tiny nets, few steps) trains and lowers the validation force error,
freezes, and runs in ``deeppot test`` and in ASE (aparam in atoms.info)."""

import copy

import numpy as np
import pytest
import torch
from ase import Atoms

from deeppot.calculator import DP
from deeppot.cli import main
from deeppot.config import validate_input
from deeppot.data import DeepmdSystem
from deeppot.infer import DeepPot
from deeppot.train.trainer import Trainer
from helpers import DATA, load_example, write_json

ZINC = DATA / "zinc_protein"
TYPE_MAP = ["C", "O", "N", "H", "S", "ZN"]


def masked_force_rmse(model, system) -> float:
    """Force RMSE (label units) over all atoms of the system's frames, aparam the real/virtual mask."""
    out = model(torch.from_numpy(system.coord.copy()), torch.from_numpy(system.atype), None,
                aparam=torch.from_numpy(system.aparam.copy()))
    return float(np.sqrt(np.mean((out["force"].detach().numpy() - system.force) ** 2)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(folder, validation force RMSE before and after training, validation system)."""
    folder = tmp_path_factory.mktemp("zinc")
    config = copy.deepcopy(load_example("zinc_protein"))
    config["model"]["descriptor"].update(neuron=[4, 8], axis_neuron=4, type_one_side=True)
    config["model"]["fitting_net"].update(neuron=[16, 16])
    # the labels are large (RMS ~30) and se_a_mask's rows are not normalised: a large step size
    config["learning_rate"].update(start_lr=0.2, stop_lr=0.02, decay_steps=10)
    training = config["training"]
    training["training_data"]["systems"] = [str(ZINC / "train_data_dp_mask")]
    training["validation_data"]["systems"] = [str(ZINC / "val_data_dp_mask")]
    training.update(numb_steps=30, disp_freq=30, save_freq=30)
    write_json(folder / "input.json", config)
    trainer = Trainer(validate_input(config), output_dir=folder)
    system = DeepmdSystem.load(str(ZINC / "val_data_dp_mask"), TYPE_MAP, numb_aparam=1)
    before = masked_force_rmse(trainer.model, system)
    trainer.run()
    return folder, before, masked_force_rmse(trainer.model, system), system


def test_training_lowers_validation_force_error(trained):
    folder, before, after, _ = trained
    assert after < 0.8 * before, (before, after)
    assert (folder / "model.ckpt.pt").exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit in torch 2.13
def test_freeze_test_and_ase(trained, monkeypatch):
    folder, _, after, system = trained
    monkeypatch.chdir(folder)
    assert main(["freeze", "-c", "model.ckpt.pt", "-o", "frozen.pth"]) == 0
    dp = DeepPot(folder / "frozen.pth")
    assert dp.get_dim_aparam() == 1
    assert main(["test", "-m", "frozen.pth", "-s", str(ZINC / "val_data_dp_mask"), "-n", "2", "-d", "detail"]) == 0
    force = np.loadtxt(folder / "detail.f.out")
    assert force.shape == (2 * 147, 6)
    np.testing.assert_allclose(np.sqrt(np.mean((force[:, :3] - force[:, 3:]) ** 2)), after, rtol=1e-8)
    virtual = system.aparam[..., 0].reshape(-1) == 0
    assert virtual.sum() == 147 * 2 - 76 - 35
    np.testing.assert_array_equal(force[virtual, 3:], 0.0)  # virtual atoms: zero predicted force
    # ASE: a non-periodic Atoms with the mask in atoms.info["aparam"] (the data's "ZN" is ASE's "Zn")
    symbols = ["Zn" if name == "ZN" else name for name in TYPE_MAP]
    atoms = Atoms([symbols[t] for t in system.atype], positions=system.coord[0], pbc=False)
    atoms.info["aparam"] = system.aparam[0]
    atoms.calc = DP(folder / "frozen.pth", type_dict={name: t for t, name in enumerate(symbols)})
    energy, forces, _ = dp.eval(system.coord[:1], None, system.atype, aparam=system.aparam[:1])
    assert atoms.get_potential_energy() == pytest.approx(energy[0, 0], abs=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), forces[0], rtol=0, atol=1e-12)
