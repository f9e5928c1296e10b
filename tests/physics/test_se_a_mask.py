"""se_a_mask with an aparam mask (use_aparam_as_mask) on clusters padded with virtual atoms: the shipped force and
virial checks, invariances, and what the mask promises (virtual atoms: no energy, no force, no influence).
se_a_mask has no cut-off and no cell, so the periodic checks do not apply: a cell is refused."""

import numpy as np
import pytest
import torch

import physics_checks as pc
from deeppot.errors import DataError
from deeppot_test_models import cluster_frame, evaluate, make_model

NREAL, NVIRTUAL = 12, 4


@pytest.fixture(scope="module")
def masked():
    """(model, coord, atype, aparam): 12 real atoms of 2 types and 4 virtual ones (at the origin, types 0 and 1,
    as in DeePMD-kit's zinc_protein data), the model with two-side nets and resnet_dt."""
    model = make_model("se_a_mask", sel=(12, 12), neuron=(4, 8, 16), type_one_side=False, resnet_dt=True,
                       numb_aparam=1, fitting_options={"use_aparam_as_mask": True}, seed=61)
    coord, atype = cluster_frame(NREAL, seed=3, size=5.0)
    coord = np.vstack([coord, np.zeros((NVIRTUAL, 3))])
    atype = np.append(atype, [0, 1, 1, 0])
    aparam = np.append(np.ones(NREAL), np.zeros(NVIRTUAL)).reshape(-1, 1)
    order = np.random.default_rng(0).permutation(len(atype))  # virtual atoms anywhere in the list
    return model, coord[order], atype[order], aparam[order]


def test_forces_and_virial_fd(masked):
    model, coord, atype, aparam = masked
    pc.check_forces_fd(model, coord, atype, None, aparam=aparam)
    pc.check_virial_fd(model, coord, atype, None, aparam=aparam)


def test_rotation_translation_permutation(masked):
    model, coord, atype, aparam = masked
    ref = evaluate(model, coord, atype, aparam=aparam)
    rot = pc.random_rotation(5)
    rotated = evaluate(model, coord @ rot, atype, aparam=aparam)
    np.testing.assert_allclose(rotated["energy"], ref["energy"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(rotated["force"], ref["force"] @ rot, rtol=0, atol=1e-12)
    moved = evaluate(model, coord + np.array([3.0, -1.0, 7.0]), atype, aparam=aparam)
    np.testing.assert_allclose(moved["force"], ref["force"], rtol=0, atol=1e-12)
    perm = np.random.default_rng(1).permutation(len(atype))
    permuted = evaluate(model, coord[perm], atype[perm], aparam=aparam[perm])
    np.testing.assert_allclose(permuted["energy"], ref["energy"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(permuted["atom_energy"], ref["atom_energy"][perm], rtol=0, atol=1e-12)
    np.testing.assert_allclose(permuted["force"], ref["force"][perm], rtol=0, atol=1e-12)


def test_virtual_atoms_have_no_energy_force_or_influence(masked):
    model, coord, atype, aparam = masked
    virtual = aparam[:, 0] == 0
    out = evaluate(model, coord, atype, aparam=aparam)
    assert np.abs(out["force"][~virtual]).max() > 1e-3
    np.testing.assert_array_equal(out["atom_energy"][virtual], 0.0)
    np.testing.assert_array_equal(out["force"][virtual], 0.0)
    # virtual atoms anywhere (even on top of real ones), or none at all: the same real atoms' results
    shifted = coord.copy()
    shifted[virtual] = coord[~virtual][:NVIRTUAL] + 0.01
    elsewhere = evaluate(model, shifted, atype, aparam=aparam)
    alone = evaluate(model, coord[~virtual], atype[~virtual], aparam=aparam[~virtual])
    for other in (elsewhere, alone):
        np.testing.assert_allclose(other["energy"], out["energy"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(other["force"][-NREAL:] if other is alone else other["force"][~virtual],
                                   out["force"][~virtual], rtol=0, atol=1e-12)
    # the aparam mask is the model's type -1 (virtual atom) mechanism
    as_type = evaluate(model, coord, np.where(virtual, -1, atype), aparam=aparam)
    np.testing.assert_array_equal(as_type["force"], out["force"])


def test_aparam_is_a_mask_not_an_input(masked):
    """Only aparam == 0 matters (DeePMD-kit casts it to an integer): 1 and 7 are both real atoms."""
    model, coord, atype, aparam = masked
    out = evaluate(model, coord, atype, aparam=aparam)
    scaled = evaluate(model, coord, atype, aparam=aparam * 7.0)
    np.testing.assert_array_equal(scaled["energy"], out["energy"])
    assert model.fitting.nets[0].layers[0].w.shape[0] == model.descriptor.dim_out  # no aparam column in the net
    with pytest.raises(ValueError, match="reads the real .1. / virtual .0. atom mask from aparam"):
        evaluate(model, coord, atype)


def test_every_atom_is_a_neighbor_without_switch(masked):
    """No cut-off: an atom 50 A away still changes the energy, by the plain 1/r rows (no smoothing)."""
    model, coord, atype, aparam = masked
    virtual = aparam[:, 0] == 0
    real_coord, real_type, ones = coord[~virtual], atype[~virtual], aparam[~virtual]
    base = evaluate(model, real_coord, real_type, aparam=ones)
    far = evaluate(model, np.vstack([real_coord, [50.0, 0.0, 0.0]]), np.append(real_type, 1),
                   aparam=np.vstack([ones, [[1.0]]]))
    assert abs(float(far["energy"]) - float(base["energy"])) > 1e-6  # beyond any usual rcut, still a neighbor
    assert np.abs(far["force"][-1]).max() > 0.0


def test_a_cell_is_refused(masked):
    model, coord, atype, aparam = masked
    with pytest.raises(DataError, match="se_a_mask has no cut-off and treats every frame as an isolated cluster"):
        model(torch.from_numpy(coord[None]), torch.from_numpy(atype), torch.eye(3, dtype=torch.float64)[None] * 30,
              aparam=torch.from_numpy(aparam[None]))


def test_engine_entry_point_applies_the_mask(masked):
    """forward_lower (what freeze exports) with an all-pairs list: the same energy and forces as forward."""
    model, coord, atype, aparam = masked
    n = len(atype)
    nlist = torch.tensor([[j for j in range(n) if j != i] for i in range(n)])[None]
    ext = torch.from_numpy(coord[None])
    out = model.forward_lower(ext, torch.from_numpy(atype[None]), nlist, aparam=torch.from_numpy(aparam[None]))
    ref = evaluate(model, coord, atype, aparam=aparam)
    np.testing.assert_allclose(out["energy"].numpy().reshape(-1), ref["energy"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["extended_force"].numpy()[0], ref["force"], rtol=0, atol=1e-12)
    with pytest.raises(Exception, match="real/virtual atom mask from aparam"):
        model.forward_lower(ext, torch.from_numpy(atype[None]), nlist)
