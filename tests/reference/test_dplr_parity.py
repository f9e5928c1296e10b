"""The dipole_charge modifier against DeePMD-kit 3.2's backend-independent DPLR helpers (deepmd.dpmodel.modifier):
the reciprocal Ewald energy and grid, and the whole term (dpmodel's dipole model from our dict, its WC/charge
extension, its Ewald) with forces and virial by autograd through it, to 1e-10 in float64."""

import numpy as np
import torch
from deepmd.dpmodel.modifier import dipole_charge as dpmodel_dplr

from deeppot.modifier import DipoleChargeModifier
from deeppot.modifier.ewald import ewald_grid, reciprocal_energy
from deeppot_test_models import make_model, periodic_frame, triclinic_box
from dpmodel_oracle import reference_model


def frames():
    """Two frames of 6 O and 12 H in different triclinic cells (nf x N x 3, N, nf x 3 x 3)."""
    parts = [periodic_frame(18, seed=s, box=triclinic_box((8.6 + s, 8.4, 8.8), (0.6, -0.4, 0.3))) for s in (0, 1)]
    return np.stack([p[0] for p in parts]), np.array([0, 1, 1] * 6), np.stack([p[2] for p in parts])


def test_reciprocal_energy_and_grid_equal_dpmodels():
    rng = np.random.default_rng(4)
    coord, _, box = frames()
    charge = rng.normal(size=coord.shape[:2])
    grids = dpmodel_dplr.compute_ewald_grids(box, 0.7)
    assert tuple(ewald_grid(cell, 0.7) for cell in box) == grids
    ours = reciprocal_energy(torch.tensor(coord), torch.tensor(charge), torch.tensor(box), list(grids), 0.45)
    theirs = dpmodel_dplr.ewald_reciprocal_energy(coord, charge, box, grids, 0.45)
    np.testing.assert_allclose(ours.numpy(), theirs.reshape(-1), rtol=1e-12)


def test_modifier_energy_force_virial_equal_dpmodels():
    dipole = make_model(fitting="dipole", atom_exclude_types=[1], seed=3)
    modifier = DipoleChargeModifier(dipole, [-8.0], [6.0, 1.0], ewald_h=0.8, ewald_beta=0.4)
    coord, atype, box = frames()
    ours = modifier.evaluate_numpy(coord, atype, box)

    reference = reference_model(dipole.serialize())
    assert list(reference.get_sel_type()) == modifier.sel_type == [0]
    nf = coord.shape[0]
    coord_t = torch.tensor(coord, requires_grad=True)
    strain = torch.zeros(nf, 3, 3, dtype=torch.float64, requires_grad=True)
    deform = torch.eye(3, dtype=torch.float64) + strain
    strained, cell = coord_t @ deform, torch.tensor(box) @ deform
    atype_t = torch.tensor(np.tile(atype, (nf, 1)))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        dipoles = reference.call(strained, atype_t, cell.reshape(nf, 9))["dipole"]
        sites, charges = dpmodel_dplr.extend_dplr_system(strained, atype_t, dipoles, [0], [-8.0], [6.0, 1.0])
        energy = dpmodel_dplr.ewald_reciprocal_energy(sites, charges, cell,
                                                      dpmodel_dplr.compute_ewald_grids(box, 0.8), 0.4).reshape(nf)
    finally:
        torch.set_default_dtype(previous)
    grad_coord, grad_strain = torch.autograd.grad(energy.sum(), [coord_t, strain])
    np.testing.assert_allclose(ours["energy"], energy.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours["force"], -grad_coord.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours["virial"], -grad_strain.transpose(1, 2).reshape(nf, 9).numpy(), rtol=0,
                               atol=1e-10)
    assert np.abs(ours["force"]).max() > 0.1
