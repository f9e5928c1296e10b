"""Periodic images: supercell consistency and small cells in which atoms see their own images."""

import numpy as np
import pytest

from deeppot.geometry.neighbors import build_neighbor_list
from deeppot_test_models import evaluate
from physics_checks import assert_sel_not_exceeded, check_atom_virial_sum, check_forces_fd, check_replication, check_virial_fd, replicate


def _neighbor_index(model, coord, atype, box) -> np.ndarray:
    return build_neighbor_list(np.asarray(coord), np.asarray(box), np.asarray(atype), model.rcut, model.sel).index


def _has_self_images(model, coord, atype, box) -> bool:
    """Some atom is its own neighbor (rcut > a cell length)."""
    index = _neighbor_index(model, coord, atype, box)
    return any(i in index[i] for i in range(len(atype)))


def _has_repeated_images(model, coord, atype, box) -> bool:
    """Some atom sees two images of the same atom (rcut > half a cell length)."""
    index = _neighbor_index(model, coord, atype, box)
    return any(len(set(row[row >= 0])) < int((row >= 0).sum()) for row in index)


def test_replicated_cell(model, periodic_system):
    coord, atype, box = periodic_system
    assert not _has_repeated_images(model, coord, atype, box)
    check_replication(model, coord, atype, box, (2, 2, 2))


def test_replicated_cell_anisotropic(models, periodic_system):
    check_replication(models["two_side_resnet_dt"], *periodic_system, reps=(1, 3, 2))


@pytest.mark.parametrize("system", ["small_cell_system", "tiny_cell_system"])
def test_small_cell_multiple_images(models, system, request):
    """rcut > half the cell (several images of one atom are neighbors) and rcut > the cell (self-images)."""
    coord, atype, box = request.getfixturevalue(system)
    for name in ("one_side", "two_side_resnet_dt", "se_e2_r", "se_e3", "hybrid"):
        model = models[name]
        assert _has_repeated_images(model, coord, atype, box)
        assert _has_self_images(model, coord, atype, box) == (system == "tiny_cell_system")
        assert_sel_not_exceeded(model, coord, atype, box)
        check_forces_fd(model, coord, atype, box)
        check_virial_fd(model, coord, atype, box)
        check_atom_virial_sum(model, coord, atype, box)
        check_replication(model, coord, atype, box, (2, 2, 2))


def test_single_atom_in_small_cell(models):
    """One atom in a 3 A cubic-ish cell: all neighbors are its own images, forces vanish by symmetry of
    the lattice sum (F = -sum over +/- image pairs), but the energy and the virial (strain) do not."""
    model = models["one_side"]
    box = np.array([[3.0, 0.0, 0.0], [0.4, 3.1, 0.0], [-0.3, 0.2, 3.2]])
    coord = np.array([[0.3, 0.2, 0.1]])
    atype = np.array([1])
    out = evaluate(model, coord, atype, box)
    np.testing.assert_allclose(out["force"], 0.0, atol=1e-13)
    assert np.abs(out["virial"]).max() > 1e-4
    check_virial_fd(model, coord, atype, box)
    check_replication(model, coord, atype, box, (2, 2, 2))


def test_wrapping_does_not_matter(models, small_cell_system):
    """Atoms given far outside the cell behave like their wrapped positions."""
    model = models["gelu"]
    coord, atype, box = small_cell_system
    far = coord + np.array([[3, -2, 5], [-4, 1, 0], [0, 0, -7], [2, 2, 2], [-1, 6, -3]]) @ box
    ref = evaluate(model, coord, atype, box)
    out = evaluate(model, far, atype, box)
    for key in ("energy", "atom_energy", "force", "virial"):
        np.testing.assert_allclose(out[key], ref[key], rtol=0, atol=1e-12, err_msg=key)


def test_replicate_helper_is_sane(periodic_system):
    coord, atype, box = periodic_system
    big, big_atype, big_box, n = replicate(coord, atype, box, (2, 1, 3))
    assert n == 6 and big.shape == (6 * len(atype), 3)
    np.testing.assert_allclose(big_box, np.diag([2, 1, 3]) @ box)
    np.testing.assert_allclose(big[len(atype) :][: len(atype)], coord + box[2])
