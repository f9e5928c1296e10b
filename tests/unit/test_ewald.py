"""The reciprocal-space Ewald term we ship (deeppot.modifier.ewald) against sums done another way: the full Ewald
energy (real-space erfc sum over images + reciprocal + self) of a tiny neutral cell equals the direct Coulomb sum
over images (NaCl's Madelung constant; a random cell's spherical sum with its surface-dipole term), and does not
depend on the splitting beta. The grid rule is DeePMD-kit's (K = ceil(|a| / h), made even)."""

import itertools

import numpy as np
import pytest
import torch
from scipy.special import erfc

from deeppot.modifier.ewald import ELECTROSTATIC_CONVERSION as COULOMB, ewald_grid, reciprocal_energy

NACL_MADELUNG = 1.747564594633182  # per ion pair, nearest-neighbor distance as the unit


def recip(coord, charge, box, beta, h):
    grids = [ewald_grid(box, h)]
    return float(reciprocal_energy(torch.tensor(coord[None]), torch.tensor(charge[None]), torch.tensor(box[None]),
                                   grids, beta)[0])


def real_and_self(coord, charge, box, beta, images=3):
    """The real-space sum (1/2) sum' q_i q_j erfc(beta r) / r over images |n_d| <= images, and the self term."""
    energy = 0.0
    for n in itertools.product(range(-images, images + 1), repeat=3):
        d = coord[None] + np.array(n) @ box - coord[:, None]
        r = np.linalg.norm(d, axis=-1)
        if n == (0, 0, 0):
            np.fill_diagonal(r, np.inf)
        energy += 0.5 * np.sum(charge[:, None] * charge[None] * erfc(beta * r) / r)
    return COULOMB * (energy - beta / np.sqrt(np.pi) * np.sum(charge**2))


def full_ewald(coord, charge, box, beta, h):
    return real_and_self(coord, charge, box, beta) + recip(coord, charge, box, beta, h)


def nacl_cell(a=5.64):
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    coord = np.concatenate([fcc, fcc + [0.5, 0, 0]]) * a
    return coord, np.array([1.0] * 4 + [-1.0] * 4), np.eye(3) * a


def random_neutral_cell(seed=1):
    rng = np.random.default_rng(seed)
    box = np.array([[4.0, 0, 0], [0.3, 3.8, 0], [-0.2, 0.4, 4.2]])
    charge = rng.normal(size=6)
    return rng.random((6, 3)) @ box, charge - charge.mean(), box


@pytest.mark.parametrize("beta, h", [(0.4, 1.0), (0.8, 0.3)])
def test_full_ewald_of_nacl_is_the_madelung_energy(beta, h):
    coord, charge, box = nacl_cell()
    expected = -4 * NACL_MADELUNG * COULOMB / (5.64 / 2)  # 4 ion pairs
    assert full_ewald(coord, charge, box, beta, h) == pytest.approx(expected, rel=1e-12)


def test_full_ewald_does_not_depend_on_beta():
    coord, charge, box = random_neutral_cell()
    energies = [full_ewald(coord, charge, box, beta, h) for beta, h in [(0.5, 0.5), (0.8, 0.3), (1.2, 0.2)]]
    assert abs(recip(coord, charge, box, 0.8, 0.3)) > 1.0  # the reciprocal term matters here
    np.testing.assert_allclose(energies, energies[0], rtol=1e-12)


def direct_sum_over_cube(coord, charge, box, n):
    """(1/2) sum' q_i q_j / r over the (2n+1)^3 cells of a cube of cells around the home cell (eV)."""
    axis = np.arange(-n, n + 1)
    shifts = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3) @ box
    r = np.linalg.norm(coord[None, None] - coord[None, :, None] + shifts[:, None, None], axis=-1)
    r[len(shifts) // 2][np.diag_indices(len(charge))] = np.inf  # the home cell: no self pair
    return 0.5 * COULOMB * np.sum(charge[:, None] * charge[None] / r)


def test_full_ewald_equals_the_direct_sum_over_images():
    """A cube of cubic cells, summed directly, tends to the tin-foil Ewald energy plus the surface term of a sphere
    (a cube's depolarisation is a sphere's), 2 pi C |M|^2 / (3 V), M = sum q r the cell dipole; the error falls as
    1/n^2, so two cubes (n = 8, 16) extrapolate to the limit."""
    rng = np.random.default_rng(1)
    box = np.eye(3) * 4.0
    charge = rng.normal(size=6)
    charge -= charge.mean()
    coord = rng.random((6, 3)) @ box
    dipole = charge @ coord
    surface = 2 * np.pi * COULOMB * dipole @ dipole / (3 * abs(np.linalg.det(box)))
    coarse, fine = (direct_sum_over_cube(coord, charge, box, n) - surface for n in (8, 16))
    limit = fine + (fine - coarse) / 3
    ewald = full_ewald(coord, charge, box, 0.6, 0.4)
    assert abs(fine - ewald) > 1e-5 * abs(ewald)  # the direct sum is still converging: the extrapolation matters
    assert limit == pytest.approx(ewald, rel=2e-6)


def test_grid_is_deepmd_kits():
    box = np.array([[16.421038, 0, 0], [0, 16.421038, 0], [0.5, 0, 9.0]])
    assert ewald_grid(box, 1.0) == (18, 18, 10)  # ceil(16.42) = 17 -> 18; ceil(9.01) = 10
    assert ewald_grid(box, 2.0) == (10, 10, 6)


def test_chunked_structure_factor_equals_one_chunk(monkeypatch):
    """Atoms are summed in chunks when their phase planes are large: the energy does not depend on it."""
    import deeppot.modifier.ewald as ewald

    coord, charge, box = random_neutral_cell(5)
    whole = recip(coord, charge, box, 0.5, 0.5)
    monkeypatch.setattr(ewald, "_atom_chunks", lambda natoms, plane: [slice(k, k + 1) for k in range(natoms)])
    assert recip(coord, charge, box, 0.5, 0.5) == pytest.approx(whole, rel=1e-13)


def test_energy_is_periodic_and_differentiable():
    coord, charge, box = random_neutral_cell(3)
    moved = coord + np.array([[1, 0, -2]]) @ box
    assert recip(moved, charge, box, 0.5, 0.5) == pytest.approx(recip(coord, charge, box, 0.5, 0.5), rel=1e-12)
    x = torch.tensor(coord[None], requires_grad=True)
    energy = reciprocal_energy(x, torch.tensor(charge[None]), torch.tensor(box[None]), [ewald_grid(box, 0.5)], 0.5)
    (grad,) = torch.autograd.grad(energy.sum(), [x])
    assert torch.allclose(grad.sum(dim=1), torch.zeros(3, dtype=torch.float64), atol=1e-10)  # no net force
