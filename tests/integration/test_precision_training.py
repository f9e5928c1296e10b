"""float32 and mixed-precision (bfloat16) water models end to end: 'deeppot train' learns, the checkpoint records
the precision with CPU tensors, 'deeppot freeze' keeps it, 'deeppot test', DeepPot and the ASE calculator give the
checkpoint's numbers."""

import json

import numpy as np
import pytest
import torch
from ase import Atoms

from deeppot.calculator import DP
from deeppot.cli import main
from deeppot.data import DeepmdSystem
from deeppot.export.freeze import load_model_or_checkpoint
from deeppot.export.model_file import load_model
from deeppot.infer import DeepPot
from deeppot.nn.precision import mixed_precision_of
from deeppot.train.checkpoint import load_checkpoint
from helpers import WATER, small_water_input, write_json

PRECISIONS = {
    "float32": None,
    "bfloat16": {"output_prec": "float32", "compute_prec": "bfloat16"},
}


def precision_input(precision: str) -> dict:
    config = small_water_input(numb_steps=10, disp_freq=9, save_freq=10)
    config["learning_rate"].update(start_lr=5e-3, stop_lr=1e-3, decay_steps=5)
    if PRECISIONS[precision] is None:
        config["model"]["descriptor"]["precision"] = config["model"]["fitting_net"]["precision"] = precision
    else:
        config["training"]["mixed_precision"] = PRECISIONS[precision]
    return config


@pytest.fixture(scope="module", params=list(PRECISIONS))
def trained(request, tmp_path_factory):
    """(precision, folder) of a 10-step run through the command line, frozen to model.pth."""
    folder = tmp_path_factory.mktemp(request.param)
    write_json(folder / "input.json", precision_input(request.param))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        assert main(["train", "input.json", "--device", "cpu"]) == 0
        assert main(["freeze", "-o", "model.pth"]) == 0
    return request.param, folder


def test_training_learns_and_the_checkpoint_records_the_precision(trained):
    precision, folder = trained
    rows = np.array([[float(v) for v in line.split()] for line in (folder / "lcurve.out").read_text().splitlines()
                     if not line.startswith("#")])
    assert rows[-1, 3] < 0.85 * rows[0, 3], rows[:, 3]  # validation energy RMSE falls
    state = load_checkpoint(str(folder / "model.ckpt-10.pt"))
    assert state["mixed_precision"] == PRECISIONS[precision]
    assert {v.dtype for k, v in state["model"].items() if k.endswith(".w")} == {torch.float32}
    tensors = [v for v in state["model"].values()] + [v for s in state["optimizer"]["state"].values()
                                                        for v in s.values() if isinstance(v, torch.Tensor)]
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    model_section = json.loads((folder / "out.json").read_text())["model"]
    assert model_section["descriptor"]["precision"] == model_section["fitting_net"]["precision"] == "float32"


def test_frozen_file_evaluates_as_the_checkpoint(trained):
    precision, folder = trained
    frozen, meta = load_model(folder / "model.pth")
    from_checkpoint, _ = load_model_or_checkpoint(folder / "model.ckpt-10.pt")
    assert mixed_precision_of(frozen) == mixed_precision_of(from_checkpoint) == PRECISIONS[precision]
    assert meta.get("mixed_precision") == PRECISIONS[precision]
    system = DeepmdSystem.load(str(WATER / "data_3"), ["O", "H"])
    coord, box = system.coord[:2], system.box[:2]
    e, f, _ = DeepPot(folder / "model.pth").eval(coord, box.reshape(2, 9), system.atype)
    ref = from_checkpoint(torch.from_numpy(coord), torch.from_numpy(system.atype), torch.from_numpy(box))
    np.testing.assert_allclose(e.reshape(-1), ref["energy"].detach().numpy().reshape(-1), rtol=1e-12)
    np.testing.assert_allclose(f, ref["force"].detach().numpy(), rtol=1e-10, atol=1e-12)
    atoms = Atoms([system.type_names[t] for t in system.atype], positions=coord[0], cell=box[0], pbc=True)
    atoms.calc = DP(folder / "model.pth")
    assert atoms.get_potential_energy() == pytest.approx(float(e[0, 0]), abs=1e-9)
    np.testing.assert_allclose(atoms.get_forces(), f[0], atol=1e-9)


def test_deeppot_test_predicts_as_deeppot(trained):
    _, folder = trained
    detail = folder / "detail"
    assert main(["test", "-m", str(folder / "model.pth"), "-s", str(WATER / "data_3"), "-n", "2", "-d",
                 str(detail)]) == 0
    system = DeepmdSystem.load(str(WATER / "data_3"), ["O", "H"])
    _, f, _ = DeepPot(folder / "model.pth").eval(system.coord[:2], system.box[:2].reshape(2, 9), system.atype)
    rows = np.loadtxt(folder / "detail.f.out")  # data_fx data_fy data_fz pred_fx pred_fy pred_fz
    np.testing.assert_allclose(rows[:, 3:], f.reshape(-1, 3), atol=1e-9)
