"""deeppot convert-backend on the water example (checkpoint -> .dp -> .pth -> .dp, deeppot test and ASE on the
results) and on a DeePMD-kit PyTorch checkpoint; each bad input with its message, given before anything is
written. Numbers against DeePMD-kit itself: tests/reference/test_convert_backend_parity.py."""

import json
import logging

import h5py
import numpy as np
import pytest
import torch
from ase import Atoms

from deeppot.calculator import DP
from deeppot.cli import main
from deeppot.config import validate_input
from deeppot.export.dp_file import read_dp_file, write_dp_file
from deeppot.export.model_file import read_model_metadata, save_model_file
from deeppot.infer import DeepPot
from deeppot.train.trainer import Trainer
from helpers import ROOT, WATER, small_water_input

DEEPMD_PT = ROOT / "tests" / "reference" / "fixtures" / "deepmd_pt"


def frames(count: int = 2):
    folder = WATER / "data_3"
    coord = np.load(folder / "set.000" / "coord.npy")[:count]
    box = np.load(folder / "set.000" / "box.npy")[:count]
    return coord, box, np.loadtxt(folder / "type.raw", dtype=np.int64)


def convert(*paths) -> int:
    return main(["convert-backend", *map(str, paths)])


def same_numbers(first, second, atol=1e-10):
    coord, box, atype = frames()
    for ours, theirs in zip(DeepPot(first).eval(coord, box, atype), DeepPot(second).eval(coord, box, atype)):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=atol)


@pytest.fixture(scope="module")
def water(tmp_path_factory):
    folder = tmp_path_factory.mktemp("convert_backend")
    trainer = Trainer(validate_input(small_water_input()), output_dir=folder)
    return trainer, trainer.save(0), folder


def test_water_checkpoint_to_dp_to_pth_and_back(water, caplog):
    trainer, checkpoint, folder = water
    dp_file, frozen, again = folder / "water.dp", folder / "water.pth", folder / "again.dp"
    with caplog.at_level(logging.INFO, logger="deeppot"):
        assert convert(checkpoint, dp_file) == 0
    assert f"written to {dp_file}" in caplog.text and "se_e2_a descriptor" in caplog.text
    with h5py.File(dp_file) as handle:  # DeePMD-kit's layout: the dict as JSON, arrays as /variable_NNNN
        header = json.loads(handle.attrs["json"])
        assert header["software"] == "deeppot" and header["model"]["descriptor"]["type"] == "se_e2_a"
        assert header["model_def_script"] == trainer.model_params()
        where = header["@variables"]["min_nbor_dist"]
        assert where.startswith("/variable_")
        assert float(handle[where][()]) == pytest.approx(trainer.model.min_nbor_dist, abs=0)
        davg = header["model"]["descriptor"]["@variables"]["davg"]
        np.testing.assert_array_equal(handle[davg][()], trainer.model.descriptor.davg.numpy())
    same_numbers(checkpoint, dp_file)  # DeepPot (so deeppot test and ASE) takes the .dp directly
    assert main(["test", "-m", str(dp_file), "-s", str(WATER / "data_3"), "-n", "1"]) == 0

    assert convert(dp_file, frozen) == 0
    meta = read_model_metadata(frozen)
    assert meta["model_def_script"] == trainer.model_params() and meta["type_map"] == ["O", "H"]
    same_numbers(checkpoint, frozen)
    assert main(["test", "-m", str(frozen), "-s", str(WATER / "data_3"), "-n", "2", "-d", str(folder / "detail")]) == 0
    assert (folder / "detail.e.out").is_file()

    assert convert(frozen, again) == 0
    first, second = read_dp_file(dp_file), read_dp_file(again)
    assert json.dumps(first["model_def_script"]) == json.dumps(second["model_def_script"])
    np.testing.assert_array_equal(first["model"]["descriptor"]["@variables"]["davg"],
                                  second["model"]["descriptor"]["@variables"]["davg"])


def test_deepmd_checkpoint_to_pth_in_ase(tmp_path):
    """DeePMD-kit's own checkpoint, frozen by deeppot: ASE gives what the .dp DeePMD-kit converted it to gives."""
    frozen = tmp_path / "from_deepmd.pth"
    assert convert(DEEPMD_PT / "se_e2_a.pt", frozen) == 0
    coord, box, atype = frames(1)
    atoms = Atoms(symbols=[["O", "H"][t] for t in atype], positions=coord[0].reshape(-1, 3),
                  cell=box[0].reshape(3, 3), pbc=True)
    atoms.calc = DP(str(frozen))
    energy, force, _ = DeepPot(DEEPMD_PT / "se_e2_a.dp").eval(coord, box, atype)
    assert atoms.get_potential_energy() == pytest.approx(float(energy[0, 0]), abs=1e-8)
    np.testing.assert_allclose(atoms.get_forces(), force[0], rtol=0, atol=1e-10)
    assert read_model_metadata(frozen)["min_nbor_dist"] == pytest.approx(0.892451513761333)


# ------------------------------------------------------------------------------------------------ bad input
def refused(capsys, source, target) -> str:
    """The error message of a refused conversion (exit status 2, nothing written)."""
    capsys.readouterr()
    assert convert(source, target) == 2
    assert not target.exists()
    return capsys.readouterr().err


def edited_dp(tmp_path, edit):
    """A copy of DeePMD-kit's se_e2_a .dp with ``edit`` applied to its content."""
    content = read_dp_file(DEEPMD_PT / "se_e2_a.dp")
    edit(content)
    path = tmp_path / "edited.dp"
    write_dp_file(path, {k: v for k, v in content.items() if k in ("model", "model_def_script", "@variables")})
    return path


def edited_checkpoint(tmp_path, edit):
    """A copy of DeePMD-kit's se_e2_a checkpoint with ``edit`` applied to its model_params."""
    state = torch.load(DEEPMD_PT / "se_e2_a.pt", weights_only=True)
    edit(state["model"]["_extra_state"]["model_params"])
    path = tmp_path / "edited.pt"
    torch.save(state, path)
    return path


def test_unknown_suffixes(tmp_path, capsys):
    # the output's suffix is checked before the input is read: this input does not exist
    err = refused(capsys, tmp_path / "missing.dp", tmp_path / "model.pb")
    assert "cannot write '.pb' files (TensorFlow model files of DeePMD-kit)" in err
    assert "it writes .dp, .yaml, .yml, .pth, .pt" in err
    err = refused(capsys, tmp_path / "model.savedmodel", tmp_path / "out.dp")
    assert "cannot read '.savedmodel' files (JAX" in err and "'dp convert-backend'" in err
    err = refused(capsys, DEEPMD_PT / "make_checkpoints.py", tmp_path / "out.dp")
    assert "cannot read '.py' files; it reads .dp, .yaml, .yml, .pth, .pt" in err
    assert "model file not found" in refused(capsys, tmp_path / "missing.dp", tmp_path / "out.pth")


def test_files_of_another_kind(tmp_path, capsys):
    garbage = tmp_path / "garbage.dp"
    garbage.write_bytes(b"not a model\n" * 10)
    assert "not a DeePMD-kit .dp model (not an HDF5 file" in refused(capsys, garbage, tmp_path / "out.pth")

    data_set = tmp_path / "data.dp"  # an HDF5 file, but a data set rather than a model
    with h5py.File(data_set, "w") as handle:
        handle.create_dataset("coord", data=np.zeros((2, 3)))
    assert "without the 'json' attribute of a DeePMD-kit .dp model" in refused(capsys, data_set, tmp_path / "o.pth")

    named_pth = tmp_path / "model.pth"  # a .dp renamed
    named_pth.write_bytes((DEEPMD_PT / "se_e2_a.dp").read_bytes())
    assert "neither a deeppot model nor a PyTorch checkpoint" in refused(capsys, named_pth, tmp_path / "out.dp")

    truncated = tmp_path / "truncated.pt"
    data = (DEEPMD_PT / "se_e2_a.pt").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    assert "truncated" in refused(capsys, truncated, tmp_path / "out.dp")

    scripted = tmp_path / "scripted.pth"  # TorchScript without deeppot's metadata, as 'dp --pt freeze' writes
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(scripted))
    err = refused(capsys, scripted, tmp_path / "out.dp")
    assert "TorchScript model without deeppot's metadata" in err and "dp convert-backend scripted.pth model.dp" in err


def test_multi_task_models(tmp_path, capsys):
    def two_branches(params):
        params["model_dict"] = {"water": {}, "ice": {}}

    err = refused(capsys, edited_dp(tmp_path, lambda c: two_branches(c["model_def_script"])), tmp_path / "out.pth")
    assert "multi-task DeePMD-kit model (branches 'water', 'ice'); deeppot has no multi-task models" in err
    err = refused(capsys, edited_checkpoint(tmp_path, two_branches), tmp_path / "out.pth")
    assert "multi-task DeePMD-kit checkpoint (branches 'water', 'ice')" in err and "--head" in err


def test_parts_deeppot_lacks_are_named(tmp_path, capsys):
    def dpa2(content):
        content["model"]["descriptor"]["type"] = "dpa2"

    err = refused(capsys, edited_dp(tmp_path, dpa2), tmp_path / "out.pth")
    assert "deeppot cannot run this model: descriptor type 'dpa2' is not supported by deeppot" in err
    err = refused(capsys, edited_checkpoint(tmp_path, lambda p: p["descriptor"].update(type="dpa2")),
                  tmp_path / "out.dp")
    assert "parts deeppot does not implement" in err and "'dpa2'" in err

    def linear(content):
        content["model"] = {"@class": "Model", "type": "linear_ener", "models": [], "type_map": ["O", "H"]}

    err = refused(capsys, edited_dp(tmp_path, linear), tmp_path / "out.pth")
    assert "model of type 'linear_ener' without one descriptor and fitting" in err


def test_deepmd_checkpoint_to_deeppot_checkpoint_for_init_model(tmp_path):
    """A DeePMD-kit model goes on training in deeppot: its checkpoint as a deeppot one (step 0, the model section
    validated), which --init-model starts from with DeePMD-kit's numbers."""
    converted = tmp_path / "from_deepmd.pt"
    assert convert(DEEPMD_PT / "se_atten.pt", converted) == 0
    state = torch.load(converted, weights_only=True)
    assert state["step"] == 0 and "optimizer" not in state
    config = small_water_input(numb_steps=1)
    config["model"] = state["model_params"]
    trainer = Trainer(validate_input(config), init_model=str(converted), output_dir=tmp_path)
    coord, box, atype = frames(1)
    out = trainer.model(torch.from_numpy(coord.reshape(1, -1, 3)), torch.from_numpy(atype),
                        torch.from_numpy(box.reshape(1, 3, 3)))
    energy, force, _ = DeepPot(DEEPMD_PT / "se_atten.dp").eval(coord, box, atype)
    np.testing.assert_allclose(out["energy"].detach().numpy().reshape(1, 1), energy, rtol=0, atol=1e-10)
    np.testing.assert_allclose(out["force"].detach().numpy(), force, rtol=0, atol=1e-10)


def test_checkpoint_needs_a_model_section(tmp_path, capsys):
    """A .dp without a model section deeppot validates (DeePMD-kit's writer allows any) cannot become a checkpoint."""
    path = edited_dp(tmp_path, lambda content: content.update(model_def_script={}))
    err = refused(capsys, path, tmp_path / "out.pt")
    assert "out.pt: a checkpoint needs the model section of input.json (model_def_script)" in err
    assert "edited.dp (model_def_script): type_map: required key missing" in err


def test_parts_that_would_be_lost_are_refused(water, tmp_path, capsys):
    """A modifier (DPLR) has no place in a .dp, and a checkpoint tensor deeppot's model has no place for means a
    part deeppot lacks: both refused rather than dropped."""
    trainer = water[0]
    with_modifier = tmp_path / "dplr.pth"
    save_model_file(trainer.model, trainer.model_params(), with_modifier,
                    modifier={"type": "dipole_charge", "@variables": {"charges": np.ones(2)}})
    err = refused(capsys, with_modifier, tmp_path / "out.dp")
    assert "carries a 'dipole_charge' modifier, which convert-backend does not carry" in err

    state = torch.load(DEEPMD_PT / "se_e2_a.pt", weights_only=True)
    state["model"]["model.Default.atomic_model.descriptor.sea.extra_gate"] = torch.ones(3)
    extra = tmp_path / "extra.pt"
    torch.save(state, extra)
    err = refused(capsys, extra, tmp_path / "out.dp")
    assert "holds tensors deeppot's se_e2_a model has no place for (model.Default.atomic_model.descriptor.sea." \
           "extra_gate)" in err
