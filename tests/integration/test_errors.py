"""Bad input gets one message naming the file or JSON path, a non-zero exit and no traceback,
before any training starts."""

import shutil

import numpy as np
import pytest

from deeppot.cli import main
from helpers import WATER, small_water_input, write_json


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err


def test_typo_in_input_json(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = small_water_input()
    config["model"]["descriptor"]["rcutt"] = config["model"]["descriptor"].pop("rcut")
    write_json(tmp_path / "input.json", config)
    code, err = run(capsys, "train", "input.json")
    assert code != 0
    assert "model/descriptor/rcutt" in err and "did you mean 'rcut'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "lcurve.out").exists()


def test_rcut_smth_not_below_rcut(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = small_water_input()
    config["model"]["descriptor"]["rcut_smth"] = 7.0
    write_json(tmp_path / "input.json", config)
    code, err = run(capsys, "train", "input.json")
    assert code != 0 and "model/descriptor/rcut_smth" in err


def test_sel_of_wrong_length(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = small_water_input()
    config["model"]["descriptor"]["sel"] = [46, 92, 3]
    write_json(tmp_path / "input.json", config)
    code, err = run(capsys, "train", "input.json")
    assert code != 0 and "model/descriptor/sel" in err


def test_missing_input_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, err = run(capsys, "train", "nothing.json")
    assert code != 0 and "nothing.json" in err


def test_nan_in_labels_named_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(WATER / "data_0", broken)
    energy = np.load(broken / "set.000" / "energy.npy")
    energy[3] = np.nan
    np.save(broken / "set.000" / "energy.npy", energy)
    config = small_water_input()
    config["training"]["training_data"]["systems"] = [str(broken)]
    write_json(tmp_path / "input.json", config)
    code, err = run(capsys, "train", "input.json")
    assert code != 0
    assert "energy.npy" in err and "NaN" in err
    assert not (tmp_path / "lcurve.out").exists()


def test_malformed_data_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(WATER / "data_0", broken)
    (broken / "type.raw").unlink()
    config = small_water_input()
    config["training"]["training_data"]["systems"] = [str(broken)]
    write_json(tmp_path / "input.json", config)
    code, err = run(capsys, "train", "input.json")
    assert code != 0 and "type.raw" in err


def test_missing_model_file_for_test(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, err = run(capsys, "test", "-m", "missing.pth", "-s", WATER / "data_3")
    assert code != 0 and "missing.pth" in err and "deeppot freeze" in err


def test_not_a_model_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.pth").write_bytes(b"not a model")
    code, err = run(capsys, "test", "-m", "junk.pth", "-s", WATER / "data_3")
    assert code != 0 and "junk.pth" in err


def test_freeze_without_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, err = run(capsys, "freeze", "-o", "model.pth")
    assert code != 0 and "checkpoint" in err


def test_truncated_checkpoint_is_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.ckpt-5.pt").write_bytes(b"\x80\x02partial")
    code, err = run(capsys, "freeze", "-c", "model.ckpt-5.pt")
    assert code != 0 and "model.ckpt-5.pt" in err


@pytest.mark.parametrize("command", ["train", "freeze", "test"])
def test_help_describes_options(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--verbose" in out and len(out.splitlines()) > 5


def test_loss_option_deeppot_does_not_implement_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = small_water_input()
    config["loss"]["use_huber"] = True
    write_json(tmp_path / "input.json", config)
    code, err = run(capsys, "train", "input.json")
    assert code != 0 and "loss/use_huber" in err and "not supported" in err
    assert not (tmp_path / "lcurve.out").exists()


def test_ignored_training_option_is_warned(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    config = small_water_input(numb_steps=1, disp_freq=1, save_freq=1)
    config["training"]["disp_avg"] = True
    write_json(tmp_path / "input.json", config)
    assert main(["train", "input.json"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("training/disp_avg" in w and "no effect" in w for w in warnings)


def test_unexpected_failure_is_one_message_and_verbose_shows_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    import deeppot.commands.freeze as freeze_command

    def broken(*args, **kwargs):
        raise RuntimeError("something deep broke")

    monkeypatch.setattr(freeze_command, "freeze", broken)
    code, err = run(capsys, "freeze")
    assert code == 1 and "RuntimeError: something deep broke" in err and "Traceback" not in err
    with pytest.raises(RuntimeError):
        main(["freeze", "-v"])
