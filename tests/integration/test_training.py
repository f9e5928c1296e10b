"""Training behaviour: restart equivalence, init-model, learning, checkpoints, freeze round trip."""

import json

import numpy as np
import pytest
import torch

from deeppot.cli import main
from deeppot.config import validate_input
from deeppot.data import DeepmdSystem
from deeppot.infer import DeepPot
from deeppot.train.checkpoint import load_checkpoint
from deeppot.train.trainer import Trainer
from helpers import WATER, small_water_input, write_json, validation_force_rmse


def run_cli(*argv):
    return main([str(a) for a in argv])


def data_rows(path):
    return [line for line in path.read_text().splitlines() if not line.startswith("#")]


def test_restart_reproduces_uninterrupted_run(tmp_path, monkeypatch):
    config = small_water_input(numb_steps=6, disp_freq=1, save_freq=3)
    full, part = tmp_path / "full", tmp_path / "part"
    for folder in (full, part):
        folder.mkdir()
    monkeypatch.chdir(full)
    write_json(full / "input.json", config)
    assert run_cli("train", "input.json") == 0

    monkeypatch.chdir(part)
    interrupted = small_water_input(numb_steps=6, disp_freq=1, save_freq=3)
    write_json(part / "input.json", interrupted)
    trainer = Trainer(validate_input(interrupted))
    # simulate a kill after step 4: rows 5 exist in lcurve but the last checkpoint is step 3
    trainer.config.training.numb_steps = 6
    original_save = trainer.save

    def stop_after_four(step):
        original_save(step)
        if step == 3:
            raise KeyboardInterrupt

    trainer.save = stop_after_four
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert len(data_rows(part / "lcurve.out")) == 3
    assert run_cli("train", "input.json", "--restart", "model.ckpt-3.pt") == 0
    assert data_rows(part / "lcurve.out") == data_rows(full / "lcurve.out")
    a = load_checkpoint(str(full / "model.ckpt-6.pt"))["model"]
    b = load_checkpoint(str(part / "model.ckpt-6.pt"))["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_init_model_starts_at_step_zero_from_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_json(tmp_path / "input.json", small_water_input(numb_steps=2, disp_freq=1, save_freq=2))
    assert run_cli("train", "input.json") == 0
    trained = load_checkpoint("model.ckpt-2.pt")["model"]
    trainer = Trainer(validate_input(small_water_input(numb_steps=2)), init_model="model.ckpt-2.pt")
    assert trainer.start_step == 0
    state = trainer.model.state_dict()
    assert all(torch.equal(state[k], trained[k]) for k in trained)


def test_training_lowers_validation_force_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = small_water_input(numb_steps=150, disp_freq=150, save_freq=150)
    config["learning_rate"].update(start_lr=0.005, stop_lr=1e-4, decay_steps=50)
    trainer = Trainer(validate_input(config))
    system = DeepmdSystem.load(str(WATER / "data_3"), ["O", "H"])

    before = validation_force_rmse(trainer.model, system)
    trainer.run()
    after = validation_force_rmse(trainer.model, system)
    assert after < 0.8 * before, (before, after)


def test_checkpoint_retention_and_pointer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = small_water_input(numb_steps=4, disp_freq=4, save_freq=1)
    config["training"]["max_ckpt_keep"] = 2
    write_json(tmp_path / "input.json", config)
    assert run_cli("train", "input.json") == 0
    assert sorted(p.name for p in tmp_path.glob("model.ckpt-*.pt")) == ["model.ckpt-3.pt", "model.ckpt-4.pt"]
    assert (tmp_path / "checkpoint").read_text().strip() == "model.ckpt-4.pt"
    assert (tmp_path / "model.ckpt.pt").resolve().name == "model.ckpt-4.pt"
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.load in torch 2.13
def test_frozen_model_matches_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_json(tmp_path / "input.json", small_water_input(numb_steps=2, disp_freq=2, save_freq=2))
    assert run_cli("train", "input.json") == 0
    assert run_cli("freeze", "-c", "model.ckpt-2.pt", "-o", "frozen") == 0
    dp = DeepPot(tmp_path / "frozen.pth")
    assert dp.get_type_map() == ["O", "H"] and dp.get_rcut() == 6.0
    system = DeepmdSystem.load(str(WATER / "data_3"), ["O", "H"])
    energy, force, virial = dp.eval(system.coord[:2], system.box[:2].reshape(2, 9), system.atype)
    trainer = Trainer(validate_input(small_water_input(numb_steps=2)), init_model="model.ckpt-2.pt")
    out = trainer.model(torch.from_numpy(system.coord[:2]), torch.from_numpy(system.atype),
                        torch.from_numpy(system.box[:2]))
    np.testing.assert_allclose(energy[:, 0], out["energy"].detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(force, out["force"].numpy(), rtol=0, atol=1e-12)
    meta = json.loads(json.dumps(dp.metadata["model_def_script"]))
    assert meta["descriptor"]["sel"] == [46, 92]
    scripted = torch.jit.load(str(tmp_path / "frozen.pth"))  # what C++ (libtorch) loads
    assert scripted.get_type_map() == ["O", "H"] and scripted.get_rcut() == 6.0 and scripted.get_sel() == [46, 92]


def test_fparam_aparam_float32_training_and_frozen_model(tmp_path, monkeypatch):
    """Frame and atomic parameters from fparam.npy/aparam.npy, float32 networks, systems given as one
    folder searched recursively, no validation data."""
    monkeypatch.chdir(tmp_path)
    systems = WATER.parent / "fparam_be"
    config = {
        "model": {"type_map": ["Be"],
                  "descriptor": {"type": "se_a", "sel": [60], "rcut": 5.0, "rcut_smth": 0.5, "neuron": [4, 8],
                                 "axis_neuron": 4, "precision": "float32"},
                  "fitting_net": {"neuron": [16, 16], "numb_fparam": 1, "numb_aparam": 1, "precision": "float32"}},
        "learning_rate": {"start_lr": 0.001},
        "training": {"training_data": {"systems": str(systems), "batch_size": 2},
                     "numb_steps": 3, "disp_freq": 1, "save_freq": 3},
    }
    write_json(tmp_path / "input.json", config)
    assert run_cli("train", "input.json") == 0
    header = (tmp_path / "lcurve.out").read_text().splitlines()[0].split()
    assert header[1:] == ["step", "rmse_trn", "rmse_e_trn", "rmse_f_trn", "lr"]
    assert run_cli("freeze", "-o", "model.pth") == 0
    dp = DeepPot(tmp_path / "model.pth")
    assert dp.get_dim_fparam() == 1 and dp.get_dim_aparam() == 1
    system = DeepmdSystem.load(str(systems / "e3000_i2000"), ["Be"], numb_fparam=1, numb_aparam=1)
    args = (system.coord[:1], system.box[:1].reshape(1, 9), system.atype)
    low = dp.eval(*args, fparam=system.fparam[:1], aparam=system.aparam[:1])[0]
    high = dp.eval(*args, fparam=system.fparam[:1] * 3, aparam=system.aparam[:1])[0]
    assert np.all(np.isfinite(low)) and abs(float(high[0, 0] - low[0, 0])) > 1e-6
    assert dp.model.descriptor.davg.dtype == torch.float32


def test_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = small_water_input(numb_steps=2, disp_freq=2, save_freq=1)
    trainer = Trainer(validate_input(config))
    trainer.save(1)
    before = (tmp_path / "model.ckpt-1.pt").read_bytes()

    def crash(state, path):
        with open(path, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        trainer.save(2)
    assert not (tmp_path / "model.ckpt-2.pt").exists()
    assert (tmp_path / "checkpoint").read_text().strip() == "model.ckpt-1.pt"
    assert (tmp_path / "model.ckpt-1.pt").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    load_checkpoint(str(tmp_path))  # the pointer still leads to a readable checkpoint
