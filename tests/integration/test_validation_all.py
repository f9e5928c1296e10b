"""training/validation_data/numb_btch "all": the lcurve validation RMSEs equal ``deeppot test``'s."""

import math
import shutil

import numpy as np
import pytest

from deeppot.config import validate_input
from deeppot.errors import ConfigError
from deeppot.export.freeze import freeze
from deeppot.infer.model_test import run_test
from deeppot.train.trainer import Trainer
from helpers import WATER, small_water_input


def _last_lcurve_row(path):
    lines = path.read_text().splitlines()
    names = lines[0].lstrip("#").split()
    return dict(zip(names, map(float, [line for line in lines if not line.startswith("#")][-1].split())))


def _copy_first_frames(source, target, nframes):
    """A deepmd/npy system holding the first ``nframes`` frames of ``source``'s set.000 (outside the repo)."""
    (target / "set.000").mkdir(parents=True)
    for raw in source.glob("*.raw"):
        shutil.copy(raw, target / raw.name)
    for array in (source / "set.000").glob("*.npy"):
        np.save(target / "set.000" / array.name, np.load(array)[:nframes])


def test_all_frames_validation_equals_deeppot_test(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    valid = tmp_path / "valid"  # two systems, found by the same search as 'deeppot test -s'
    for name, nframes in (("data_2", 6), ("data_3", 4)):
        _copy_first_frames(WATER / name, valid / name, nframes)
    config = small_water_input(numb_steps=2, disp_freq=2, save_freq=2)
    config["training"]["validation_data"].update(numb_btch="all", batch_size=3, systems=str(valid))
    trainer = Trainer(validate_input(config))
    sampler_state = str(trainer.valid_data.sampler.state_dict())
    trainer.run()
    assert str(trainer.valid_data.sampler.state_dict()) == sampler_state  # the random sampler is not advanced
    metrics = trainer.validate(trainer.schedule.value(1))
    freeze("model.ckpt-2.pt", tmp_path / "frozen.pth")
    reference = run_test(str(tmp_path / "frozen.pth"), str(valid), 0, None, False, None, False)
    assert metrics["rmse_e"] == pytest.approx(reference["rmse_ea"], rel=1e-9)
    assert metrics["rmse_f"] == pytest.approx(reference["rmse_f"], rel=1e-9)
    row = _last_lcurve_row(tmp_path / "lcurve.out")  # the file holds 3 significant digits
    for name in ("rmse_e", "rmse_f"):
        assert math.isclose(row[name + "_val"], metrics[name], rel_tol=6e-3), name


@pytest.mark.parametrize("value", ["some", 0, 1.5])
def test_bad_numb_btch_is_named(value):
    config = small_water_input()
    config["training"]["validation_data"]["numb_btch"] = value
    with pytest.raises(ConfigError, match=r'training/validation_data/numb_btch: .* use a positive integer or "all"'):
        validate_input(config)
