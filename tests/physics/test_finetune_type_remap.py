"""Fine-tuning's type remap (train/finetune.py): a model moved to another type_map by element name predicts the same
energy, atomic energies, forces and virial (and tensors) for the same structure, for every descriptor it accepts;
the others, subsets of type-blocked descriptors and unknown elements are refused with a message."""

import numpy as np
import pytest
import torch
from conftest import MODEL_VARIANTS, RCUT
from deeppot_test_models import evaluate, make_model, periodic_frame, triclinic_box

from deeppot.errors import ConfigError
from deeppot.model import deserialize_model
from deeppot.train.finetune import remap_model_types

# variants a reordered type_map cannot take, and the words of the refusal
REFUSED_REORDER = {
    "loc_frame": "descriptor loc_frame",
    "type_embedding": "residual connection",  # a tanh type-embedding layer 2 -> 2 types: x + tanh(xW + b)
    "type_embedding_two_side": "residual connection",  # 2 -> 4 = 2 ntypes
}


def _relabelled(atype: np.ndarray, old: list, new: list) -> np.ndarray:
    return np.array([new.index(old[t]) for t in atype], dtype=np.int64)


def _assert_same_predictions(model, remapped, coord, atype, box):
    new_atype = _relabelled(atype, list(model.type_map), list(remapped.type_map))
    before = evaluate(model, coord, atype, box, atomic_virial=True)
    after = evaluate(remapped, coord, new_atype, box, atomic_virial=True)
    assert abs(float(before["energy"].sum())) > 1e-3  # a non-trivial model
    for name in ("energy", "atom_energy", "force", "virial", "atom_virial"):
        np.testing.assert_allclose(after[name], before[name], rtol=1e-10, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("variant", sorted(MODEL_VARIANTS))
def test_reversed_type_map_keeps_predictions(variant, models, periodic_system):
    model = models[variant]
    reversed_map = list(model.type_map)[::-1]
    if variant in REFUSED_REORDER:
        with pytest.raises(ConfigError, match=REFUSED_REORDER[variant]):
            remap_model_types(model.serialize(), reversed_map)
        return
    remapped = deserialize_model(remap_model_types(model.serialize(), reversed_map))
    assert list(remapped.type_map) == reversed_map
    _assert_same_predictions(model, remapped, *periodic_system)


def _three_type_frame():
    coord, atype, box = periodic_frame(24, seed=3, box=triclinic_box((8.6, 8.4, 8.8), (0.6, -0.4, 0.3)))
    return coord, np.arange(24, dtype=np.int64) % 3, box


def test_three_types_two_side_permutation():
    """se_e2_a with one embedding net per (center, neighbor) pair: a 3-cycle of the types moves every net."""
    model = make_model(ntypes=3, sel=(16, 16, 16), type_one_side=False, exclude_types=[[0, 2]], rcut=RCUT, seed=61)
    new_map = ["C", "O", "H"]
    remapped = deserialize_model(remap_model_types(model.serialize(), new_map))
    assert remapped.serialize()["descriptor"]["exclude_types"] == [[1, 0]]  # (O, C) is (1, 0) in C, O, H
    _assert_same_predictions(model, remapped, *_three_type_frame())


def test_mixed_type_subset_keeps_predictions():
    """se_atten pretrained on O, H, C fine-tuned to H, O: the type-embedding rows, statistics and biases of H and
    O are kept, C's dropped; a structure of H and O is predicted as before."""
    model = make_model(descriptor="se_atten", ntypes=3, sel=(24,), type_one_side=False, rcut=RCUT, seed=67,
                       descriptor_options={"tebd_dim": 4, "attn": 8, "smooth_type_embedding": True},
                       fitting_input_scale=10.0)
    coord, atype, box = periodic_frame(20, seed=5, box=triclinic_box((8.6, 8.4, 8.8), (0.6, -0.4, 0.3)))
    remapped = deserialize_model(remap_model_types(model.serialize(), ["H", "O"]))
    assert remapped.ntypes == 2 and remapped.out_bias.shape == (1, 2, 1)
    _assert_same_predictions(model, remapped, coord, atype, box)


def test_polar_reversed_keeps_tensors(periodic_system):
    """Per-type fitting variables (scale, constant_matrix) and the shift_diag bias move with the types."""
    model = make_model(fitting="polar", rcut=RCUT, seed=71,
                       fitting_options={"fit_diag": False, "scale": [1.5, 0.5], "shift_diag": True})
    coord, atype, box = periodic_system
    remapped = deserialize_model(remap_model_types(model.serialize(), ["H", "O"]))
    args = (torch.from_numpy(coord[None]), torch.from_numpy(atype), torch.from_numpy(box[None]))
    new_args = (args[0], torch.from_numpy(_relabelled(atype, ["O", "H"], ["H", "O"])), args[2])
    before, after = model(*args)["polar"].detach().numpy(), remapped(*new_args)["polar"].detach().numpy()
    assert np.abs(before).max() > 1e-3
    np.testing.assert_allclose(after, before, rtol=1e-10, atol=1e-10)


def test_type_blocked_subset_refused():
    model = make_model(ntypes=3, sel=(16, 16, 16), rcut=RCUT, seed=73)
    with pytest.raises(ConfigError, match="neighbor block per element.*keep every element"):
        remap_model_types(model.serialize(), ["H", "O"])


def test_unknown_element_refused(models):
    with pytest.raises(ConfigError, match=r"elements \['Cu'\] are not in the pretrained model's type_map"):
        remap_model_types(models["one_side"].serialize(), ["O", "H", "Cu"])


def test_dp_zbl_model_refused():
    with pytest.raises(ConfigError, match="the pretrained model is a 'zbl' model"):
        remap_model_types({"@class": "Model", "type": "zbl", "type_map": ["O", "H"]}, ["O", "H"])


@pytest.mark.parametrize("variant", ["se_atten", "se_atten_v2"])
def test_new_element_for_type_embedding_models(variant, models, periodic_system):
    """A third element (C) gets a type-embedding row, statistics and bias; frames without it are predicted as
    before."""
    model = models[variant]
    data = remap_model_types(model.serialize(), ["H", "C", "O"])
    assert np.all(data["@variables"]["out_bias"][:, 1] == 0.0)
    assert np.all(data["descriptor"]["@variables"]["dstd"][1] == 1.0)  # placeholders until the data's statistics
    remapped = deserialize_model(data)
    assert remapped.ntypes == 3
    _assert_same_predictions(model, remapped, *periodic_system)
