"""forward_lower (ghost atoms + neighbor list from an MD engine) agrees with forward; TorchScript export."""

import io
import re

import numpy as np
import pytest
import torch
from deeppot_test_models import evaluate, load_water, make_model

from deeppot.export.model_file import FrozenEnergyModel
from deeppot.model.nlist_format import EngineInputError


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
    rcut + skin are listed too (like an MD engine's list), as long as they fit into sel. One sel entry: one block
    of every (real) type, the layout of mixed-type descriptors."""
    offsets = np.concatenate([[0], np.cumsum(sel)[:-1]])
    nlist = -np.ones((nloc, int(sum(sel))), dtype=np.int64)
    rng = None if shuffle_seed is None else np.random.default_rng(shuffle_seed)
    for i in range(nloc):
        dist = np.linalg.norm(ext_coord - ext_coord[i], axis=1)
        dist[i] = np.inf
        for t, (off, cap) in enumerate(zip(offsets, sel)):
            of_type = (ext_atype >= 0) if len(sel) == 1 else (ext_atype == t)
            cand = np.flatnonzero(of_type & (dist <= rcut + skin))
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


def engine_nlist(ext, nloc, cutoff, rng, width=None, order="random"):
    """An MD engine's list: every extended atom closer than ``cutoff`` to each local atom (itself excluded),
    in random order with -1 at random places (``order="random"``) or nearest first (``"distance"``), as
    ``width`` columns (default: just the longest row)."""
    dist = np.linalg.norm(ext[None, :, :] - ext[:nloc, None, :], axis=-1)  # nloc x nall
    dist[np.arange(nloc), np.arange(nloc)] = np.inf
    rows = [np.flatnonzero(d < cutoff) for d in dist]
    width = max(len(r) for r in rows) if width is None else width
    nlist = -np.ones((nloc, width), dtype=np.int64)
    for i, cand in enumerate(rows):
        if order == "distance":
            nlist[i, : len(cand)] = cand[np.argsort(dist[i, cand], kind="stable")]
        else:
            nlist[i, np.sort(rng.choice(width, len(cand), replace=False))] = rng.permutation(cand)
    return nlist


def compare_lower_to_forward(model, coord, atype, box, atol=1e-12, skin=0.0, shuffle_seed=None, nlist=None):
    """forward_lower on DeePMD-style ghosts equals forward; ``nlist`` (a function of the extended coords
    and nloc) replaces the type-blocked list."""
    ext, ext_atype, mapping, wrapped = extend_with_ghosts(coord, atype, box, model.rcut + skin)
    nloc = len(atype)
    if nlist is None:
        nlist = build_blocked_nlist(ext, ext_atype, nloc, model.rcut, model.sel, skin, shuffle_seed)
    else:
        nlist = nlist(ext, nloc)
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


# ------------------------------------------------------------------------- any list an MD engine gives
@pytest.mark.parametrize("layout", ["random_wide_skin", "random_narrow", "distance_sorted_skin"])
def test_engine_lists(model, periodic_system, layout):
    """Lists not in the model's layout: shuffled across types with -1 anywhere and wider than sum(sel) with
    neighbors out to rcut + 2 A; exactly the neighbors within rcut, narrower than sum(sel); nearest first."""
    rng = np.random.default_rng(abs(hash(layout)) % 1000)
    skin = 0.0 if layout == "random_narrow" else 2.0
    cutoff = model.rcut + skin

    def nlist(ext, nloc):
        if layout == "random_wide_skin":
            out = engine_nlist(ext, nloc, cutoff, rng, width=int(1.3 * sum(model.sel)) + 40)
            assert out.shape[1] > sum(model.sel)
        elif layout == "random_narrow":
            out = engine_nlist(ext, nloc, cutoff, rng)
            assert out.shape[1] < sum(model.sel)
        else:
            out = engine_nlist(ext, nloc, cutoff, rng, order="distance")
        return out

    compare_lower_to_forward(model, *periodic_system, skin=skin, nlist=nlist)


def test_water_frame_any_list():
    """The water frame (192 atoms, sel 46/92 as the seed's input): a nearest-first list with 2 A of skin
    (the list that gave 2,313 eV too much before lists were formatted) and a shuffled, padded one."""
    model = make_model(rcut=6.0, rcut_smth=0.5, sel=(46, 92), neuron=(4, 8), seed=7)
    coord, atype, box = load_water(1)
    coord, box = coord[0], box[0]
    rng = np.random.default_rng(5)
    for order, width in (("distance", None), ("random", 260)):
        compare_lower_to_forward(
            model, coord, atype, box, atol=1e-12, skin=2.0,
            nlist=lambda ext, nloc: engine_nlist(ext, nloc, 8.0, rng, width=width, order=order),
        )


@pytest.mark.parametrize("cells", [2, 3])
def test_equidistant_neighbors_truncated(cells):
    """A simple cubic lattice (exact coordinates: distances tie exactly) with sel smaller than each shell,
    so which of the equidistant neighbors are kept matters. The choice is the same in forward and in
    forward_lower given DeePMD-style ghosts and mapping, whatever the order of the list; with 2 cells
    per side the tied neighbors include several images of the same atom."""
    spacing = 2.0
    grid = np.array([[i, j, k] for i in range(cells) for j in range(cells) for k in range(cells)], dtype=np.float64)
    coord = grid * spacing
    box = np.eye(3) * spacing * cells
    rng = np.random.default_rng(cells)
    atype = rng.integers(0, 2, len(coord))
    model = make_model(rcut=3.0, rcut_smth=1.0, sel=(5, 4), seed=cells)
    ext, ext_atype, mapping, _ = extend_with_ghosts(coord, atype, box, model.rcut + 1.0)
    results = []
    for seed in range(3):
        order_rng = np.random.default_rng(seed)
        nlist = engine_nlist(ext, len(atype), model.rcut + 1.0, order_rng, width=40)
        results.append(run_lower(model, ext, ext_atype, nlist, mapping))
    for other in results[1:]:
        for key in results[0]:
            np.testing.assert_array_equal(other[key], results[0][key], err_msg=key)
    compare_lower_to_forward(
        model, coord, atype, box, skin=1.0,
        nlist=lambda e, nloc: engine_nlist(e, nloc, model.rcut + 1.0, np.random.default_rng(9), width=40),
    )
    # the truncation is real: more equidistant neighbors than slots
    dist = np.linalg.norm(ext[None] - ext[: len(atype), None], axis=-1)
    assert np.all(((dist > 0) & (dist < model.rcut)).sum(axis=1) > sum(model.sel))


def test_virtual_atoms_and_self_in_list(periodic_system):
    """Type -1 atoms (and all their images) are no one's neighbors and have no energy; a center listed
    as its own neighbor is ignored."""
    model = make_model(rcut=4.0, seed=3)
    coord, atype, box = periodic_system
    atype = atype.copy()
    atype[[2, 11]] = -1
    rng = np.random.default_rng(0)

    def with_self(ext, nloc):
        nlist = engine_nlist(ext, nloc, model.rcut + 1.0, rng, width=60)
        for i in range(nloc):
            nlist[i, rng.choice(np.flatnonzero(nlist[i] < 0))] = i
        return nlist

    compare_lower_to_forward(model, coord, atype, box, skin=1.0, nlist=with_self)


def test_empty_and_padding_only_lists(cluster_system):
    """A list of width 0 and one of only -1 give the same: every atom alone."""
    model = make_model(rcut=4.0, seed=4)
    coord, atype = cluster_system
    ext, ext_atype, mapping, _ = extend_with_ghosts(coord, atype, None, model.rcut)
    empty = run_lower(model, ext, ext_atype, np.zeros((len(atype), 0), dtype=np.int64), mapping)
    padding = run_lower(model, ext, ext_atype, -np.ones((len(atype), 7), dtype=np.int64), mapping)
    for key in empty:
        np.testing.assert_array_equal(empty[key], padding[key], err_msg=key)
    np.testing.assert_array_equal(empty["extended_force"], 0.0)
    alone = evaluate(model, coord[:1], atype[:1])
    np.testing.assert_allclose(empty["atom_energy"][0, 0], alone["energy"], rtol=0, atol=1e-12)


def _lower_inputs(model, system, width=60):
    coord, atype, box = system
    ext, ext_atype, mapping, _ = extend_with_ghosts(coord, atype, box, model.rcut)
    nlist = engine_nlist(ext, len(atype), model.rcut, np.random.default_rng(1), width=width)
    return [torch.from_numpy(x)[None] for x in (ext, ext_atype, nlist, mapping)]


def _bad_inputs(model, system):
    """(description, args, kwargs, message pattern) of input forward_lower must refuse."""
    coord, ext_atype, nlist, mapping = _lower_inputs(model, system)
    nall, nloc = coord.shape[1], nlist.shape[1]

    def changed(tensor, index, value):
        out = tensor.clone()
        out[index] = value
        return out

    duplicate = nlist.clone()
    row = duplicate[0, 0]
    real = torch.nonzero(row >= 0).squeeze(-1)
    pad = torch.nonzero(row < 0).squeeze(-1)
    row[pad[0]] = row[real[0]]
    on_top = coord.clone()
    on_top[0, int(nlist[0, 3][nlist[0, 3] >= 0][0])] = coord[0, 3]
    return [
        ("index >= nall", (coord, ext_atype, changed(nlist, (0, 4, 7), nall), mapping), {}, "nall - 1 = %d" % (nall - 1)),
        ("index < -1", (coord, ext_atype, changed(nlist, (0, 1, 2), -3), mapping), {}, "is not an extended atom"),
        ("float nlist", (coord, ext_atype, nlist.to(torch.float64), mapping), {}, "integer tensor nf x nloc x nnei"),
        ("2-d nlist", (coord, ext_atype, nlist[0], mapping), {}, "nlist must be"),
        ("frames differ", (coord, ext_atype, nlist.repeat(2, 1, 1), mapping), {}, "nf = 1"),
        ("nloc > nall", (coord[:, :10], ext_atype[:, :10], nlist, mapping[:, :10]), {}, "nloc <= nall"),
        ("coord not x 3", (coord[:, :, :2], ext_atype, nlist, mapping), {}, "nf x nall x 3"),
        ("atype shape", (coord, ext_atype[:, :-1], nlist, mapping), {}, "extended_atype must be"),
        ("mapping shape", (coord, ext_atype, nlist, mapping[:, :-1]), {}, "mapping must be"),
        ("mapping range", (coord, ext_atype, nlist, changed(mapping, (0, nall - 1), nloc)), {}, "not a local atom"),
        ("unknown type", (coord, changed(ext_atype, (0, nall - 2), 2), nlist, mapping), {}, "has 2 types"),
        ("nan coord", (changed(coord, (0, 5, 1), float("nan")), ext_atype, nlist, mapping), {}, "not finite"),
        ("duplicate", (coord, ext_atype, duplicate, mapping), {}, "twice as a neighbor of local atom 0"),
        ("same position", (on_top, ext_atype, nlist, mapping), {}, "distance 0"),
        ("fparam to a model without", (coord, ext_atype, nlist, mapping), {"fparam": torch.ones(1, 1, dtype=torch.float64)},
         "takes no fparam"),
    ]


def test_bad_input_raises(periodic_system):
    model = make_model(rcut=4.0, seed=8)
    for name, args, kwargs, pattern in _bad_inputs(model, periodic_system):
        with pytest.raises(EngineInputError, match=pattern):
            model.forward_lower(*args, **kwargs)
            pytest.fail(name)


def test_bad_fparam_aparam_raises(periodic_system):
    model = make_model(rcut=4.0, numb_fparam=2, numb_aparam=1, seed=8)
    args = _lower_inputs(model, periodic_system)
    nloc = args[2].shape[1]
    fparam, aparam = torch.ones(1, 2, dtype=torch.float64), torch.ones(1, nloc, 1, dtype=torch.float64)
    for kwargs, pattern in (
        ({"aparam": aparam}, r"needs fparam \(\[1, 2\]\)"),
        ({"fparam": fparam}, "needs aparam"),
        ({"fparam": fparam[:, :1], "aparam": aparam}, r"fparam must hold \[1, 2\] values, got shape \[1, 1\]"),
        ({"fparam": fparam, "aparam": aparam[:, :-1]}, "aparam must hold"),
    ):
        with pytest.raises(EngineInputError, match=pattern):
            model.forward_lower(*args, **kwargs)
    model.forward_lower(*args, fparam=fparam, aparam=aparam)  # and the right shapes work


# ------------------------------------------------------------------------------------------ TorchScript
jit_warnings = pytest.mark.filterwarnings("ignore:`torch.jit.*is deprecated:DeprecationWarning")

@jit_warnings
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"type_one_side": False, "resnet_dt": True, "activation_function": "gelu"},
        {"exclude_types": [[0, 1]], "pair_exclude_types": [[1, 1]], "atom_exclude_types": [0]},
        {"descriptor": "se_e2_r", "exclude_types": [[0, 1]]},
        {"descriptor": "se_e3", "neuron": (2, 4, 8), "exclude_types": [[0, 1]]},
        {"descriptor": [{"descriptor": "se_e2_r", "rcut": 3.0, "sel": (12, 12)}, {"descriptor": "se_e2_a"}]},
        {"type_embedding": (4,), "type_one_side": False, "exclude_types": [[0, 1]]},
        {"descriptor": [{"descriptor": "se_atten", "sel": (24,), "tebd_dim": 4, "attn": 8},
                        {"descriptor": "se_e2_a", "rcut": 3.0, "sel": (8, 12)}]},
        {"descriptor": "se_atten", "sel": (24,), "exclude_types": [[0, 1]],
         "descriptor_options": {"tebd_dim": 4, "attn": 8, "attn_layer": 1}},
        {"descriptor": "se_atten_v2", "sel": (24,), "descriptor_options": {"tebd_dim": 4, "attn": 8, "attn_layer": 1}},
        {"descriptor": "loc_frame", "descriptor_options": {"sel_a": [8, 8], "sel_r": [16, 16],
                                                           "axis_rule": [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0]}},
    ],
    ids=["one_side", "two_side_gelu", "exclusions", "se_e2_r", "se_e3", "hybrid", "type_embedding", "hybrid_mixed",
         "se_atten", "se_atten_v2", "loc_frame"],
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


@jit_warnings
def test_torchscript_engine_lists_and_errors(periodic_system):
    """The frozen (scripted, saved, loaded) model formats an MD engine's list itself and refuses bad input."""
    model = make_model(rcut=4.0, type_one_side=False, seed=83)
    scripted = _save_and_load(torch.jit.script(FrozenEnergyModel(model)))
    rng = np.random.default_rng(2)

    def nlist(ext, nloc):
        return engine_nlist(ext, nloc, model.rcut + 2.0, rng, width=90)

    ext, ext_atype, engine, mapping = compare_lower_to_forward(model, *periodic_system, skin=2.0, nlist=nlist)
    eager = run_lower(model, ext, ext_atype, engine, mapping)
    out = run_lower(model, ext, ext_atype, engine, mapping, fn=scripted)
    for key in eager:
        np.testing.assert_allclose(out[key], eager[key], rtol=1e-14, atol=1e-14, err_msg=key)
    for name, args, kwargs, pattern in _bad_inputs(model, periodic_system):
        with pytest.raises(torch.jit.Error, match="EngineInputError") as info:
            scripted(*args, **kwargs)
        assert re.search(pattern, str(info.value)), name
