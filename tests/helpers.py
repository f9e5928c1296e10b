"""Shared test helpers: paths to the shared data and small training inputs."""

import copy
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
WATER = DATA / "water"
# the console script installed beside this Python (works in an unactivated virtual environment too)
DEEPPOT = str(Path(sys.executable).parent / "deeppot") if (Path(sys.executable).parent / "deeppot").exists() \
    else shutil.which("deeppot")


def load_example(name: str) -> dict:
    return json.loads((ROOT / "examples" / name / "input.json").read_text())


def small_water_input(numb_steps: int = 4, disp_freq: int = 2, save_freq: int = 2) -> dict:
    """The water example with a small network, absolute data paths and few steps."""
    config = copy.deepcopy(load_example("water"))
    config["model"]["descriptor"].update(neuron=[4, 8, 16], axis_neuron=4)
    config["model"]["fitting_net"].update(neuron=[16, 16])
    config["model"]["data_stat_nbatch"] = 2
    training = config["training"]
    training["training_data"]["systems"] = [str(WATER / f"data_{i}") for i in range(3)]
    training["validation_data"]["systems"] = [str(WATER / "data_3")]
    training.update(numb_steps=numb_steps, disp_freq=disp_freq, save_freq=save_freq)
    return config


def small_tensor_input(name: str) -> dict:
    """A tensor example (``water_dipole``, ``water_polar``) with small networks and absolute data paths."""
    config = copy.deepcopy(load_example(name))
    config["model"]["descriptor"].update(neuron=[4, 8], axis_neuron=4)
    config["model"]["fitting_net"]["neuron"] = [8]
    for section in ("training_data", "validation_data"):
        config["training"][section]["systems"] = [str(DATA / s.split("data/")[1])
                                                   for s in config["training"][section]["systems"]]
    return config


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path


def validation_force_rmse(model, system, nframes: int = 10) -> float:
    """Force RMSE (eV/Angstrom) of ``model`` on the first ``nframes`` frames of a loaded DeepmdSystem."""
    import numpy as np
    import torch

    out = model(torch.from_numpy(system.coord[:nframes]), torch.from_numpy(system.atype),
                torch.from_numpy(system.box[:nframes]))
    return float(np.sqrt(np.mean((out["force"].detach().numpy() - system.force[:nframes]) ** 2)))
