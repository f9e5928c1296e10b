"""Learning-rate schedule against DeePMD-kit's own (deepmd.dpmodel) and the energy loss formula."""

import numpy as np
import pytest
import torch
from deepmd.dpmodel.utils.learning_rate import LearningRateExp

from deeppot import keys
from deeppot.train.learning_rate import ExpDecaySchedule
from deeppot.train.loss import EnergyLoss


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(start_lr=1e-3, stop_lr=1e-5, num_steps=20, decay_steps=5),
        dict(start_lr=1e-3, stop_lr=3.51e-8, num_steps=20000, decay_steps=100),
        dict(start_lr=1e-3, stop_lr=1e-5, num_steps=3, decay_steps=5),  # decay_steps auto-adjusted
        dict(start_lr=2e-3, stop_lr=1e-6, num_steps=1000, decay_steps=50, smooth=True),
        dict(start_lr=1e-3, stop_lr=1e-6, num_steps=500, decay_steps=20, warmup_steps=50, warmup_start_factor=0.1),
    ],
)
def test_exp_schedule_matches_deepmd(kwargs):
    reference = LearningRateExp(**kwargs)
    ours = ExpDecaySchedule.build(
        kwargs["start_lr"], kwargs["stop_lr"], kwargs["num_steps"], kwargs["decay_steps"],
        smooth=kwargs.get("smooth", False), warmup_steps=kwargs.get("warmup_steps", 0),
        warmup_start_factor=kwargs.get("warmup_start_factor", 0.0),
    )
    for step in range(0, kwargs["num_steps"], max(1, kwargs["num_steps"] // 97)):
        assert ours.value(step) == pytest.approx(float(reference.value(step)), rel=1e-12)


def test_observed_schedule_values():
    schedule = ExpDecaySchedule.build(1e-3, 1e-5, 20, 5)
    assert schedule.decay_rate == pytest.approx(0.31622776601683794, rel=1e-14)
    assert schedule.value(9) == pytest.approx(3.1622776601683794e-4, rel=1e-14)
    assert ExpDecaySchedule.build(1e-3, 1e-5, 3, 5).decay_steps == 1


def _batch(n_frames=3, natoms=4, seed=0):
    rng = np.random.default_rng(seed)

    def t(*shape):
        return torch.from_numpy(rng.normal(size=shape))

    pred = {keys.ENERGY: t(n_frames), keys.FORCE: t(n_frames, natoms, 3), keys.VIRIAL: t(n_frames, 9)}
    label = {keys.ENERGY: t(n_frames), keys.FORCE: t(n_frames, natoms, 3), keys.VIRIAL: t(n_frames, 9),
             "find_energy": 1.0, "find_force": 1.0, "find_virial": 1.0}
    return pred, label


def test_energy_loss_formula_and_metrics():
    pred, label = _batch()
    loss_fn = EnergyLoss(1e-3, 0.02, 1.0, 1000.0, 1.0, 0.5, 2.0)
    lr = 2.5e-4
    loss, metrics = loss_fn(pred, label, 4, lr)
    c = lr / 1e-3
    pe, pf, pv = 1 + (0.02 - 1) * c, 1 + (1000 - 1) * c, 2 + (0.5 - 2) * c
    inv_n = float(np.float32(1.0) / np.float32(4))
    de = (pred[keys.ENERGY] - label[keys.ENERGY]).numpy()
    df = (pred[keys.FORCE] - label[keys.FORCE]).numpy()
    dv = (pred[keys.VIRIAL] - label[keys.VIRIAL]).numpy()
    expected = pe * inv_n * np.mean(de**2) + pf * np.mean(df**2) + pv * inv_n * np.mean(dv**2)
    assert float(loss) == pytest.approx(expected, rel=1e-14)
    assert metrics["rmse_e"] == pytest.approx(np.sqrt(np.mean(de**2)) / 4, rel=1e-14)
    assert metrics["rmse_f"] == pytest.approx(np.sqrt(np.mean(df**2)), rel=1e-14)
    assert metrics["rmse_v"] == pytest.approx(np.sqrt(np.mean(dv**2)) / 4, rel=1e-14)
    assert metrics["rmse"] == pytest.approx(np.sqrt(expected), rel=1e-14)


def test_a_term_needs_both_prefactors_and_its_label():
    pred, label = _batch()
    only_limit = EnergyLoss(1e-3, start_pref_v=0.0, limit_pref_v=1.0)
    assert not only_limit.has_v  # PyTorch-backend rule: start and limit must both be non-zero
    _, metrics = only_limit(pred, label, 4, 1e-3)
    assert "rmse_v" not in metrics
    label["find_energy"] = 0.0
    loss_fn = EnergyLoss(1e-3, start_pref_f=0.0, limit_pref_f=0.0)
    loss, metrics = loss_fn(pred, label, 4, 1e-3)
    assert float(loss) == 0.0 and np.isnan(metrics["rmse_e"])
