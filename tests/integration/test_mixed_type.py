"""Training on DeePMD-kit's mixed-type data (real_atom_types.npy): the three C/H/O molecules of
../shared/data/nopbc_cho, written by dpdata's deepmd/npy/mixed writer into two systems (padded with virtual atoms
to 8 and 16 atoms, one of them mixing two compositions). A tiny se_atten (DPA-1, mixed-type neighbor list) trains,
lowers the validation force error, freezes, and runs in ``deeppot test``."""

from pathlib import Path

import dpdata
import numpy as np
import pytest
import torch

from deeppot.cli import main
from deeppot.config import validate_input
from deeppot.data import DeepmdSystem
from deeppot.infer import DeepPot
from deeppot.train.trainer import Trainer
from helpers import DATA, write_json

TYPE_MAP = ["C", "H", "O"]
# a tiny se_atten: one small attention layer; all neighbors of these <= 10-atom molecules fit into sel
DESCRIPTOR = {"type": "se_atten", "sel": 12, "rcut": 5.0, "rcut_smth": 0.5, "neuron": [4, 8, 16], "axis_neuron": 4,
              "attn": 16, "attn_layer": 1, "tebd_dim": 4, "smooth_type_embedding": True, "seed": 1}


def write_mixed(systems, root: Path) -> Path:
    dpdata.MultiSystems(*systems).to("deepmd/npy/mixed", str(root), atom_numb_pad=8)
    return root


def force_rmse(model, systems) -> float:
    """Force RMSE (eV/Angstrom) over every frame of mixed-type systems (virtual atoms: zero force both sides)."""
    errors = []
    for system in systems:
        out = model(torch.from_numpy(system.coord), torch.from_numpy(system.atype), None)
        errors.append((out["force"].detach().numpy() - system.force).reshape(-1))
    return float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(folder with the frozen model frozen.pth, validation systems, force RMSE before and after training)."""
    folder = tmp_path_factory.mktemp("mixed_type")
    train, valid = [], []
    for name in ("C1H4O2", "C3H3O4", "C4H3O1"):
        system = dpdata.LabeledSystem(str(DATA / "nopbc_cho" / name), fmt="deepmd/npy")
        train.append(system.sub_system(range(0, 10)))
        valid.append(system.sub_system(range(10, 13)))
    config = {
        "model": {"type_map": TYPE_MAP, "descriptor": DESCRIPTOR, "data_stat_nbatch": 4,
                  "fitting_net": {"neuron": [16, 16], "seed": 1}},
        "learning_rate": {"start_lr": 0.01, "stop_lr": 1e-3, "decay_steps": 20},
        "loss": {"start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000, "limit_pref_f": 1},
        "training": {
            "training_data": {"systems": str(write_mixed(train, folder / "train")), "batch_size": 4},
            "validation_data": {"systems": str(write_mixed(valid, folder / "valid")), "batch_size": 3},
            "numb_steps": 120, "disp_freq": 120, "save_freq": 120, "seed": 1,
        },
    }
    write_json(folder / "input.json", config)
    trainer = Trainer(validate_input(config), output_dir=folder)
    systems = [DeepmdSystem.load(str(p), TYPE_MAP) for p in sorted((folder / "valid").iterdir())]
    assert any(len({tuple(row) for row in s.atype}) > 1 for s in systems)  # a system mixing compositions
    before = force_rmse(trainer.model, systems)
    trainer.run()
    assert main(["freeze", "-c", str(folder / "model.ckpt.pt"), "-o", str(folder / "frozen.pth")]) == 0
    return folder, systems, before, force_rmse(trainer.model, systems)


def test_training_on_mixed_data_lowers_validation_force_error(trained):
    _, systems, before, after = trained
    assert after < 0.6 * before, (before, after)


def test_virtual_atoms_have_no_energy_and_force(trained):
    folder, systems, _, _ = trained
    dp = DeepPot(folder / "frozen.pth")
    system = next(s for s in systems if (s.atype < 0).any())
    energy, force, _, atom_energy, _ = dp.eval(system.coord, None, system.atype, atomic=True)
    virtual = system.atype < 0
    assert np.all(atom_energy.reshape(virtual.shape)[virtual] == 0.0)
    assert np.all(force[virtual] == 0.0) and np.abs(force[~virtual]).max() > 0.0
    np.testing.assert_allclose(energy.reshape(-1), atom_energy.reshape(virtual.shape).sum(axis=1), rtol=1e-12)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit in torch 2.13
def test_deeppot_test_on_mixed_data(trained, monkeypatch):
    folder, systems, _, after = trained
    monkeypatch.chdir(folder)
    assert main(["test", "-m", "frozen.pth", "-s", str(folder / "valid"), "-n", "100", "-d", "detail"]) == 0
    rows = sum(s.nframes * s.natoms for s in systems)
    force = np.loadtxt(folder / "detail.f.out")
    assert force.shape == (rows, 6)
    np.testing.assert_allclose(np.sqrt(np.mean((force[:, :3] - force[:, 3:]) ** 2)), after, rtol=1e-8)
