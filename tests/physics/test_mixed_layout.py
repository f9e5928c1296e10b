"""The mixed-type slot layout (``mixed_types``, sel = [nsel], spec 3.2): the nsel nearest neighbors of any type,
nearest first, -1 after; the same slots from vesin's pairs (Python entry point) and from an MD engine's list."""

import itertools

import numpy as np
import pytest
import torch
from deeppot_test_models import cluster_frame, periodic_frame, triclinic_box
from test_forward_lower import engine_nlist, extend_with_ghosts

from deeppot.geometry.neighbors import build_neighbor_list
from deeppot.model.nlist_format import format_engine_nlist

RCUT = 4.0


def brute_force_vectors(coord, atype, box, rcut, nsel):
    """rij (k x 3, Angstrom) of the nsel nearest (j, image) of each center, nearest first, from every periodic
    image within reach; virtual atoms (type -1) are neither centers' neighbors nor given neighbors."""
    images = [np.zeros(3)]
    if box is not None:
        images = [np.array(n) @ box for n in itertools.product(range(-3, 4), repeat=3)]
    rows = []
    for i in range(len(coord)):
        vectors = [coord[j] + shift - coord[i] for j in range(len(coord)) for shift in images
                   if atype[i] >= 0 and atype[j] >= 0]
        vectors = np.array([v for v in vectors if 0.0 < np.linalg.norm(v) < rcut]).reshape(-1, 3)
        dist = np.linalg.norm(vectors, axis=1)
        order = np.argsort(dist, kind="stable")[:nsel]
        if len(dist) > nsel:  # a cut between two equidistant neighbors would make the expected set ambiguous
            assert np.sort(dist)[nsel] - dist[order[-1]] > 1e-9
        rows.append(vectors[order])
    return rows


def slot_vectors(coord, box, nlist):
    """rij of each filled slot of a Python-path list (index, integer shift), in slot order."""
    shift = nlist.shift @ box if box is not None else np.zeros_like(nlist.shift)
    return [coord[nlist.index[i, m]] + shift[i, m] - coord[i] for i, m in
            ((i, nlist.index[i] >= 0) for i in range(len(coord)))]


def assert_same_rows(rows, expected):
    for got, want in zip(rows, expected):
        assert got.shape == want.shape
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), np.linalg.norm(want, axis=1), rtol=0, atol=1e-12)
        # same neighbors: equidistant self-images (+n, -n) may come in either order
        key = lambda v: np.lexsort(np.round(v, 9).T[::-1])  # noqa: E731
        np.testing.assert_allclose(got[key(got)], want[key(want)], rtol=0, atol=1e-12)


def three_type_cluster():
    coord, atype = cluster_frame(14, seed=3, size=5.0)
    atype = np.array([0, 1, 2, 1, 0, 2, 2, 1, 0, -1, 1, 2, -1, 0])  # three types and two virtual atoms
    return coord, atype


@pytest.mark.parametrize("nsel", [30, 6])
def test_mixed_layout_is_the_nearest_nsel_cluster(nsel):
    """Non-periodic, three types, virtual atoms; nsel large (every neighbor) and small (the nearest only)."""
    coord, atype = three_type_cluster()
    nlist = build_neighbor_list(coord, None, atype, RCUT, [nsel], mixed_types=True)
    assert nlist.index.shape == (len(atype), nsel)
    filled = nlist.index >= 0
    assert np.all(np.diff(filled.astype(int), axis=1) <= 0)  # real neighbors first, then padding
    assert not filled[atype < 0].any() and not np.isin(nlist.index, np.flatnonzero(atype < 0)).any()
    assert_same_rows(slot_vectors(coord, None, nlist), brute_force_vectors(coord, atype, None, RCUT, nsel))
    if nsel == 6:
        assert filled[atype >= 0].all()  # truncated: every real center keeps exactly nsel neighbors
        assert len({int(atype[j]) for j in nlist.index[0]}) > 1  # the block holds neighbors of several types


@pytest.mark.parametrize("nsel", [60, 9])
def test_mixed_layout_is_the_nearest_nsel_periodic(nsel):
    """A small triclinic cell: atoms see several images of one atom and their own images."""
    coord, atype, box = periodic_frame(6, seed=4, box=triclinic_box((4.6, 4.4, 4.8), (0.3, -0.2, 0.4)))
    atype = np.array([0, 1, 2, 1, 0, 2])
    nlist = build_neighbor_list(coord, box, atype, RCUT, [nsel], mixed_types=True)
    assert_same_rows(slot_vectors(coord, box, nlist), brute_force_vectors(coord, atype, box, RCUT, nsel))


def test_mixed_layout_holds_the_same_neighbors_as_the_type_blocks():
    """With room for everyone, the mixed block is the union of the type blocks, sorted by distance."""
    coord, atype = three_type_cluster()
    mixed = build_neighbor_list(coord, None, atype, RCUT, [40], mixed_types=True).index
    blocked = build_neighbor_list(coord, None, atype, RCUT, [14, 14, 14]).index
    for i in range(len(atype)):
        assert sorted(mixed[i][mixed[i] >= 0]) == sorted(blocked[i][blocked[i] >= 0])


@pytest.mark.parametrize("periodic", [False, True])
def test_engine_list_formats_to_the_python_slots(periodic):
    """format_engine_nlist (the MD-engine path) on a LAMMPS-like list (rcut + skin, random order, -1 anywhere,
    wider than nsel) gives the slots of the Python path for the mixed layout, also when nsel truncates."""
    if periodic:
        coord, atype, box = periodic_frame(6, seed=4, box=triclinic_box((4.6, 4.4, 4.8), (0.3, -0.2, 0.4)))
        atype = np.array([0, 1, 2, 1, 0, 2])
    else:
        (coord, atype), box = three_type_cluster(), None
    rng = np.random.default_rng(5)
    for nsel in (50, 7):
        python = build_neighbor_list(coord, box, atype, RCUT, [nsel], mixed_types=True)
        ext, ext_atype, mapping, _ = extend_with_ghosts(coord, atype, box, RCUT + 1.0)
        nlist = engine_nlist(ext, len(atype), RCUT + 1.0, rng, width=nsel + 30)
        formatted = format_engine_nlist(
            torch.from_numpy(ext)[None], torch.from_numpy(ext_atype)[None], torch.from_numpy(nlist)[None],
            torch.from_numpy(mapping)[None], RCUT, [nsel], 3, mixed_types=True,
        )[0].numpy()
        assert formatted.shape == python.index.shape
        np.testing.assert_array_equal(formatted >= 0, python.index >= 0)
        engine_rows = [ext[formatted[i, formatted[i] >= 0]] - ext[i] for i in range(len(atype))]
        assert_same_rows(engine_rows, slot_vectors(coord, box, python))
        if not periodic:  # no equidistant images: the very same slot order
            np.testing.assert_array_equal(np.where(formatted >= 0, mapping[formatted], -1), python.index)
