"""Dipole and polarizability models: parity with DeePMD-kit 3.2's numpy DipoleModel / PolarModel (deepmd.dpmodel,
built from our serialize() dict) to 1e-10 in float64, atomic and global outputs, on two water frames."""

import numpy as np
import pytest

from deeppot.model import deserialize_model
from deeppot_test_models import load_nopbc, load_water, make_model
from dpmodel_oracle import reference_model, reference_tensor
from test_dpmodel_parity import WATER

ATOL = 1e-10


@pytest.fixture(scope="module")
def water():
    return load_water(2)


def tensor_outputs(model, coord, atype, box, fparam=None, aparam=None):
    import torch

    nf = coord.shape[0]
    out = model(torch.from_numpy(np.asarray(coord, dtype=np.float64)), torch.from_numpy(atype),
                None if box is None else torch.from_numpy(np.asarray(box, dtype=np.float64)).reshape(nf, 3, 3),
                None if fparam is None else torch.from_numpy(fparam), None if aparam is None else torch.from_numpy(aparam))
    return {k: v.detach().numpy() for k, v in out.items()}


def assert_tensor_parity(model, coord, atype, box, fparam=None, aparam=None):
    ours = tensor_outputs(model, coord, atype, box, fparam, aparam)
    reference = reference_tensor(reference_model(model.serialize()), coord, np.tile(atype, (coord.shape[0], 1)), box,
                                 fparam, aparam)
    name = model.output_name
    assert set(reference) == {name, "global_" + name}
    assert np.abs(reference[name]).max() > 1e-2, "degenerate comparison: reference tensors ~0"
    np.testing.assert_allclose(ours[name], reference[name], rtol=0, atol=ATOL, err_msg=name)
    np.testing.assert_allclose(ours["global_" + name], reference["global_" + name], rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours["global_" + name], ours[name].sum(axis=1), rtol=0, atol=1e-12)
    return ours


@pytest.mark.parametrize("type_one_side", [True, False], ids=["one_side", "two_side"])
def test_dipole(water, type_one_side):
    model = make_model(**WATER, type_one_side=type_one_side, fitting="dipole", seed=201)
    assert_tensor_parity(model, *water)


@pytest.mark.parametrize("fit_diag", [True, False], ids=["fit_diag", "full"])
@pytest.mark.parametrize("shift_diag", [True, False], ids=["shift", "no_shift"])
def test_polar(water, fit_diag, shift_diag):
    model = make_model(**WATER, fitting="polar", seed=203,
                       fitting_options=dict(fit_diag=fit_diag, shift_diag=shift_diag, scale=[1.7, 0.6]))
    ours = assert_tensor_parity(model, *water)
    alpha = ours["polar"].reshape(2, -1, 3, 3)
    np.testing.assert_allclose(alpha, alpha.transpose(0, 1, 3, 2), rtol=0, atol=1e-12)  # symmetric


@pytest.mark.parametrize("fitting", ["dipole", "polar"])
def test_sel_type_subset(water, fitting):
    """DeePMD-kit's sel_type = the types not in atom_exclude_types: the H atoms give exactly zero."""
    model = make_model(**WATER, fitting=fitting, atom_exclude_types=[1], seed=205)
    ours = assert_tensor_parity(model, *water)
    coord, atype, box = water
    name = model.output_name
    np.testing.assert_array_equal(ours[name][:, atype == 1], 0.0)
    assert np.abs(ours[name][:, atype == 0]).min() > 0


@pytest.mark.parametrize("fitting", ["dipole", "polar"])
def test_fparam_aparam(water, fitting):
    coord, atype, box = water
    model = make_model(**WATER, fitting=fitting, numb_fparam=2, numb_aparam=1, seed=207)
    rng = np.random.default_rng(1)
    assert_tensor_parity(model, coord, atype, box, rng.normal(size=(2, 2)), rng.normal(size=(2, len(atype), 1)))


def test_nopbc_molecule():
    coord, atype, type_map = load_nopbc()
    model = make_model(ntypes=len(type_map), type_map=type_map, rcut=4.0, rcut_smth=0.5, sel=(10, 10, 10),
                       fitting="polar", seed=209)
    assert_tensor_parity(model, coord, atype, None)


@pytest.mark.parametrize("fitting", ["dipole", "polar"])
def test_serialization_round_trip(water, fitting):
    """deserialize(serialize()) picks the class by the fitting type and gives the same numbers."""
    model = make_model(**WATER, fitting=fitting, fitting_options={} if fitting == "dipole" else {"fit_diag": False},
                       seed=211)
    again = deserialize_model(model.serialize())
    assert type(again) is type(model)
    first, second = tensor_outputs(model, *water), tensor_outputs(again, *water)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


@pytest.mark.parametrize("fitting", ["dipole", "polar"])
def test_se_atten_mixed_types(water, fitting):
    """se_atten's rotation matrix (mixed-type slots, one shared fitting net); attn_layer 0 as the attention layers
    are checked at descriptor level in test_se_atten_parity.py."""
    model = make_model(descriptor="se_atten", rcut=6.0, rcut_smth=0.5, sel=(120,), neuron=(8, 16, 32), axis_neuron=4,
                       fitting_neuron=(16, 16), fitting=fitting, atom_exclude_types=[1], seed=213,
                       descriptor_options=dict(attn=16, attn_layer=0, tebd_dim=4))
    assert model.fitting.mixed_types and len(model.fitting.nets) == 1
    assert_tensor_parity(model, *water)
