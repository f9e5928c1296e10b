"""Forces and virials are exact derivatives of the energy (spec 3.12), checked by central differences."""

import numpy as np

from deeppot_test_models import evaluate, make_model
from physics_checks import (
    assert_sel_not_exceeded,
    check_atom_virial_fd,
    check_atom_virial_sum,
    check_forces_fd,
    check_virial_fd,
    check_virial_is_sum_f_r,
    finite_difference_virial,
)


def test_forces_fd_periodic(model, periodic_system):
    coord, atype, box = periodic_system
    assert_sel_not_exceeded(model, coord, atype, box)
    check_forces_fd(model, coord, atype, box)


def test_forces_fd_nonperiodic(model, cluster_system):
    coord, atype = cluster_system
    check_forces_fd(model, coord, atype, None)


def test_virial_fd_periodic(model, periodic_system):
    coord, atype, box = periodic_system
    check_virial_fd(model, coord, atype, box)


def test_virial_fd_nonperiodic(model, cluster_system):
    coord, atype = cluster_system
    check_virial_fd(model, coord, atype, None)


def test_atom_virial_sums_to_virial_periodic(model, periodic_system):
    check_atom_virial_sum(model, *periodic_system)


def test_atom_virial_sums_to_virial_nonperiodic(model, cluster_system):
    coord, atype = cluster_system
    check_atom_virial_sum(model, coord, atype, None)


def test_atom_virial_fd_nonperiodic(model, cluster_system):
    check_atom_virial_fd(model, *cluster_system)


def test_virial_is_sum_f_outer_r_without_pbc(model, cluster_system):
    check_virial_is_sum_f_r(model, *cluster_system)


def test_virial_layout_is_f_a_r_b():
    """Layout [a*3+b] = sum F[a] r[b] = -dE/d(eps)[b, a]. A 2-atom molecule along a skewed axis has a
    non-trivial, symmetric virial; checking against the explicit formula pins the flattening order."""
    model = make_model(rcut=4.0, seed=21)
    coord = np.array([[0.0, 0.0, 0.0], [1.1, 0.7, -0.4]])
    atype = np.array([0, 1])
    out = evaluate(model, coord, atype, None)
    expected = np.einsum("ia,ib->ab", out["force"], coord)
    np.testing.assert_allclose(out["virial"].reshape(3, 3), expected, rtol=0, atol=1e-14)
    np.testing.assert_allclose(out["virial"].reshape(3, 3), finite_difference_virial(model, coord, atype), rtol=0, atol=1e-9)
    assert np.abs(expected[0, 1]) > 1e-3


def test_fd_with_fparam_and_aparam(periodic_system):
    coord, atype, box = periodic_system
    model = make_model(rcut=4.0, numb_fparam=1, numb_aparam=1, seed=31)
    fparam = np.array([[0.7]])
    aparam = np.linspace(-1.0, 1.0, len(atype)).reshape(1, len(atype), 1)
    check_forces_fd(model, coord, atype, box, fparam=fparam, aparam=aparam)
    check_virial_fd(model, coord, atype, box, fparam=fparam, aparam=aparam)
    # fparam and aparam really enter the energy
    base = evaluate(model, coord, atype, box, fparam=fparam, aparam=aparam)
    other_f = evaluate(model, coord, atype, box, fparam=fparam + 0.5, aparam=aparam)
    other_a = evaluate(model, coord, atype, box, fparam=fparam, aparam=aparam[:, ::-1].copy())
    assert abs(base["energy"] - other_f["energy"]) > 1e-6
    assert np.abs(base["atom_energy"] - other_a["atom_energy"]).max() > 1e-6


def test_batch_of_frames_equals_single_frames(periodic_system):
    """Several frames in one call give the same results as one call per frame."""
    coord, atype, box = periodic_system
    model = make_model(rcut=4.0, seed=41)
    rng = np.random.default_rng(5)
    coords = np.stack([coord, coord + rng.normal(scale=0.05, size=coord.shape), coord @ np.diag([1.02, 0.99, 1.0])])
    boxes = np.stack([box, box, box @ np.diag([1.02, 0.99, 1.0])])
    batch = evaluate(model, coords, atype, boxes, atomic_virial=True)
    for f in range(3):
        single = evaluate(model, coords[f], atype, boxes[f], atomic_virial=True)
        for key in ("energy", "atom_energy", "force", "virial", "atom_virial"):
            np.testing.assert_allclose(batch[key][f], single[key], rtol=0, atol=1e-13, err_msg=key)


def test_chunked_evaluation_matches(periodic_system):
    """chunk_atoms only bounds memory: results are unchanged."""
    import torch

    coord, atype, box = periodic_system
    model = make_model(rcut=4.0, seed=43)
    args = (torch.from_numpy(coord)[None], torch.from_numpy(atype), torch.from_numpy(box)[None])
    full = model(*args, do_atomic_virial=True)
    chunked = model(*args, do_atomic_virial=True, chunk_atoms=7)
    for key in full:
        torch.testing.assert_close(chunked[key], full[key], rtol=0, atol=1e-13)
