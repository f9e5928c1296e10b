"""deeppot show on the water example's frozen model and checkpoint, a compressed model, a hybrid descriptor and a
dipole model; bad input with its message."""

import logging

import pytest

from deeppot.cli import main
from deeppot.config import validate_input
from deeppot.export.compress import compress_model
from deeppot.export.model_file import save_model_file
from deeppot.train.trainer import Trainer
from helpers import small_tensor_input, small_water_input

# small_water_input's nets, per type (type_one_side): embedding 1-4-8-16, fitting 64-16-16(+idt)-1
DESCRIPTOR_SIZE = 2 * ((1 * 4 + 4) + (4 * 8 + 8) + (8 * 16 + 16))
FITTING_SIZE = 2 * ((64 * 16 + 16) + (16 * 16 + 16 + 16) + (16 + 1))


def show(caplog, *argv) -> str:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="deeppot"):
        assert main(["show", *map(str, argv)]) == 0
    return caplog.text


@pytest.fixture(scope="module")
def water(tmp_path_factory):
    folder = tmp_path_factory.mktemp("show")
    trainer = Trainer(validate_input(small_water_input()), output_dir=folder)
    checkpoint = trainer.save(0)
    frozen = folder / "water.pth"
    save_model_file(trainer.model, trainer.model_params(), frozen)
    compressed = folder / "compressed.pth"
    save_model_file(compress_model(trainer.model, trainer.model.min_nbor_dist), trainer.model_params(), compressed)
    return trainer, checkpoint, frozen, compressed


def test_frozen_and_checkpoint_show_the_same(water, caplog):
    trainer, checkpoint, frozen, _ = water
    texts = [show(caplog, path, "size", "min-nbor-dist", "fitting-net", "observed-type", "descriptor", "type-map")
             for path in (frozen, checkpoint)]
    for text in texts:
        assert "This is a singletask model" in text and "The model predicts energy\n" in text
        assert "The type_map is ['O', 'H']" in text
        assert "The descriptor parameter is {'type': 'se_e2_a', 'sel': [46, 92]" in text
        assert "'neuron': [16, 16]" in text.split("The fitting_net parameter is")[1]
        assert f"Parameters in descriptor: {DESCRIPTOR_SIZE:,}" in text
        assert f"Parameters in fitting-net: {FITTING_SIZE:,}" in text
        assert f"Parameters in total: {DESCRIPTOR_SIZE + FITTING_SIZE:,}" in text
        assert "Number of observed types: 2 \n" in text and "Observed types: ['O', 'H'] \n" in text
        assert f"The min_nbor_dist is {trainer.model.min_nbor_dist:.6f} Angstrom" in text
        # printed in dp show's order whatever the order asked
        assert text.index("type_map") < text.index("descriptor parameter") < text.index("Parameter counts")


def test_compressed_model(water, caplog):
    text = show(caplog, water[3], "descriptor", "size")
    assert "The model predicts energy, with a compressed descriptor (tabulated embedding nets)" in text
    assert "'type': 'se_e2_a'" in text and f"Parameters in fitting-net: {FITTING_SIZE:,}" in text


def test_hybrid_descriptor(tmp_path, caplog):
    config = small_water_input()
    config["model"]["descriptor"] = {"type": "hybrid", "list": [
        {"type": "se_e2_a", "sel": [20, 40], "rcut_smth": 0.5, "rcut": 4.0, "neuron": [2, 4], "axis_neuron": 2},
        {"type": "se_e2_r", "sel": [46, 92], "rcut_smth": 0.5, "rcut": 6.0, "neuron": [2, 4]}]}
    trainer = Trainer(validate_input(config), output_dir=tmp_path)
    text = show(caplog, trainer.save(0), "descriptor", "size")
    assert "The descriptor parameter is {'type': 'hybrid', 'list': [{'type': 'se_e2_a'" in text
    assert "{'type': 'se_e2_r', 'sel': [46, 92]" in text
    # embedding nets 1-2-4: se_e2_a one per type pair (type_one_side false), se_e2_r one per neighbor type
    assert f"Parameters in descriptor: {(4 + 2) * ((1 * 2 + 2) + (2 * 4 + 4))}" in text


def test_dipole_model(tmp_path, caplog):
    config = small_tensor_input("water_dipole")
    trainer = Trainer(validate_input(config), output_dir=tmp_path)
    frozen = tmp_path / "dipole.pth"
    save_model_file(trainer.model, trainer.model_params(), frozen)
    text = show(caplog, frozen, "fitting-net", "type-map")
    assert "The model predicts dipole\n" in text and "The fitting_net parameter is {" in text
    assert "'type': 'dipole'" in text


@pytest.mark.parametrize("argv, message", [
    (["missing.pth", "size"], "missing.pth: file not found"),
    (["input.json", "size"], "input.json: not a frozen deeppot model"),
    (["water.pth", "model-branch"], "deeppot models are single-task"),
])
def test_bad_input_is_named(water, tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(water[2].parent)
    (water[2].parent / "input.json").write_text("{}")
    assert main(["show", *argv]) == 2
    assert message in capsys.readouterr().err


def test_unknown_attribute_lists_the_known_ones(water, capsys):
    with pytest.raises(SystemExit):
        main(["show", str(water[2]), "serialization-tree"])
    err = capsys.readouterr().err
    assert "invalid choice: 'serialization-tree'" in err and "min-nbor-dist" in err
