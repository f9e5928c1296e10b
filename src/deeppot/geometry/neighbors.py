"""Neighbor lists in DeePMD-kit's slot layouts (spec 3.2), built with a cell list (vesin).

Type-blocked (``mixed_types`` False): for each local atom i the row is ``[type-0 block (sel[0]) |
type-1 block (sel[1]) | ...]``; each block holds neighbors of that type sorted by distance, padded with
-1 at its end. As in DeePMD-kit, candidates within rcut are first sorted by distance and cut to
``sum(sel)``, then split by type and cut to ``sel[t]``. Mixed (``mixed_types`` True, ``sel == [nsel]``):
the row is the nsel nearest neighbors of any type, nearest first, padded with -1 at its end
(DeePMD-kit's ``format_nlist`` without ``nlist_distinguish_types``). :func:`select_slots` is that rule,
written once in torch: the Python entry point applies it to vesin's pairs here, the MD-engine entry point
to the engine's list (``deeppot.model.nlist_format``). Periodic images are integer cell shifts, so a slot
is ``(j, shift)`` with neighbor position ``r_j + shift @ box``.
"""

from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch
import vesin

from deeppot.errors import DataError


@dataclass
class NeighborList:
    """index: nloc x nnei int64 local atom index of each slot (-1 = padding).
    shift: nloc x nnei x 3 float64 integer cell shifts (0 for padding)."""

    index: np.ndarray
    shift: np.ndarray


def select_slots(
    dist: torch.Tensor,
    nei_type: torch.Tensor,
    tiebreak: torch.Tensor,
    rcut: float,
    sel: List[int],
    mixed_types: bool = False,
) -> torch.Tensor:
    """Which candidate neighbor fills each slot of the type-blocked or (``mixed_types``) mixed layout (spec 3.2).

    dist: nf x nloc x ncand candidate distances (Angstrom), any order, any ncand (also 0);
    nei_type: nf x nloc x ncand candidate types, < 0 for no candidate (padding, virtual atom);
    tiebreak: nf x nloc x ncand int64, orders candidates at equal distance (smaller first).
    Candidates at distance >= rcut are dropped. Returns nf x nloc x sum(sel) int64: the column of the
    candidate in each slot, -1 for an empty slot. Only sort/gather/scatter, no data-dependent shapes.
    """
    nf, nloc, ncand = dist.shape
    nnei = sum(sel)
    real = (nei_type >= 0) & (dist < rcut)
    key = torch.where(real, dist, float("inf"))
    # nearest first, equal distances by tiebreak: stable sort by distance of the tiebreak-sorted list
    by_tiebreak = torch.argsort(tiebreak, dim=-1, stable=True)
    by_distance = torch.sort(key.gather(-1, by_tiebreak), dim=-1, stable=True)[1]
    order = by_tiebreak.gather(-1, by_distance)  # nf x nloc x ncand, candidate columns nearest first
    types = torch.where(real, nei_type, -1).gather(-1, order)
    # the sum(sel) nearest; padding first makes short lists need no branch
    order = torch.nn.functional.pad(order, (0, nnei), value=-1.0)[:, :, :nnei]  # nf x nloc x nnei
    types = torch.nn.functional.pad(types, (0, nnei), value=-1.0)[:, :, :nnei]
    if mixed_types:  # one block: the nnei nearest of any type
        return torch.where(types >= 0, order, -1)
    # type blocks: the k-th nearest type-t neighbor goes to slot offset[t] + k if k < sel[t]
    slot = torch.full_like(order, nnei)  # column nnei collects what is dropped
    offset = 0
    for t, width in enumerate(sel):
        is_t = types == t
        rank = torch.cumsum(is_t.to(torch.int64), dim=-1) - 1
        slot = torch.where(is_t & (rank < width), rank + offset, slot)
        offset += width
    out = torch.full([nf, nloc, nnei + 1], -1, dtype=order.dtype, device=order.device)
    out = out.scatter(2, slot, torch.where(slot < nnei, order, -1))
    return out[:, :, :nnei]


MAX_PERIODIC_IMAGES = 100_000
"""A periodic search needing more images of the cell than this is refused (it would not finish)."""


def pair_list(coord: np.ndarray, box: Optional[np.ndarray], rcut: float):
    """All ordered pairs (i, j, shift, distance) with distance < rcut. coord: N x 3, box: 3 x 3 or None."""
    coord = np.ascontiguousarray(coord, dtype=np.float64)
    if box is None:
        box_arr, periodic = np.zeros((3, 3)), False
        # no pair is farther apart than the bounding box's diagonal: a larger cut-off (se_a_mask's unlimited one)
        # would only make vesin's cell grid huge
        diagonal = float(np.linalg.norm(np.ptp(coord, axis=0))) if len(coord) else 0.0
        rcut = min(float(rcut), diagonal + 1.0)
    else:
        box_arr, periodic = np.ascontiguousarray(box, dtype=np.float64), True
        _check_image_count(box_arr, rcut)
    calculator = vesin.NeighborList(cutoff=float(rcut), full_list=True)
    i, j, shift, dist = calculator.compute(coord, box_arr, periodic, quantities="ijSd")
    return i.astype(np.int64), j.astype(np.int64), shift.astype(np.float64), dist


def _check_image_count(box: np.ndarray, rcut: float) -> None:
    """DataError when rcut spans more than MAX_PERIODIC_IMAGES images of the cell (rows a, b, c, Angstrom), e.g.
    se_a_mask's unlimited cut-off (UNLIMITED_RCUT) on a periodic frame."""
    volume = abs(np.linalg.det(box))
    heights = [volume / np.linalg.norm(np.cross(box[(k + 1) % 3], box[(k + 2) % 3])) for k in range(3)]
    images = np.prod([2 * np.ceil(rcut / h) + 1 for h in heights])
    if images > MAX_PERIODIC_IMAGES:
        raise DataError(
            f"a neighbor search to {rcut:g} Angstrom in a periodic cell of heights "
            f"{', '.join(f'{h:.3g}' for h in heights)} Angstrom needs {images:.3g} images of the cell; lower rcut, "
            "or, for a descriptor without cut-off (se_a_mask, isolated clusters only), give frames without a "
            "cell (a nopbc file in the system folder, pbc=False in ASE)"
        )


def _rank_within_groups(sorted_keys: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal keys; keys must be grouped (sorted)."""
    n = sorted_keys.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.ones(n, dtype=bool)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    start_index = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    return np.arange(n) - start_index


def image_tiebreak(j: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Order of equidistant neighbors: by atom j, then by image in DeePMD-kit's ghost order (spec 3.1:
    shifts n sorted by |n|, then lexicographically), so that ties resolve as in the MD-engine entry point
    given DeePMD-kit's extended atoms and mapping. j: npairs; shift: npairs x 3 integers."""
    n = np.rint(shift).astype(np.int64)
    reach = int(np.abs(n).max()) if n.size else 0
    width = 2 * reach + 1
    image = ((n * n).sum(axis=1) * width + n[:, 0] + reach) * width * width + (n[:, 1] + reach) * width + n[:, 2] + reach
    return j * ((3 * reach * reach + 1) * width**3) + image


def build_neighbor_list(
    coord: np.ndarray,
    box: Optional[np.ndarray],
    atype: np.ndarray,
    rcut: float,
    sel: List[int],
    mixed_types: bool = False,
) -> NeighborList:
    """Type-blocked (or, with ``mixed_types``, mixed) neighbor list of one frame. coord: N x 3 (Angstrom),
    box: 3 x 3 or None, atype: N (-1 for a virtual atom, which gets no neighbors and is no one's neighbor)."""
    natoms = coord.shape[0]
    i, j, shift, dist = pair_list(coord, box, rcut)
    real = (atype[i] >= 0) & (atype[j] >= 0)  # virtual atoms (type -1) are no one's neighbors
    i, j, shift, dist = i[real], j[real], shift[real], dist[real]
    # candidates as dense rows: natoms x ncand
    order = np.argsort(i, kind="stable")
    i, j, shift, dist = i[order], j[order], shift[order], dist[order]
    column = _rank_within_groups(i)
    ncand = int(column.max()) + 1 if column.size else 0
    cand_dist = np.full((natoms, ncand), np.inf)
    cand_type = np.full((natoms, ncand), -1, dtype=np.int64)
    cand_tiebreak = np.zeros((natoms, ncand), dtype=np.int64)
    cand_dist[i, column], cand_type[i, column] = dist, atype[j]
    cand_tiebreak[i, column] = image_tiebreak(j, shift)
    slots = select_slots(
        torch.from_numpy(cand_dist)[None], torch.from_numpy(cand_type)[None], torch.from_numpy(cand_tiebreak)[None],
        rcut, sel, mixed_types,
    )[0].numpy()  # natoms x nnei
    # from candidate columns to pairs: the pair of (center, column) sits at position start[center] + column
    start = np.searchsorted(i, np.arange(natoms))
    filled = slots >= 0
    pair = (start[:, None] + slots)[filled]
    index = np.full(slots.shape, -1, dtype=np.int64)
    shifts = np.zeros(slots.shape + (3,), dtype=np.float64)
    index[filled] = j[pair]
    shifts[filled] = shift[pair]
    return NeighborList(index=index, shift=shifts)


def max_neighbor_counts(coord: np.ndarray, box: Optional[np.ndarray], atype: np.ndarray, rcut: float, ntypes: int,
                        mixed_types: bool = False):
    """Largest number of type-t neighbors of any atom within rcut (with ``mixed_types``: [the largest number of
    neighbors of any type], DeePMD-kit's mixed-type statistics), and the smallest pair distance. Virtual atoms
    (type -1) are left out."""
    i, j, _, dist = pair_list(coord, box, rcut)
    real = (atype[i] >= 0) & (atype[j] >= 0)
    i, j, dist = i[real], j[real], dist[real]
    counts = np.zeros((coord.shape[0], ntypes), dtype=np.int64)
    np.add.at(counts, (i, atype[j]), 1)
    if mixed_types:
        counts = counts.sum(axis=1, keepdims=True)
    min_dist = float(dist.min()) if dist.size else np.inf
    return counts.max(axis=0) if coord.shape[0] else np.zeros(counts.shape[1], dtype=np.int64), min_dist
