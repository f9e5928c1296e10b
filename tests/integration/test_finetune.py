"""deeppot train --finetune on the water example: the pretrained weights under input.json's type_map (reversed, or a
subset for se_atten) predict the same forces, and energies shifted by the refitted bias alone; --model-branch RANDOM
re-initialises the fitting net only and sets the bias from the data; bad input with its message."""

import json

import numpy as np
import pytest
import torch
from test_change_bias import water_pretrained

from deeppot.cli import main
from deeppot.config import validate_input
from deeppot.errors import ConfigError, ModelFileError
from deeppot.export.freeze import load_model_or_checkpoint
from deeppot.train.trainer import Trainer
from helpers import DATA, WATER, small_water_input, write_json


@pytest.fixture(scope="module")
def water(tmp_path_factory):
    return water_pretrained(tmp_path_factory.mktemp("finetune"))


def finetune_input(type_map=("H", "O"), sel=(92, 46), numb_steps=1) -> dict:
    """The small water input for new data (data_1), its type_map and per-type sel in that order."""
    config = small_water_input(numb_steps=numb_steps, disp_freq=1, save_freq=1)
    config["model"].update(type_map=list(type_map), data_stat_nbatch=1)
    config["model"]["descriptor"]["sel"] = sel if isinstance(sel, str) else list(sel)
    config["training"]["training_data"]["systems"] = [str(WATER / "data_1")]
    config["training"]["validation_data"]["numb_btch"] = 1
    return config


def _predict(model, type_map):
    """Energy (nf) and forces of the first two frames of water/data_2, types by element name."""
    from deeppot.data import DeepmdSystem

    system = DeepmdSystem.load(WATER / "data_2", list(type_map))
    out = model(torch.from_numpy(system.coord[:2]), torch.from_numpy(system.atype), torch.from_numpy(system.box[:2]))
    counts = np.array([(system.atype == t).sum() for t in range(len(type_map))], dtype=float)
    return out["energy"].detach().numpy(), out["force"].detach().numpy(), counts, system.atype


def _assert_same_up_to_bias(pretrained, finetuned):
    """Forces equal; energies differ by sum over atoms of the bias change (eV); atoms matched by element."""
    e0, f0, _, atype0 = _predict(pretrained, pretrained.type_map)
    e1, f1, counts, atype1 = _predict(finetuned, finetuned.type_map)
    names0 = [pretrained.type_map[t] for t in atype0]
    assert names0 == [finetuned.type_map[t] for t in atype1]  # the same atoms in the same order
    np.testing.assert_allclose(f1, f0, rtol=1e-10, atol=1e-10)
    old_bias = {name: float(pretrained.out_bias[0, t, 0]) for t, name in enumerate(pretrained.type_map)}
    shift = sum(c * (float(finetuned.out_bias[0, t, 0]) - old_bias[name])
                for t, (name, c) in enumerate(zip(finetuned.type_map, counts)))
    assert abs(shift) > 1e-3  # the bias was refitted on the new data
    np.testing.assert_allclose(e1 - e0, shift, rtol=1e-9)


@pytest.mark.parametrize("source, sel", [("checkpoint", (92, 46)), ("frozen", "auto")])
def test_reversed_type_map(water, tmp_path, source, sel):
    """sel "auto" takes the pretrained sel, in input.json's type order."""
    _, checkpoint, frozen = water
    path = checkpoint if source == "checkpoint" else frozen
    trainer = Trainer(validate_input(finetune_input(sel=sel)), output_dir=tmp_path, finetune=str(path))
    assert trainer.model.sel == [92, 46]
    assert trainer.model.type_map == ["H", "O"]
    _assert_same_up_to_bias(load_model_or_checkpoint(path)[0], trainer.model.eval())


def se_atten(config):
    config["model"]["descriptor"] = {"type": "se_atten", "sel": 60, "rcut": 4.0, "rcut_smth": 0.5,
                                     "neuron": [4, 8], "axis_neuron": 4, "attn": 8, "attn_layer": 1,
                                     "tebd_dim": 4, "seed": 3}
    return config


def test_mixed_type_subset(tmp_path):
    """se_atten pretrained with type_map O, H, C (water data, no C) fine-tuned to H, O."""
    pre_config = se_atten(small_water_input())
    pre_config["model"]["type_map"] = ["O", "H", "C"]
    _, checkpoint, _ = water_pretrained(tmp_path, pre_config)
    config = se_atten(finetune_input(sel=(60,)))
    trainer = Trainer(validate_input(config), output_dir=tmp_path / "ft", finetune=str(checkpoint))
    assert trainer.model.type_map == ["H", "O"] and trainer.model.out_bias.shape == (1, 2, 1)
    _assert_same_up_to_bias(load_model_or_checkpoint(checkpoint)[0], trainer.model.eval())


def test_new_element(tmp_path):
    """se_atten pretrained on water (O, H) fine-tuned on C/H/O molecules with type_map C, H, O: H and O keep their
    pretrained statistics, C takes this data's (those a fresh run computes)."""
    _, checkpoint, _ = water_pretrained(tmp_path, se_atten(small_water_input()))
    pretrained, _ = load_model_or_checkpoint(checkpoint)
    config = se_atten(finetune_input(type_map=("C", "H", "O"), sel=(60,)))
    cho = [str(DATA / "nopbc_cho" / name) for name in ("C1H4O2", "C3H3O4")]
    config["training"]["training_data"]["systems"] = cho
    config["training"]["validation_data"]["systems"] = cho[:1]
    fresh = Trainer(validate_input(config), output_dir=tmp_path / "fresh").model
    tuned = Trainer(validate_input(config), output_dir=tmp_path / "ft", finetune=str(checkpoint)).model
    for name in ("davg", "dstd"):
        new, old, data = (getattr(m.descriptor, name) for m in (tuned, pretrained, fresh))
        torch.testing.assert_close(new[0], data[0], rtol=0, atol=0)  # C
        torch.testing.assert_close(new[1:], old[[1, 0]], rtol=0, atol=0)  # H, O
    assert float(tuned.descriptor.dstd[0].min()) != 1.0  # C's statistics were computed, not the placeholder
    assert float(tuned.out_bias[0, 0, 0]) != 0.0  # C's bias refitted on this data


def test_random_fitting(water, tmp_path):
    """--model-branch RANDOM: the descriptor is the pretrained one; the fitting net and bias are those a fresh run
    on the same input starts from."""
    _, checkpoint, _ = water
    pretrained, _ = load_model_or_checkpoint(checkpoint)
    config = finetune_input(type_map=("O", "H"), sel=(46, 92))
    config["model"]["fitting_net"]["seed"] = 7
    fresh = Trainer(validate_input(config), output_dir=tmp_path / "fresh").model
    tuned = Trainer(validate_input(config), output_dir=tmp_path / "ft", finetune=str(checkpoint),
                    model_branch="RANDOM").model
    for name, value in tuned.state_dict().items():
        if name.startswith("descriptor."):
            assert torch.equal(value, pretrained.state_dict()[name]), name
        elif name.startswith("fitting.nets") and value.numel() > 0:
            assert torch.equal(value, fresh.state_dict()[name]), name
            assert not torch.equal(value, pretrained.state_dict()[name]), name
    np.testing.assert_allclose(tuned.out_bias.numpy(), fresh.out_bias.numpy(), rtol=1e-12)  # set by statistic


def test_use_pretrain_script(water, tmp_path, caplog):
    """--use-pretrain-script: the descriptor and fitting_net come from the pretrained model, in input.json's type
    order (sel), with input.json's trainable flag; what they replaced is logged."""
    _, checkpoint, _ = water
    config = finetune_input(sel=(46, 92))
    config["model"]["descriptor"].update(neuron=[2, 4], trainable=False)
    config["model"]["fitting_net"]["neuron"] = [8]
    trainer = Trainer(validate_input(config), output_dir=tmp_path, finetune=str(checkpoint), use_pretrain_script=True)
    descriptor = trainer.model_params()["descriptor"]
    assert descriptor["sel"] == [92, 46] and descriptor["neuron"] == [4, 8, 16] and descriptor["trainable"] is False
    assert trainer.model_params()["fitting_net"]["neuron"] == [16, 16]
    assert "model/descriptor/neuron: pretrained [4, 8, 16], input.json [2, 4]" in caplog.text
    assert "model/descriptor/sel/0: pretrained 92, input.json 46" in caplog.text
    _assert_same_up_to_bias(load_model_or_checkpoint(checkpoint)[0], trainer.model.eval())


def test_train_command_end_to_end(water, tmp_path, monkeypatch):
    _, _, frozen = water
    monkeypatch.chdir(tmp_path)
    write_json(tmp_path / "input.json", finetune_input())
    assert main(["train", "input.json", "--finetune", str(frozen)]) == 0
    assert (tmp_path / "model.ckpt-1.pt").exists()
    assert json.loads((tmp_path / "out.json").read_text())["model"]["type_map"] == ["H", "O"]
    model, _ = load_model_or_checkpoint(tmp_path / "model.ckpt-1.pt")
    assert model.type_map == ["H", "O"]


@pytest.mark.parametrize("change, error, message", [
    (lambda c: c["model"]["descriptor"].update(neuron=[4, 8, 32]), ConfigError,
     "model/descriptor/neuron/2: pretrained 16, input.json 32"),
    (lambda c: c["model"]["descriptor"].update(sel=[46, 92]), ConfigError,
     "model/descriptor/sel/0: pretrained 92, input.json 46"),
    (lambda c: c["model"]["fitting_net"].update(neuron=[8, 8]), ConfigError, "--model-branch RANDOM"),
    (lambda c: c["model"].update(type_map=["H", "O", "Cu"]) or c["model"]["descriptor"].update(sel=[92, 46, 4]),
     ConfigError, "elements ['Cu'] are not in the pretrained model's type_map ['O', 'H']"),
    (lambda c: c["model"].update(type_map=["O"]) or c["model"]["descriptor"].update(sel=[46]), ConfigError,
     "descriptor se_e2_a keeps one neighbor block per element"),
])
def test_mismatch_refused(water, tmp_path, change, error, message):
    config = finetune_input()
    change(config)
    with pytest.raises(error) as caught:
        Trainer(validate_input(config), output_dir=tmp_path, finetune=str(water[1]))
    assert message in str(caught.value)


def test_bad_pretrained_and_branch(water, tmp_path, capsys):
    not_a_model = tmp_path / "input.pth"
    not_a_model.write_text("{}")
    with pytest.raises(ModelFileError, match="neither a deeppot training checkpoint nor a frozen deeppot model"):
        Trainer(validate_input(finetune_input()), output_dir=tmp_path, finetune=str(not_a_model))
    write_json(tmp_path / "input.json", finetune_input())
    assert main(["train", str(tmp_path / "input.json"), "--finetune", str(water[2]), "--model-branch", "water"]) == 2
    assert "deeppot models are single-task" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "input.json"), "--model-branch", "RANDOM"]) == 2
    assert "--model-branch and --use-pretrain-script apply to --finetune only" in capsys.readouterr().err
