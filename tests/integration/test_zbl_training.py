"""DP/ZBL end to end with examples/water_zbl (small nets, 2 steps): model/use_srtab is resolved against input.json's
folder and checked before work; training checkpoints and the frozen file carry the table (the table file is deleted
before freezing); freeze, compress, deeppot test, DeepPot and ASE all give the blended model's numbers; bad DP/ZBL
input is refused with a message naming the key and what to change."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from deeppot.calculator import DP
from deeppot.cli import main
from deeppot.config import load_input
from deeppot.errors import ConfigError
from deeppot.export.freeze import load_model_or_checkpoint
from deeppot.infer import DeepPot
from deeppot.model.zbl_model import DPZBLModel
from helpers import WATER, load_example

TABLE = WATER / "H2O_tab_potential.txt"


def small_input(table: str) -> dict:
    config = load_example("water_zbl")
    config["model"]["use_srtab"] = table
    config["model"]["descriptor"].update(neuron=[4, 8, 16], axis_neuron=4, attn=8)
    config["model"]["fitting_net"]["neuron"] = [16, 16]
    config["model"]["data_stat_nbatch"] = 1
    training = config["training"]
    training["training_data"].update(systems=[str(WATER / "data_0")], batch_size=1)
    training["validation_data"].update(systems=[str(WATER / "data_3")], numb_btch=1)
    training.update(numb_steps=2, disp_freq=2, save_freq=2)
    return config


PUSHED = [0, 69]  # the O and the H of close_contact()


def close_contact(nframes: int = 1):
    """A water frame of data_3 with one H pushed to 0.35 A of an O (the table's range): coord, box, types."""
    coord = np.load(WATER / "data_3/set.000/coord.npy")[:nframes].reshape(nframes, -1, 3).copy()
    box = np.load(WATER / "data_3/set.000/box.npy")[:nframes].reshape(nframes, 9)
    atype = np.loadtxt(WATER / "data_3/type.raw", dtype=np.int64)
    oxygen, hydrogen = int(np.flatnonzero(atype == 0)[0]), int(np.flatnonzero(atype == 1)[5])
    coord[:, hydrogen] = coord[:, oxygen] + np.array([0.2, 0.2, 0.2])
    assert [oxygen, hydrogen] == PUSHED
    return coord, box, atype


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Trained from run/ with inputs/input.json naming ../tables/tab.txt; the table is deleted after training."""
    work = tmp_path_factory.mktemp("zbl")
    (work / "tables").mkdir()
    (work / "inputs").mkdir()
    (work / "run").mkdir()
    shutil.copy(TABLE, work / "tables/tab.txt")
    (work / "inputs/input.json").write_text(json.dumps(small_input("../tables/tab.txt")))
    cwd = os.getcwd()
    try:
        os.chdir(work / "run")  # not input.json's folder: the table path is relative to input.json
        assert main(["train", str(work / "inputs/input.json")]) == 0
        (work / "tables/tab.txt").unlink()
        assert main(["freeze", "-o", "model.pth"]) == 0
    finally:
        os.chdir(cwd)
    return work / "run"


def test_example_resolves_the_table_from_its_folder():
    config = load_input(Path(__file__).resolve().parents[2] / "examples/water_zbl/input.json")
    assert Path(config.model.use_srtab) == TABLE.resolve()


def test_every_entry_point_sees_the_blended_model(trained):
    coord, box, atype = close_contact()
    checkpoint_model, _ = load_model_or_checkpoint(next(trained.glob("model.ckpt-2.pt")))
    assert isinstance(checkpoint_model, DPZBLModel) and checkpoint_model.pair_table.nspline > 1000
    import torch

    ref = checkpoint_model(torch.from_numpy(coord), torch.from_numpy(atype), torch.from_numpy(box).reshape(1, 3, 3))
    ref = {k: v.detach().numpy() for k, v in ref.items()}
    assert_table_term(ref, checkpoint_model, atype)
    assert_same(DeepPot(str(trained / "model.pth")).eval(coord, box, atype), ref, 1e-10)
    from ase import Atoms

    atoms = Atoms(numbers=np.where(atype == 0, 8, 1), positions=coord[0], cell=box.reshape(3, 3), pbc=True)
    atoms.calc = DP(str(trained / "model.pth"))
    np.testing.assert_allclose(atoms.get_potential_energy(), ref["energy"][0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(atoms.get_forces(), ref["force"][0], rtol=0, atol=1e-10)


def assert_table_term(ref, model, atype):
    """The pushed O and H carry (above their output bias) half the table's O-H energy at 0.35 A, tens of eV."""
    bias = model.out_bias[0, :, 0].numpy()[atype[PUSHED]]
    assert np.all(ref["atom_energy"][0, PUSHED] - bias > 30.0)


def assert_same(result, ref, atol):
    energy, force, virial = result[:3]
    np.testing.assert_allclose(energy.reshape(-1), ref["energy"], rtol=0, atol=10 * atol)
    np.testing.assert_allclose(force.reshape(ref["force"].shape), ref["force"], rtol=0, atol=atol)
    np.testing.assert_allclose(virial.reshape(-1), ref["virial"].reshape(-1), rtol=0, atol=10 * atol)


def test_compress_keeps_the_pair_term(tmp_path):
    """An se_e2_a DP/ZBL model (se_atten is not compressible) frozen and compressed: the compressed file's blended
    numbers equal the uncompressed model's to the tabulation error, with the table's 100+ eV term in them."""
    import torch

    from deeppot.config import validate_input
    from deeppot.export.model_file import save_model_file
    from deeppot.model.build import build_model

    config = small_input(str(TABLE))
    config["model"]["descriptor"] = {"type": "se_e2_a", "sel": [46, 92], "rcut": 6.0, "rcut_smth": 0.5,
                                     "neuron": [4, 8, 16], "axis_neuron": 4, "seed": 1}
    model = build_model(validate_input(config).model.resolve_sel(None))
    model.min_nbor_dist = 0.88
    save_model_file(model, config["model"], tmp_path / "model.pth")
    assert main(["compress", "-i", str(tmp_path / "model.pth"), "-o", str(tmp_path / "compressed.pth")]) == 0
    coord, box, atype = close_contact()
    ref = model(torch.from_numpy(coord), torch.from_numpy(atype), torch.from_numpy(box).reshape(1, 3, 3))
    ref = {k: v.detach().numpy() for k, v in ref.items()}
    assert_table_term(ref, model, atype)
    assert_same(DeepPot(str(tmp_path / "compressed.pth")).eval(coord, box, atype), ref, 1e-5)


def test_deeppot_test_runs_on_the_frozen_model(trained, tmp_path):
    assert main(["test", "-m", str(trained / "model.pth"), "-s", str(WATER / "data_3"), "-n", "2",
                 "-d", str(tmp_path / "detail")]) == 0
    assert np.loadtxt(tmp_path / "detail.e.out").shape == (2, 2)


@pytest.mark.parametrize("change, message", [
    ({"use_srtab": "missing_table.txt"}, "model/use_srtab.*missing_table.txt not found"),
    ({"use_srtab": "bad_columns.txt"}, "has 3 columns, but 2 types need 4"),
    ({"use_srtab": "uneven.txt"}, "not a uniform increasing grid"),
    ({"sw_rmin": 0.9}, r"model/sw_rmax: \(0.8\) must be larger than sw_rmin"),
    ({"sw_rmax": None}, "model/sw_rmax: is required with model/use_srtab"),
    ({"srtab_add_bias": False}, "srtab_add_bias: false is not supported"),
    ({"use_srtab": None}, "model/sw_rmin: only acts with model/use_srtab"),
])
def test_bad_input_is_refused_before_work(tmp_path, change, message):
    np.savetxt(tmp_path / "bad_columns.txt", np.array([[0.1, 1.0, 0.5], [0.2, 0.5, 0.2], [0.3, 0.0, 0.0]]))
    np.savetxt(tmp_path / "uneven.txt", np.array([[0.1, 1, 1, 1], [0.2, 1, 1, 1], [0.35, 0, 0, 0]]))
    config = small_input(str(TABLE))
    for key, value in change.items():
        if value is None:
            config["model"].pop(key)
        else:
            config["model"][key] = value
    path = tmp_path / "input.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=message):
        load_input(path)


def test_convert_backend_moves_the_model_through_dp(trained, tmp_path):
    """.pth -> .dp (DeePMD-kit reads it as its DPZBLModel) -> .pth: the same numbers on a close contact."""
    from deepmd.dpmodel.utils.serialization import load_dp_model

    assert main(["convert-backend", str(trained / "model.pth"), str(tmp_path / "model.dp")]) == 0
    assert load_dp_model(str(tmp_path / "model.dp"))["model"]["type"] == "zbl"
    assert main(["convert-backend", str(tmp_path / "model.dp"), str(tmp_path / "back.pth")]) == 0
    coord, box, atype = close_contact()
    ref = DeepPot(str(trained / "model.pth")).eval(coord, box, atype)
    for name in ("model.dp", "back.pth"):
        np.testing.assert_allclose(DeepPot(str(tmp_path / name)).eval(coord, box, atype)[1], ref[1], rtol=0, atol=1e-10)
