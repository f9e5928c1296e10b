"""DPLR end to end on ../shared/data/water_dplr with examples/water_dplr's two inputs (small nets, few steps):
the dipole model trains and freezes; the DPLR model's training labels are the data minus the modifier's term;
the frozen file carries the modifier and its dipole model, so DeepPot, ``deeppot test``, ASE and dpdata see short
range + long range (also after compression); bad modifier input is refused with a message naming the key."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from deeppot.cli import main
from deeppot.config import validate_input
from deeppot.data import DeepmdSystem
from deeppot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared/data/water_dplr"
NFRAMES = 3


def small_input(name: str, steps: int, **modifier) -> dict:
    """examples/water_dplr/<name> with small nets, few steps, absolute data paths; ``modifier`` keys override."""
    config = json.loads((ROOT / "examples/water_dplr" / name / "input.json").read_text())
    config["model"]["descriptor"].update(neuron=[4, 8, 16], axis_neuron=4)
    config["model"]["fitting_net"]["neuron"] = [16, 16]
    config["model"]["data_stat_nbatch"] = 1
    config["training"]["training_data"].update(systems=[str(DATA)], batch_size=1)
    config["training"].update(numb_steps=steps, disp_freq=steps, save_freq=steps)
    if "modifier" in config["model"]:
        config["model"]["modifier"].update(modifier)
    return config


def write(path: Path, config: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The dipole model (2 steps, frozen to dipole/dipole.pth), then the DPLR model (2 steps, frozen to model.pth)."""
    workdir = tmp_path_factory.mktemp("dplr")
    cwd = os.getcwd()
    try:
        os.chdir(workdir / write(workdir / "dipole/input.json", small_input("dipole", 2)).parent)
        assert main(["train", "input.json"]) == 0
        assert main(["freeze", "-o", "dipole.pth"]) == 0
        os.chdir(workdir)
        assert main(["train", str(write(workdir / "input.json", small_input("", 2)))]) == 0
        assert main(["freeze", "-o", "model.pth"]) == 0
    finally:
        os.chdir(cwd)
    return workdir


@pytest.fixture(scope="module")
def frames():
    system = DeepmdSystem.load(DATA, ["O", "H"])
    return system, system.coord[:NFRAMES], system.box[:NFRAMES].reshape(-1, 9)


def test_training_labels_are_the_data_minus_the_modifier(trained, frames):
    from deeppot.config import load_input
    from deeppot.modifier import build_modifier
    from deeppot.train.trainer import Trainer

    config = load_input(trained / "input.json")
    assert config.model.modifier.model_name == str(trained / "dipole/dipole.pth")  # relative to input.json
    corrected = Trainer(config, output_dir=trained / "labels").train_data.systems[0]
    system = DeepmdSystem.load(DATA, ["O", "H"], sort_atoms=True)  # as training loads it
    term = build_modifier(config.model).evaluate_numpy(system.coord, system.atype, system.box)
    assert np.abs(term["energy"]).min() > 1e-3 and np.abs(term["force"]).max() > 1e-3
    np.testing.assert_allclose(corrected.energy, system.energy - term["energy"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(corrected.force, system.force - term["force"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(corrected.virial, system.virial - term["virial"], rtol=0, atol=1e-9)


def test_frozen_file_gives_short_range_plus_modifier(trained, frames):
    from deeppot.export.model_file import load_model, read_model_metadata, save_model_file
    from deeppot.infer import DeepPot
    from deeppot.modifier import deserialize_modifier

    system, coord, box = frames
    meta = read_model_metadata(trained / "model.pth")
    assert meta["modifier_type"] == "dipole_charge" and meta["format_version"] == 3
    assert meta["modifier"]["dipole_model"]["fitting"]["type"] == "dipole"
    save_model_file(load_model(trained / "model.pth")[0], {}, trained / "short_range.pth")  # the model alone
    short_range = DeepPot(trained / "short_range.pth")
    modifier = deserialize_modifier(meta["modifier"])
    dp = DeepPot(trained / "model.pth")
    energy, force, virial = dp.eval(coord, box, system.atype)
    e_sr, f_sr, v_sr = short_range.eval(coord, box, system.atype)
    term = modifier.evaluate_numpy(coord, system.atype, box.reshape(-1, 3, 3))
    np.testing.assert_allclose(energy[:, 0], e_sr[:, 0] + term["energy"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(force, f_sr + term["force"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(virial, v_sr + term["virial"], rtol=0, atol=1e-9)
    # the checkpoint rebuilds the same modifier from model/modifier/model_name
    checkpoint = DeepPot(trained / "model.ckpt-2.pt")
    np.testing.assert_allclose(checkpoint.eval(coord, box, system.atype)[0], energy, rtol=0, atol=1e-9)


def test_deeppot_test_ase_and_dpdata_see_the_total(trained, frames, caplog):
    from ase import Atoms

    from deeppot.calculator import DP
    from deeppot.infer import DeepPot

    system, coord, box = frames
    energy = DeepPot(trained / "model.pth").eval(coord, box, system.atype)[0][:, 0]
    assert main(["test", "-m", str(trained / "model.pth"), "-s", str(DATA), "-n", str(NFRAMES),
                 "-d", str(trained / "detail")]) == 0
    detail = np.loadtxt(trained / "detail.e.out")
    np.testing.assert_allclose(detail[:, 0], system.energy[:NFRAMES], rtol=0, atol=1e-6)  # the data's full energy
    np.testing.assert_allclose(detail[:, 1], energy, rtol=0, atol=1e-6)
    atoms = Atoms(symbols=[["O", "H"][t] for t in system.atype], positions=coord[0], cell=box[0].reshape(3, 3),
                  pbc=True)
    atoms.calc = DP(trained / "model.pth")
    assert atoms.get_potential_energy() == pytest.approx(energy[0], abs=1e-8)
    import dpdata

    predicted = dpdata.System(str(DATA), fmt="deepmd/npy")[:NFRAMES].predict(driver="deeppot",
                                                                           model=str(trained / "model.pth"))
    np.testing.assert_allclose(predicted["energies"], energy, rtol=0, atol=1e-8)


def bad_input(trained, **modifier) -> str:
    config = small_input("", 1, **modifier)
    with pytest.raises(ConfigError) as info:
        from deeppot.train.trainer import Trainer

        Trainer(validate_input(config), output_dir=trained / "bad")
    return str(info.value)


def test_bad_modifier_input_is_refused_with_its_reason(trained):
    dipole = str(trained / "dipole/dipole.pth")
    message = bad_input(trained, model_name=dipole, model_charge_map=[-8, -8])
    assert "model/modifier/model_charge_map: model_charge_map has 2 entries" in message
    assert "sel_type [0]" in message
    message = bad_input(trained, model_name=str(trained / "model.pth"))
    assert "model/modifier/model_name" in message and "not a dipole model" in message
    message = bad_input(trained, model_name=str(trained / "missing.pth"))
    assert "model/modifier/model_name" in message and "missing.pth not found" in message
    message = bad_input(trained, model_name=dipole, sys_charge_map=[6])
    assert "model/modifier/sys_charge_map: sys_charge_map has 1 entries" in message


def test_compressed_file_keeps_the_modifier(trained, frames):
    from deeppot.export.model_file import read_model_metadata
    from deeppot.infer import DeepPot

    system, coord, box = frames
    assert main(["compress", "-i", str(trained / "model.pth"), "-o", str(trained / "compressed.pth")]) == 0
    assert read_model_metadata(trained / "compressed.pth")["modifier_type"] == "dipole_charge"
    frozen, compressed = (DeepPot(trained / name).eval(coord[:1], box[:1], system.atype)
                          for name in ("model.pth", "compressed.pth"))
    np.testing.assert_allclose(compressed[0], frozen[0], rtol=0, atol=1e-6)  # tabulation error only
    np.testing.assert_allclose(compressed[1], frozen[1], rtol=0, atol=1e-5)
