"""training/tensorboard: real TensorBoard event files (read back with tensorboard's own reader), with DeePMD-kit's
tags, at tensorboard_freq; a missing package is a clear error before training."""

import builtins
import logging
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from deeppot.cli import main
from deeppot.config import validate_input
from deeppot.errors import ConfigError
from deeppot.train.trainer import Trainer
from helpers import small_water_input, write_json


def _lcurve_rows(path):
    lines = path.read_text().splitlines()
    names = lines[0].lstrip("#").split()
    return {int(float(row.split()[0])): dict(zip(names, map(float, row.split())))
            for row in lines if not row.startswith("#")}


def test_event_file_holds_the_training_scalars(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    config = small_water_input(numb_steps=6, disp_freq=3, save_freq=6)
    config["training"].update(tensorboard=True, tensorboard_log_dir="tb", tensorboard_freq=3)
    with caplog.at_level(logging.WARNING, logger="deeppot"):
        assert main(["train", str(write_json(tmp_path / "input.json", config))]) == 0
    assert "tensorboard" not in caplog.text  # no longer 'accepted but without effect'
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert tags == {"Default/lr", "Default/loss", "Default/rmse", "Default/rmse_e", "Default/rmse_f"}
    lcurve = _lcurve_rows(tmp_path / "lcurve.out")
    for tag in tags:
        assert [e.step for e in events.Scalars(tag)] == [1, 3, 6]
    # the same training-batch numbers lcurve.out shows (3 significant digits there, float32 in the event file)
    for event in events.Scalars("Default/rmse_f"):
        assert event.value == pytest.approx(lcurve[event.step]["rmse_f_trn"], rel=6e-3)
    for event in events.Scalars("Default/lr"):
        assert event.value == pytest.approx(lcurve[event.step]["lr"], rel=6e-2)
    loss = {e.step: e.value for e in events.Scalars("Default/loss")}
    for event in events.Scalars("Default/rmse"):
        assert loss[event.step] == pytest.approx(event.value**2, rel=1e-5)


def test_no_event_file_without_the_option(tmp_path):
    trainer = Trainer(validate_input(small_water_input(numb_steps=1, disp_freq=1, save_freq=1)), output_dir=tmp_path)
    trainer.run()
    assert not (tmp_path / "log").exists()


def test_missing_package_is_named_before_training(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "tensorboard", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    config = small_water_input()
    config["training"]["tensorboard"] = True
    with pytest.raises(ConfigError, match=r"training/tensorboard is true but .* 'pip install tensorboard'"):
        Trainer(validate_input(config), output_dir=tmp_path)
    assert not list(tmp_path.iterdir())
