"""Reusable physics checks for any deeppot energy model (``model(coord, atype, box, ...)`` interface).

Every check takes the model and one frame (coord N x 3, atype N, box 3 x 3 or None, float64 numpy)
and raises AssertionError on failure. Conventions (spec 3.12): F = -dE/dr; virial
W[a*3+b] = sum_j F_j[a] r_j[b] = -dE/d(eps)[b, a] under r -> r (I + eps), H -> H (I + eps).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from deeppot.geometry.neighbors import max_neighbor_counts
from deeppot_test_models import evaluate


def _energy(model, coord, atype, box, fparam=None, aparam=None) -> float:
    return float(evaluate(model, coord, atype, box, fparam=fparam, aparam=aparam)["energy"])


def _scale(x: np.ndarray, floor: float) -> float:
    return max(float(np.abs(x).max()), floor)


def finite_difference_forces(model, coord, atype, box=None, h: float = 1e-5, fparam=None, aparam=None):
    """-dE/dr by central differences, N x 3."""
    coord = np.array(coord, dtype=np.float64)
    fd = np.zeros_like(coord)
    for i in range(coord.shape[0]):
        for a in range(3):
            plus, minus = coord.copy(), coord.copy()
            plus[i, a] += h
            minus[i, a] -= h
            fd[i, a] = -(_energy(model, plus, atype, box, fparam, aparam) - _energy(model, minus, atype, box, fparam, aparam)) / (2 * h)
    return fd


def finite_difference_virial(model, coord, atype, box=None, h: float = 1e-5, fparam=None, aparam=None):
    """W[a, b] = -dE/d(eps)[b, a] with r -> r (I + eps) and H -> H (I + eps), by central differences (3 x 3)."""
    coord = np.asarray(coord, dtype=np.float64)
    dedeps = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1.0, -1.0):
                deform = np.eye(3)
                deform[a, b] += sign * h
                energies.append(
                    _energy(model, coord @ deform, atype, None if box is None else np.asarray(box) @ deform, fparam, aparam)
                )
            dedeps[a, b] = (energies[0] - energies[1]) / (2 * h)
    return -dedeps.T


def check_forces_fd(model, coord, atype, box=None, h: float = 1e-5, rtol: float = 1e-7, fparam=None, aparam=None):
    """Model forces equal -dE/dr (central differences) to rtol relative to the largest force component."""
    out = evaluate(model, coord, atype, box, fparam=fparam, aparam=aparam)
    fd = finite_difference_forces(model, coord, atype, box, h, fparam, aparam)
    force = out["force"]
    assert np.abs(force).max() > 1e-4, "degenerate test: forces are ~0"
    err = np.abs(fd - force).max()
    assert err <= rtol * _scale(force, 1e-2), f"force vs finite difference: max error {err:.3e}"
    return err


def check_virial_fd(model, coord, atype, box=None, h: float = 1e-5, rtol: float = 1e-7, fparam=None, aparam=None):
    """Model virial equals the strain derivative -dE/d(eps), layout [a*3+b] = F[a] r[b]."""
    out = evaluate(model, coord, atype, box, fparam=fparam, aparam=aparam)
    virial = out["virial"].reshape(3, 3)
    fd = finite_difference_virial(model, coord, atype, box, h, fparam, aparam)
    assert np.abs(virial).max() > 1e-4, "degenerate test: virial is ~0"
    err = np.abs(fd - virial).max()
    assert err <= rtol * _scale(virial, 1e-2), f"virial vs strain derivative: max error {err:.3e}\n{virial}\n{fd}"
    return err


def check_atom_virial_sum(model, coord, atype, box=None, atol: float = 1e-12, fparam=None, aparam=None):
    """sum_i atom_virial_i == virial; the global virial (stress) is symmetric for an invariant model."""
    out = evaluate(model, coord, atype, box, fparam=fparam, aparam=aparam, atomic_virial=True)
    virial, atom_virial = out["virial"], out["atom_virial"]
    assert atom_virial.shape == (len(atype), 9)
    np.testing.assert_allclose(atom_virial.sum(axis=0), virial, rtol=0, atol=atol)
    w = virial.reshape(3, 3)
    np.testing.assert_allclose(w, w.T, rtol=0, atol=atol)
    # the atomic virials themselves are not symmetric in general: make sure the test is not vacuous
    assert np.abs(atom_virial).max() > 1e-4


def check_atom_virial_fd(model, coord, atype, h: float = 1e-5, rtol: float = 1e-7):
    """Without PBC, the per-atom virial of spec 3.12, W_j[a, b] = -sum_i dE_i/dr_j[a] (r_j[b] - r_i[b]),
    built from a finite-difference Jacobian of the atomic energies. Atomic virials are not symmetric in
    general, so this also pins the [a*3+b] layout; with a radial-only descriptor (env_width 1) each E_i
    depends on the distances |r_j - r_i| only, dE_i/dr_j is parallel to r_j - r_i and every W_j is symmetric."""
    coord = np.array(coord, dtype=np.float64)
    n = coord.shape[0]
    jac = np.zeros((n, n, 3))  # dE_i / dr_j[a]
    for j in range(n):
        for a in range(3):
            plus, minus = coord.copy(), coord.copy()
            plus[j, a] += h
            minus[j, a] -= h
            jac[:, j, a] = (evaluate(model, plus, atype)["atom_energy"] - evaluate(model, minus, atype)["atom_energy"]) / (2 * h)
    rel = coord[None, :, :] - coord[:, None, :]  # [i, j] = r_j - r_i
    expected = -np.einsum("ija,ijb->jab", jac, rel).reshape(n, 9)
    atom_virial = evaluate(model, coord, atype, None, atomic_virial=True)["atom_virial"]
    asym = np.abs(atom_virial.reshape(n, 3, 3) - atom_virial.reshape(n, 3, 3).transpose(0, 2, 1)).max()
    if model.descriptor.env_width == 1:
        assert asym < 1e-12 * _scale(atom_virial, 1.0), f"radial-only model: atomic virial asymmetry {asym:.3e}"
        assert np.abs(atom_virial).max() > 1e-4, "degenerate test: atomic virials ~0"
    else:
        assert asym > 1e-5, "degenerate test: atomic virials are symmetric"
    err = np.abs(atom_virial - expected).max()
    assert err <= rtol * _scale(atom_virial, 1e-2), f"atomic virial vs finite differences: max error {err:.3e}"
    return err


def check_virial_is_sum_f_r(model, coord, atype):
    """Without PBC, W = sum_i F_i (x) r_i exactly (layout [a*3+b] = F[a] r[b])."""
    out = evaluate(model, coord, atype, None)
    expected = np.einsum("ia,ib->ab", out["force"], np.asarray(coord)).reshape(9)
    np.testing.assert_allclose(out["virial"], expected, rtol=0, atol=1e-12)


def random_rotation(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def check_translation(model, coord, atype, box=None, shift: Sequence[float] = (1.7, -2.3, 0.9), atol: float = 1e-12):
    """E, atom energies, F and W unchanged by a rigid translation (and, with PBC, by moving atoms by lattice vectors)."""
    ref = evaluate(model, coord, atype, box)
    moved = evaluate(model, np.asarray(coord) + np.asarray(shift), atype, box)
    for key in ("energy", "atom_energy", "force", "virial"):
        np.testing.assert_allclose(moved[key], ref[key], rtol=0, atol=atol, err_msg=key)
    if box is not None:
        n = len(atype)
        lattice = np.random.default_rng(3).integers(-2, 3, size=(n, 3)) @ np.asarray(box)
        imaged = evaluate(model, np.asarray(coord) + lattice, atype, box)
        for key in ("energy", "atom_energy", "force", "virial"):
            np.testing.assert_allclose(imaged[key], ref[key], rtol=0, atol=atol, err_msg=key)


def check_rotation(model, coord, atype, box=None, seed: int = 7, atol: float = 1e-12):
    """r -> r R (and H -> H R): E invariant, F -> F R, W -> R^T W R."""
    rot = random_rotation(seed)
    ref = evaluate(model, coord, atype, box)
    rotated = evaluate(model, np.asarray(coord) @ rot, atype, None if box is None else np.asarray(box) @ rot)
    np.testing.assert_allclose(rotated["energy"], ref["energy"], rtol=0, atol=atol)
    np.testing.assert_allclose(rotated["atom_energy"], ref["atom_energy"], rtol=0, atol=atol)
    np.testing.assert_allclose(rotated["force"], ref["force"] @ rot, rtol=0, atol=atol)
    w = ref["virial"].reshape(3, 3)
    np.testing.assert_allclose(rotated["virial"].reshape(3, 3), rot.T @ w @ rot, rtol=0, atol=atol)


def check_permutation(model, coord, atype, box=None, seed: int = 11, atol: float = 1e-12):
    """Relabelling atoms: E invariant, atom energies and forces permute."""
    perm = np.random.default_rng(seed).permutation(len(atype))
    assert not np.array_equal(perm, np.arange(len(atype)))
    ref = evaluate(model, coord, atype, box)
    permuted = evaluate(model, np.asarray(coord)[perm], np.asarray(atype)[perm], box)
    np.testing.assert_allclose(permuted["energy"], ref["energy"], rtol=0, atol=atol)
    np.testing.assert_allclose(permuted["atom_energy"], ref["atom_energy"][perm], rtol=0, atol=atol)
    np.testing.assert_allclose(permuted["force"], ref["force"][perm], rtol=0, atol=atol)
    np.testing.assert_allclose(permuted["virial"], ref["virial"], rtol=0, atol=atol)


def replicate(coord, atype, box, reps: Sequence[int] = (2, 2, 2)):
    """Supercell of reps[0] x reps[1] x reps[2] copies; image k of atom i is atom k*N + i."""
    coord, box = np.asarray(coord), np.asarray(box)
    shifts = np.array([[i, j, k] for i in range(reps[0]) for j in range(reps[1]) for k in range(reps[2])])
    big = np.concatenate([coord + s @ box for s in shifts])
    return big, np.tile(np.asarray(atype), len(shifts)), np.diag(reps) @ box, len(shifts)


def check_replication(model, coord, atype, box, reps: Sequence[int] = (2, 2, 2), rtol: float = 1e-12):
    """A replicated cell has ncopies x the energy and virial, and every image carries the same force."""
    ref = evaluate(model, coord, atype, box, atomic_virial=True)
    big_coord, big_atype, big_box, ncopies = replicate(coord, atype, box, reps)
    big = evaluate(model, big_coord, big_atype, big_box, atomic_virial=True)
    n = len(atype)
    escale = abs(float(ref["energy"])) * ncopies
    assert abs(float(big["energy"]) - ncopies * float(ref["energy"])) <= rtol * escale
    np.testing.assert_allclose(big["atom_energy"].reshape(ncopies, n), np.tile(ref["atom_energy"], (ncopies, 1)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(big["force"].reshape(ncopies, n, 3), np.tile(ref["force"], (ncopies, 1, 1)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(big["virial"], ncopies * ref["virial"], rtol=0, atol=1e-11)
    np.testing.assert_allclose(
        big["atom_virial"].reshape(ncopies, n, 9), np.tile(ref["atom_virial"], (ncopies, 1, 1)), rtol=0, atol=1e-12
    )


def assert_sel_not_exceeded(model, coord, atype, box):
    """The checks assume no neighbor truncation (truncation makes E discontinuous by design)."""
    counts, _ = max_neighbor_counts(np.asarray(coord), None if box is None else np.asarray(box), np.asarray(atype),
                                    model.rcut, model.ntypes, model.mixed_types)
    assert np.all(counts <= np.asarray(model.sel)), (counts, model.sel)


# ------------------------------------------------------------------ tensor models (dipole, polarizability)
def _rotate_tensor(values: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Tensors (... x 3 vectors or ... x 9 row-major matrices) of a frame rotated by r -> r R: mu -> mu R,
    alpha -> R^T alpha R (both the row-vector form of a rotation by R^T)."""
    if values.shape[-1] == 3:
        return values @ rot
    alpha = values.reshape(*values.shape[:-1], 3, 3)
    return (rot.T @ alpha @ rot).reshape(values.shape)


def check_tensor_rotation(model, coord, atype, box=None, seed: int = 7, atol: float = 1e-12):
    """r -> r R (and H -> H R): atomic and global dipoles rotate as vectors, polarizabilities as R^T a R."""
    rot = random_rotation(seed)
    ref = evaluate(model, coord, atype, box)
    rotated = evaluate(model, np.asarray(coord) @ rot, atype, None if box is None else np.asarray(box) @ rot)
    for key in ref:
        assert np.abs(ref[key]).max() > 1e-3, f"degenerate check: {key} ~ 0"
        np.testing.assert_allclose(rotated[key], _rotate_tensor(ref[key], rot), rtol=0, atol=atol, err_msg=key)


def check_tensor_translation(model, coord, atype, box=None, shift: Sequence[float] = (1.7, -2.3, 0.9),
                             atol: float = 1e-12):
    """Atomic and global tensors unchanged by a rigid translation (and, with PBC, lattice moves of atoms)."""
    ref = evaluate(model, coord, atype, box)
    moved = [np.asarray(coord) + np.asarray(shift)]
    if box is not None:
        moved.append(np.asarray(coord) + np.random.default_rng(3).integers(-2, 3, size=(len(atype), 3)) @ np.asarray(box))
    for new in moved:
        out = evaluate(model, new, atype, box)
        for key in ref:
            np.testing.assert_allclose(out[key], ref[key], rtol=0, atol=atol, err_msg=key)


def check_tensor_permutation(model, coord, atype, box=None, seed: int = 11, atol: float = 1e-12):
    """Relabelling atoms permutes the atomic tensors and leaves the global one."""
    perm = np.random.default_rng(seed).permutation(len(atype))
    ref = evaluate(model, coord, atype, box)
    out = evaluate(model, np.asarray(coord)[perm], np.asarray(atype)[perm], box)
    for key in ref:
        expected = ref[key] if key.startswith("global_") else ref[key][perm]
        np.testing.assert_allclose(out[key], expected, rtol=0, atol=atol, err_msg=key)


def check_tensor_replication(model, coord, atype, box, reps: Sequence[int] = (2, 2, 2), atol: float = 1e-11):
    """A replicated cell: every image of an atom has its atomic tensor, the global tensor is ncopies x."""
    ref = evaluate(model, coord, atype, box)
    big_coord, big_atype, big_box, ncopies = replicate(coord, atype, box, reps)
    big = evaluate(model, big_coord, big_atype, big_box)
    for key in ref:
        if key.startswith("global_"):
            np.testing.assert_allclose(big[key], ncopies * ref[key], rtol=0, atol=atol, err_msg=key)
        else:
            tiled = np.tile(ref[key], (ncopies, 1))
            np.testing.assert_allclose(big[key], tiled, rtol=0, atol=atol, err_msg=key)
