"""forward_lower (ghost atoms + neighbor list from an MD engine) agrees with forward; TorchScript export."""

import io

import numpy as np
import pytest
import torch
from deeppot_test_models import evaluate, make_model

from deeppot.export.model_file import FrozenEnergyModel


def extend_with_ghosts(coord, atype, box, rcut):
    """DeePMD-style extended system (spec 3.1): wrap, then images n . H for n in [-nb, nb]^3 sorted by |n|
    ((0,0,0) first). Returns extended coord (nall x 3), extended atype, mapping (nall) and the wrapped local coords."""
    coord = np.asarray(coord, dtype=np.float64)
    if box is None:
        return coord.copy(), np.asarray(atype).copy(), np.arange(len(atype)), coord.copy()
    box = np.asarray(box, dtype=np.float64)
    frac = coord @ np.linalg.inv(box)
    wrapped = (frac - np.floor(frac)) @ box
    volume = abs(np.linalg.det(box))
    a, b, c = box
    face = np.array([volume / np.linalg.norm(np.cross(b, c)), volume / np.linalg.norm(np.cross(c, a)), volume / np.linalg.norm(np.cross(a, b))])
    nbuff = np.ceil(rcut / face).astype(int)
    grid = np.array(
        [[i, j, k] for i in range(-nbuff[0], nbuff[0] + 1) for j in range(-nbuff[1], nbuff[1] + 1) for k in range(-nbuff[2], nbuff[2] + 1)]
    )
    grid = grid[np.argsort(np.linalg.norm(grid, axis=1), kind="stable")]
    assert np.all(grid[0] == 0)
    ext = np.concatenate([wrapped + n @ box for n in grid])
    n = len(atype)
    return ext, np.tile(np.asarray(atype), len(grid)), np.tile(np.arange(n), len(grid)), wrapped


def build_blocked_nlist(ext_coord, ext_atype, nloc, rcut, sel, skin=0.0, shuffle_seed=None):
    """nloc x sum(sel) indices into the extended atoms, [type-0 block | type-1 block | ...], each block
    sorted by distance (or shuffled if shuffle_seed is given), -1 padded. With skin > 0, neighbors up to
    rcut + skin are listed too (like an MD engine's list), as long as they fit into sel."""
    offsets = np.concatenate([[0], np.cumsum(sel)[:-1]])
    nlist = -np.ones((nloc, int(sum(sel))), dtype=np.int64)
    rng = None if shuffle_seed is None else np.random.default_rng(shuffle_seed)
    for i in range(nloc):
        dist = np.linalg.norm(ext_coord - ext_coord[i], axis=1)
        dist[i] = np.inf
        for t, (off, cap) in enumerate(zip(offsets, sel)):
            cand = np.flatnonzero((ext_atype == t) & (dist <= rcut + skin))
            cand = cand[np.argsort(dist[cand], kind="stable")]
            assert len(cand) <= cap, "sel too small for this test system"
            if rng is not None:
                cand = rng.permutation(cand)
            nlist[i, off : off + len(cand)] = cand
    return nlist


def to_owner(values: np.ndarray, mapping: np.ndarray, nloc: int) -> np.ndarray:
    out = np.zeros((nloc,) + values.shape[1:])
    np.add.at(out, mapping, values)
    return out


def run_lower(model, ext, ext_atype, nlist, mapping, fparam=None, aparam=None, fn=None):
    fn = model.forward_lower if fn is None else fn
    args = [
        torch.from_numpy(ext)[None],
        torch.from_numpy(ext_atype)[None],
        torch.from_numpy(nlist)[None],
        torch.from_numpy(mapping)[None],
    ]
    out = fn(*args, fparam=fparam, aparam=aparam, do_atomic_virial=True)
    return {k: v.detach().numpy()[0] for k, v in out.items()}


def compare_lower_to_forward(model, coord, atype, box, atol=1e-12, skin=0.0, shuffle_seed=None):
    ext, ext_atype, mapping, wrapped = extend_with_ghosts(coord, atype, box, model.rcut)
    nloc = len(atype)
    nlist = build_blocked_nlist(ext, ext_atype, nloc, model.rcut, model.sel, skin, shuffle_seed)
    lower = run_lower(model, ext, ext_atype, nlist, mapping)
    ref = evaluate(model, coord, atype, box, atomic_virial=True)
    assert lower["energy"].shape == (1,) and lower["atom_energy"].shape == (nloc, 1)
    assert lower["extended_force"].shape == (len(ext), 3)
    assert lower["extended_virial"].shape == (len(ext), 9)
    np.testing.assert_allclose(lower["energy"][0], ref["energy"], rtol=0, atol=atol)
    np.testing.assert_allclose(lower["atom_energy"][:, 0], ref["atom_energy"], rtol=0, atol=atol)
    np.testing.assert_allclose(to_owner(lower["extended_force"], mapping, nloc), ref["force"], rtol=0, atol=atol)
    np.testing.assert_allclose(lower["virial"], ref["virial"], rtol=0, atol=atol)
    np.testing.assert_allclose(to_owner(lower["extended_virial"], mapping, nloc), ref["atom_virial"], rtol=0, atol=atol)
    np.testing.assert_allclose(lower["extended_virial"].sum(axis=0), lower["virial"], rtol=0, atol=atol)
    # in the extended picture W = sum_j F_j (x) r_j over all (ghost) atoms
    np.testing.assert_allclose(
        np.einsum("ja,jb->ab", lower["extended_force"], ext).reshape(9), lower["virial"], rtol=0, atol=1e-11
    )
    return ext, ext_atype, nlist, mapping


def test_forward_lower_periodic(model, periodic_system):
    compare_lower_to_forward(model, *periodic_system)


def test_forward_lower_small_cell(models, small_cell_system, tiny_cell_system):
    for system in (small_cell_system, tiny_cell_system):
        compare_lower_to_forward(models["two_side_resnet_dt"], *system)


def test_forward_lower_nonperiodic(model, cluster_system):
    coord, atype = cluster_system
    compare_lower_to_forward(model, coord, atype, None)


def test_forward_lower_md_style_nlist(models, periodic_system):
    """An MD engine's list: unsorted within the type blocks and with skin neighbors beyond rcut.
    Entries beyond rcut have zero weight and must act like padding (spec 3.2/3.3)."""
    for name in ("one_side", "two_side_resnet_dt"):
        model = make_model(rcut=4.0, sel=(40, 40), seed=61) if name == "one_side" else make_model(
            rcut=4.0, sel=(40, 40), type_one_side=False, resnet_dt=True, seed=62
        )
        compare_lower_to_forward(model, *periodic_system, skin=1.0, shuffle_seed=3)


def test_forward_lower_with_fparam_aparam(periodic_system):
    coord, atype, box = periodic_system
    model = make_model(rcut=4.0, numb_fparam=1, numb_aparam=1, seed=71)
    nloc = len(atype)
    fparam = np.array([[0.3]])
    aparam = np.linspace(-0.5, 0.8, nloc).reshape(1, nloc, 1)
    ext, ext_atype, mapping, _ = extend_with_ghosts(coord, atype, box, model.rcut)
    nlist = build_blocked_nlist(ext, ext_atype, nloc, model.rcut, model.sel)
    lower = run_lower(model, ext, ext_atype, nlist, mapping, torch.from_numpy(fparam), torch.from_numpy(aparam))
    ref = evaluate(model, coord, atype, box, fparam=fparam, aparam=aparam)
    np.testing.assert_allclose(lower["energy"][0], ref["energy"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(to_owner(lower["extended_force"], mapping, nloc), ref["force"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(lower["virial"], ref["virial"], rtol=0, atol=1e-12)


def test_forward_lower_without_mapping(models, periodic_system):
    """mapping is optional: the per-extended-atom outputs do not need it."""
    model = models["one_side"]
    coord, atype, box = periodic_system
    ext, ext_atype, mapping, _ = extend_with_ghosts(coord, atype, box, model.rcut)
    nlist = build_blocked_nlist(ext, ext_atype, len(atype), model.rcut, model.sel)
    with_map = run_lower(model, ext, ext_atype, nlist, mapping)
    out = model.forward_lower(torch.from_numpy(ext)[None], torch.from_numpy(ext_atype)[None], torch.from_numpy(nlist)[None])
    np.testing.assert_array_equal(out["energy"].detach().numpy()[0], with_map["energy"])
    np.testing.assert_array_equal(out["extended_force"].detach().numpy()[0], with_map["extended_force"])


# ------------------------------------------------------------------------------------------ TorchScript
jit_warnings = pytest.mark.filterwarnings("ignore:`torch.jit.*is deprecated:DeprecationWarning")

@jit_warnings
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"type_one_side": False, "resnet_dt": True, "activation_function": "gelu"},
        {"exclude_types": [[0, 1]], "pair_exclude_types": [[1, 1]], "atom_exclude_types": [0]},
    ],
    ids=["one_side", "two_side_gelu", "exclusions"],
)
def test_torchscript_forward_lower(kwargs, periodic_system):
    model = make_model(rcut=4.0, seed=81, **kwargs)
    coord, atype, box = periodic_system
    ext, ext_atype, mapping, _ = extend_with_ghosts(coord, atype, box, model.rcut)
    nlist = build_blocked_nlist(ext, ext_atype, len(atype), model.rcut, model.sel)
    scripted = torch.jit.script(FrozenEnergyModel(model))
    eager = run_lower(model, ext, ext_atype, nlist, mapping)
    for fn in (scripted, _save_and_load(scripted)):
        out = run_lower(model, ext, ext_atype, nlist, mapping, fn=fn)
        assert set(out) == set(eager)
        for key in eager:
            np.testing.assert_allclose(out[key], eager[key], rtol=1e-14, atol=1e-14, err_msg=key)
    # and the scripted module still agrees with forward()
    ref = evaluate(model, coord, atype, box)
    np.testing.assert_allclose(eager["energy"][0], ref["energy"], rtol=0, atol=1e-12)


@jit_warnings
def test_torchscript_with_fparam_aparam(periodic_system):
    coord, atype, box = periodic_system
    model = make_model(rcut=4.0, numb_fparam=1, numb_aparam=1, seed=91)
    ext, ext_atype, mapping, _ = extend_with_ghosts(coord, atype, box, model.rcut)
    nlist = build_blocked_nlist(ext, ext_atype, len(atype), model.rcut, model.sel)
    fparam = torch.tensor([[0.3]], dtype=torch.float64)
    aparam = torch.linspace(-0.5, 0.8, len(atype), dtype=torch.float64).reshape(1, -1, 1)
    scripted = _save_and_load(torch.jit.script(FrozenEnergyModel(model)))
    eager = run_lower(model, ext, ext_atype, nlist, mapping, fparam, aparam)
    out = run_lower(model, ext, ext_atype, nlist, mapping, fparam, aparam, fn=scripted)
    for key in eager:
        np.testing.assert_allclose(out[key], eager[key], rtol=1e-14, atol=1e-14, err_msg=key)


def _save_and_load(scripted):
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    return torch.jit.load(buffer)
