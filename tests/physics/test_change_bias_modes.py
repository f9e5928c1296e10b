"""refit_output_bias (train/finetune.py) on frames whose labels are the model's own prediction plus a known per-type
shift: "change" mode recovers the shift added to the bias, "set" mode the least-squares fit of the labels (spec
3.11), for an energy and a polar model; frames of two compositions make the fit unique."""

import numpy as np
import pytest
import torch
from deeppot_test_models import make_model, periodic_frame

from deeppot import keys
from deeppot.errors import DataError
from deeppot.train.finetune import refit_output_bias


def _frames_with_shift(model, shift: np.ndarray):
    """Two numpy batches (two compositions) labelled prediction + counts @ shift; also their counts and labels."""
    batches, counts, labels = [], [], []
    for seed, natoms in ((0, 16), (1, 15)):
        coord, atype, box = periodic_frame(natoms, seed=seed)
        out = model(torch.from_numpy(coord[None]), torch.from_numpy(atype), torch.from_numpy(box[None]))
        count = np.bincount(atype, minlength=model.ntypes).astype(float)
        name = keys.ENERGY if model.output_type == keys.ENERGY else model.label_name
        pred = out[keys.ENERGY] if name == keys.ENERGY else out["global_" + model.output_name]
        label = pred.detach().numpy().reshape(1, -1) + (count @ shift).reshape(1, -1)
        batches.append({keys.COORD: coord[None], keys.ATYPE: atype[None], keys.BOX: box[None], "natoms": natoms,
                        name: label.reshape(-1) if name == keys.ENERGY else label, keys.find_key(name): 1.0})
        counts.append(count)
        labels.append(label.reshape(-1))
    return batches, np.array(counts), np.array(labels)


@pytest.mark.parametrize("fitting, width", [("ener", 1), ("polar", 9)])
def test_change_and_set_modes(fitting, width):
    options = {"fit_diag": False, "scale": [1.0, 1.0], "shift_diag": False} if fitting == "polar" else None
    model = make_model(fitting=fitting, fitting_options=options, seed=83)
    old = model.out_bias.detach().numpy()[0].copy()  # ntypes x width
    shift = np.arange(1.0, 2 * width + 1).reshape(2, width) * np.array([[0.5], [-0.25]])
    batches, counts, labels = _frames_with_shift(model, shift)
    before, after = refit_output_bias(model, batches, "change")
    np.testing.assert_allclose(before, old, rtol=0, atol=0)
    np.testing.assert_allclose(after, old + shift, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(model.out_bias.numpy()[0], old + shift, rtol=1e-10, atol=1e-10)
    refit_output_bias(model, batches, "set")
    expected, *_ = np.linalg.lstsq(counts, labels, rcond=None)
    np.testing.assert_allclose(model.out_bias.numpy()[0], expected, rtol=1e-10, atol=1e-10)


def test_data_without_labels_refused():
    model = make_model(seed=89)
    coord, atype, box = periodic_frame(8, seed=2)
    batch = {keys.COORD: coord[None], keys.ATYPE: atype[None], keys.BOX: box[None], keys.find_key(keys.ENERGY): 0.0}
    with pytest.raises(DataError, match="no frame of the data carries energy labels"):
        refit_output_bias(model, [batch], "change")
