"""deeppot change-bias on the water example's checkpoint and frozen model: "change" mode leaves no mean energy error
on the data, "set" mode gives the least-squares bias of the labels, -b sets given values; each writes the kind of
file it read. Bad input with its message."""


import numpy as np
import pytest
import torch

from deeppot.cli import main
from deeppot.config import validate_input
from deeppot.data import DeepmdSystem
from deeppot.export.freeze import load_model_or_checkpoint
from deeppot.export.model_file import save_model_file
from deeppot.train.checkpoint import archive_kind, load_checkpoint
from deeppot.train.trainer import Trainer
from helpers import DATA, WATER, small_tensor_input, small_water_input

NFRAMES = 6  # -n: frames per system


def water_pretrained(folder, config=None):
    """(trainer, checkpoint, frozen file) of a small water model with its data statistics (no training steps)."""
    config = config or small_water_input()
    config["training"]["training_data"]["systems"] = [str(WATER / "data_0")]
    config["model"]["data_stat_nbatch"] = 1
    trainer = Trainer(validate_input(config), output_dir=folder)
    checkpoint = trainer.save(0)
    frozen = folder / "water.pth"
    save_model_file(trainer.model, trainer.model_params(), frozen)
    return trainer, checkpoint, frozen


@pytest.fixture(scope="module")
def water(tmp_path_factory):
    return water_pretrained(tmp_path_factory.mktemp("change_bias"))


def _energy_errors(model, system_path, nframes):
    """(label - prediction) energies (eV) of the first frames of a water system, and their atom counts per type."""
    system = DeepmdSystem.load(system_path, list(model.type_map))
    out = model(torch.from_numpy(system.coord[:nframes]), torch.from_numpy(system.atype),
                torch.from_numpy(system.box[:nframes]))
    counts = np.stack([(system.atype == t).sum() for t in range(model.ntypes)]).astype(float)
    return system.energy[:nframes] - out["energy"].detach().numpy(), np.tile(counts, (nframes, 1)), system


def test_change_mode_on_checkpoint(water, tmp_path):
    _, checkpoint, _ = water
    output = tmp_path / "changed.pt"
    assert main(["change-bias", str(checkpoint), "-s", str(WATER / "data_1"), "-n", str(NFRAMES), "-o", str(output)]) == 0
    assert archive_kind(output) == "checkpoint"
    before, after = load_checkpoint(str(checkpoint)), load_checkpoint(str(output))
    assert after["step"] == before["step"] and after["optimizer"] == before["optimizer"]
    old_model, _ = load_model_or_checkpoint(checkpoint)
    new_model, _ = load_model_or_checkpoint(output)
    old_errors, _, _ = _energy_errors(old_model, WATER / "data_1", NFRAMES)
    new_errors, _, _ = _energy_errors(new_model, WATER / "data_1", NFRAMES)
    assert abs(old_errors.mean()) > 1e-2  # the bias from data_0 leaves an offset on data_1
    assert abs(new_errors.mean()) < 1e-8
    # only the bias moved: forces and the weights are untouched
    for name, value in old_model.state_dict().items():
        if name not in ("out_bias", "out_std"):
            assert torch.equal(value, new_model.state_dict()[name]), name


def test_set_mode_on_frozen_file(water, tmp_path):
    _, _, frozen = water
    output = tmp_path / "set.pth"
    assert main(["change-bias", str(frozen), "-s", str(WATER / "data_1"), "-n", "4", "-m", "set", "-o", str(output)]) == 0
    assert archive_kind(output) == "frozen"
    model, meta = load_model_or_checkpoint(output)
    _, counts, system = _energy_errors(model, WATER / "data_1", 4)
    expected, *_ = np.linalg.lstsq(counts, system.energy[:4], rcond=None)  # spec 3.11 on the labels themselves
    np.testing.assert_allclose(model.out_bias.numpy().reshape(-1), expected, rtol=1e-10)
    assert meta["type_map"] == ["O", "H"]


def test_bias_values_default_output(water, tmp_path):
    _, checkpoint, _ = water
    source = tmp_path / "model.ckpt-0.pt"
    source.write_bytes(checkpoint.read_bytes())
    assert main(["change-bias", str(source), "-b", "-93.5", "-187.0"]) == 0
    model, _ = load_model_or_checkpoint(tmp_path / "model.ckpt-0_updated.pt")
    assert model.out_bias.numpy().reshape(-1).tolist() == [-93.5, -187.0]


@pytest.mark.parametrize("argv, message", [
    (["-b", "1.0"], "give one value per type of the model's type_map ['O', 'H'], got 1"),
    (["-s", str(DATA / "nopbc_cho" / "C3H3O4")], "elements ['C'] are not in the type_map ['O', 'H']. The model's "
     "type_map is ['O', 'H']; give data of these elements only"),
    (["-s", str(WATER / "data_1"), "--model-branch", "water"], "deeppot models are single-task"),
    (["-s", str(WATER / "data_1"), "-n", "-1"], "-n/--numb-batch -1"),
])
def test_bad_input(water, tmp_path, capsys, argv, message):
    _, checkpoint, _ = water
    assert main(["change-bias", str(checkpoint), *argv, "-o", str(tmp_path / "out.pt")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.pt").exists()


def test_datafile_lists_systems(water, tmp_path, capsys):
    """-f: one system per line; the same bias as -s on the folder holding those systems."""
    _, checkpoint, _ = water
    listing = tmp_path / "systems.txt"
    listing.write_text("\n".join(str(WATER / f"data_{i}") for i in range(4)) + "\n\n")
    outputs = [tmp_path / "f.pt", tmp_path / "s.pt"]
    assert main(["change-bias", str(checkpoint), "-f", str(listing), "-n", "2", "-o", str(outputs[0])]) == 0
    assert main(["change-bias", str(checkpoint), "-s", str(WATER), "-n", "2", "-o", str(outputs[1])]) == 0
    biases = [load_model_or_checkpoint(path)[0].out_bias for path in outputs]
    assert not torch.equal(biases[0], load_model_or_checkpoint(checkpoint)[0].out_bias)
    torch.testing.assert_close(biases[0], biases[1], rtol=1e-12, atol=1e-12)
    (tmp_path / "empty.txt").write_text("\n")
    assert main(["change-bias", str(checkpoint), "-f", str(tmp_path / "empty.txt")]) == 2
    assert "names no system; write one system folder per line" in capsys.readouterr().err


def test_model_file_of_another_kind(tmp_path, capsys):
    other = tmp_path / "input.pt"
    other.write_text("{}")
    assert main(["change-bias", str(other), "-s", str(WATER / "data_1")]) == 2
    assert "neither a deeppot training checkpoint nor a frozen deeppot model" in capsys.readouterr().err


def test_polar_model_change_mode(tmp_path, capsys):
    """A tensor model: the bias moves by the least-squares fit of global label - prediction (DeePMD-kit's
    change-by-statistic for polarizability); user-given values are for energy models only."""
    config = small_tensor_input("water_polar")
    config["model"]["data_stat_nbatch"] = 1
    trainer = Trainer(validate_input(config), output_dir=tmp_path)
    frozen, output = tmp_path / "polar.pth", tmp_path / "polar_changed.pth"
    save_model_file(trainer.model, trainer.model_params(), frozen)
    system_path = DATA / "water_polar" / "training_data_reformat" / "global_system"
    assert main(["change-bias", str(frozen), "-s", str(system_path), "-n", "3", "-o", str(output)]) == 0
    old, _ = load_model_or_checkpoint(frozen)
    new, _ = load_model_or_checkpoint(output)
    system = DeepmdSystem.load(system_path, list(old.type_map), tensor_labels=["polarizability"])
    pred = old(torch.from_numpy(system.coord[:3]), torch.from_numpy(system.atype), torch.from_numpy(system.box[:3]))
    residual = system.tensors["polarizability"][:3] - pred["global_polar"].detach().numpy()
    counts = np.tile(np.bincount(system.atype, minlength=2).astype(float), (3, 1))
    counts[:, old.atom_exclude_types] = 0.0  # the example fits O's polarizability only (H excluded)
    assert old.atom_exclude_types == [1]
    delta, *_ = np.linalg.lstsq(counts, residual, rcond=None)
    np.testing.assert_allclose(new.out_bias.numpy()[0], old.out_bias.numpy()[0] + delta, rtol=1e-9, atol=1e-9)
    assert main(["change-bias", str(frozen), "-b", "1", "2"]) == 2
    assert "user-given bias values are for energy models only" in capsys.readouterr().err
