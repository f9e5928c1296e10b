"""Every non-se_e2_a descriptor end to end on water: its example input.json (shrunk: tiny nets, few steps)
trains and lowers the validation force error, freezes, runs in ``deeppot test`` and in ASE."""

import copy

import numpy as np
import pytest
from ase import Atoms

from deeppot.calculator import DP
from deeppot.cli import main
from deeppot.config import validate_input
from deeppot.data import DeepmdSystem
from deeppot.infer import DeepPot
from deeppot.train.checkpoint import load_checkpoint
from deeppot.train.trainer import Trainer
from helpers import WATER, load_example, write_json, validation_force_rmse

# example -> (descriptor settings (a list: one per hybrid member), steps, start_lr) that keep the test fast: tiny
# nets; se_e3 with a 4 A cut-off (~1/3 of the triplets of the example's 5.8 A) and few steps (its random start is
# far off); se_e2_a_tebd keeps its type embedding [2, 4, 8], two-sided (one-sided learns slower in 100 steps);
# se_atten, se_atten_v2: one small attention layer on the <= 24 neighbors within 3 A (se_atten smooth: it learns
# faster so)
ATTENTION_SHRUNK = {"neuron": [4, 8, 16], "axis_neuron": 4, "attn": 16, "attn_layer": 1, "tebd_dim": 4, "rcut": 3.0,
                    "sel": 24}
SHRUNK = {
    "water/se_e2_r": ({"neuron": [4, 8, 16]}, 200, 0.05),
    "water/se_e3": ({"neuron": [2, 4, 8], "rcut": 4.0}, 40, 0.005),
    "water/hybrid": ([{"neuron": [4, 8]}, {"neuron": [4, 8], "sel": "auto"},
                      {"neuron": [4, 8], "tebd_dim": 4, "sel": 40}], 100, 0.01),
    "water/se_e2_a_tebd": ({"neuron": [4, 8, 16], "axis_neuron": 4, "sel": "auto", "type_one_side": False}, 100, 0.01),
    "water/loc_frame": ({"rcut": 4.0, "sel_a": [6, 12], "sel_r": [10, 20]}, 40, 0.01),  # no nets: fitting only
    "water/se_atten": ({**ATTENTION_SHRUNK, "smooth_type_embedding": True}, 60, 0.01),
    "water/se_atten_v2": (ATTENTION_SHRUNK, 60, 0.01),
}


def shrunk_input(example: str) -> dict:
    descriptor, numb_steps, start_lr = SHRUNK[example]
    config = copy.deepcopy(load_example(example))
    sections = config["model"]["descriptor"].get("list", [config["model"]["descriptor"]])
    for section, changes in zip(sections, descriptor if isinstance(descriptor, list) else [descriptor]):
        section.update(changes)
    config["model"]["fitting_net"].update(neuron=[16, 16])
    config["model"]["data_stat_nbatch"] = 2
    config["learning_rate"].update(start_lr=start_lr, stop_lr=1e-3, decay_steps=40)
    training = config["training"]
    training["training_data"]["systems"] = [str(WATER / f"data_{i}") for i in range(3)]
    training["validation_data"]["systems"] = [str(WATER / "data_3")]
    training.update(numb_steps=numb_steps, disp_freq=numb_steps, save_freq=numb_steps)
    return config


@pytest.fixture(scope="module", params=sorted(SHRUNK))
def trained(request, tmp_path_factory):
    """(example, folder, force RMSE on 10 validation frames before and after training, validation system)."""
    folder = tmp_path_factory.mktemp(request.param.replace("/", "_"))
    config = shrunk_input(request.param)
    write_json(folder / "input.json", config)
    trainer = Trainer(validate_input(config), output_dir=folder)
    system = DeepmdSystem.load(str(WATER / "data_3"), ["O", "H"])

    before = validation_force_rmse(trainer.model, system)
    trainer.run()
    return request.param, folder, before, validation_force_rmse(trainer.model, system), system


def test_training_lowers_validation_force_error(trained):
    example, folder, before, after, _ = trained
    assert after < 0.8 * before, (example, before, after)
    params = load_checkpoint(str(folder / "model.ckpt.pt"))["model_params"]  # the resolved model section
    assert params["descriptor"]["type"] == load_example(example)["model"]["descriptor"]["type"]
    assert all(isinstance(section.get("sel", section.get("sel_a")), list)  # loc_frame: sel_a and sel_r
               for section in params["descriptor"].get("list", [params["descriptor"]]))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit in torch 2.13
def test_freeze_test_and_ase(trained, monkeypatch, capsys):
    example, folder, _, after, system = trained
    monkeypatch.chdir(folder)
    assert main(["freeze", "-c", "model.ckpt.pt", "-o", "frozen.pth"]) == 0
    dp = DeepPot(folder / "frozen.pth")
    assert dp.metadata["model"]["descriptor"]["type"] in ("se_r", "se_e3", "hybrid", "se_e2_a", "loc_frame", "dpa1",
                                                          "se_atten_v2")
    # deeppot test: its force RMSE is the trained model's on the same frames
    capsys.readouterr()
    assert main(["test", "-m", "frozen.pth", "-s", str(WATER / "data_3"), "-n", "10", "-d", "detail"]) == 0
    force = np.loadtxt(folder / "detail.f.out")
    assert force.shape == (10 * 192, 6)
    np.testing.assert_allclose(np.sqrt(np.mean((force[:, :3] - force[:, 3:]) ** 2)), after, rtol=1e-8)
    # ASE on the frozen model agrees with DeepPot
    atoms = Atoms([system.type_names[t] for t in system.atype], positions=system.coord[0], cell=system.box[0],
                  pbc=True)
    atoms.calc = DP(folder / "frozen.pth")
    energy, forces, _ = dp.eval(system.coord[:1], system.box[:1].reshape(1, 9), system.atype)
    assert atoms.get_potential_energy() == pytest.approx(energy[0, 0], abs=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), forces[0], rtol=0, atol=1e-12)
