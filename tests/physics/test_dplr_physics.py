"""DPLR through the shipped physics checks: the short-range model plus the dipole_charge modifier (Wannier
centroids from a dipole model, reciprocal Ewald) as one model; its forces and virial against finite differences,
translation with periodic images, rotation, permutation; the modifier's dict round trip."""

import numpy as np
import pytest
import torch

from deeppot.modifier import DipoleChargeModifier, deserialize_modifier
from deeppot.modifier.ewald import ewald_grid, reciprocal_energy
from deeppot_test_models import make_model, periodic_frame, triclinic_box
from physics_checks import check_forces_fd, check_permutation, check_rotation, check_translation, check_virial_fd


class ShortRangePlusModifier(torch.nn.Module):
    """What DeepPot evaluates for a DPLR file: the model's output plus the modifier's energy, force and virial."""

    def __init__(self, model, modifier):
        super().__init__()
        self.model, self.modifier = model, modifier

    def forward(self, coord, atype, box=None, fparam=None, aparam=None, do_atomic_virial=False):
        out = self.model(coord, atype, box, do_atomic_virial=do_atomic_virial)
        extra = self.modifier(coord, atype, box)
        return {**out, **{name: out[name] + extra[name] for name in extra}}


@pytest.fixture(scope="module")
def modifier():
    """Water-like charges (O +6 with a -8 centroid, H +1) around a small random dipole model (O selected)."""
    dipole = make_model(fitting="dipole", atom_exclude_types=[1], seed=3)
    return DipoleChargeModifier(dipole, [-8.0], [6.0, 1.0], ewald_h=0.8, ewald_beta=0.4, model_name="dipole.pth")


@pytest.fixture(scope="module")
def dplr(modifier):
    return ShortRangePlusModifier(make_model(seed=5), modifier)


@pytest.fixture(scope="module")
def neutral_frame():
    """6 O and 12 H (neutral with the charges above) in a triclinic ~8.6 A cell."""
    coord, _, box = periodic_frame(18, seed=0, box=triclinic_box((8.6, 8.4, 8.8), (0.6, -0.4, 0.3)))
    return coord, np.array([0, 1, 1] * 6), box


def test_modifier_term_is_substantial(modifier, neutral_frame):
    coord, atype, box = neutral_frame
    out = modifier(torch.tensor(coord[None]), torch.tensor(atype), torch.tensor(box[None]))
    assert abs(float(out["energy"][0])) > 0.1 and float(out["force"].abs().max()) > 0.1


def test_forces_and_virial_match_finite_differences(dplr, neutral_frame):
    check_forces_fd(dplr, *neutral_frame, rtol=1e-7)
    check_virial_fd(dplr, *neutral_frame, rtol=1e-7)


def test_translation_images_rotation_permutation(dplr, neutral_frame):
    check_translation(dplr, *neutral_frame, atol=1e-10)
    check_rotation(dplr, *neutral_frame, atol=1e-10)
    check_permutation(dplr, *neutral_frame, atol=1e-10)


def test_forces_include_the_dipole_models_chain_rule(modifier, neutral_frame):
    """Without the centroids' dependence on the environment the forces would differ: the chain rule matters."""
    coord, atype, box = (torch.tensor(a) for a in neutral_frame)
    full = modifier(coord[None], atype, box[None])["force"]
    with torch.no_grad():
        positions, charges = modifier.charge_sites(coord[None], atype[None], box[None])
    positions = positions.clone().requires_grad_(True)
    energy = reciprocal_energy(positions, charges, box[None], [ewald_grid(neutral_frame[2], 0.8)], 0.4)
    (grad,) = torch.autograd.grad(energy.sum(), [positions])
    rigid = -(grad[0, :18] + grad[0, 18:])  # each centroid's force handed to its atom, no dipole derivative
    assert float((full[0] - rigid).abs().max()) > 1e-3 * float(full.abs().max())


def test_serialized_modifier_round_trips(modifier, neutral_frame):
    coord, atype, box = neutral_frame
    data = modifier.serialize()
    assert data["@class"] == "Modifier" and data["type"] == "dipole_charge" and data["model_charge_map"] == [-8.0]
    again = deserialize_modifier(data)
    first, second = (m.evaluate_numpy(coord[None], atype, box[None]) for m in (modifier, again))
    for name in ("energy", "force", "virial"):
        np.testing.assert_array_equal(first[name], second[name])
