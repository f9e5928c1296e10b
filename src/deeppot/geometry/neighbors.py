"""Neighbor lists in DeePMD-kit's per-type block layout, built with a cell list (vesin).

For each local atom i the row is ``[type-0 block (sel[0]) | type-1 block (sel[1]) | ...]``;
each block holds neighbors of that type sorted by distance, padded with -1. As in DeePMD-kit,
candidates are first sorted by distance and cut to ``sum(sel)``, then split by type and cut to
``sel[t]`` (spec 3.2). Periodic images are expressed as integer cell shifts, so a slot is
``(j, shift)`` with neighbor position ``r_j + shift @ box``.
"""

from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import vesin


@dataclass
class NeighborList:
    """index: nloc x nnei int64 local atom index of each slot (-1 = padding).
    shift: nloc x nnei x 3 float64 integer cell shifts (0 for padding)."""

    index: np.ndarray
    shift: np.ndarray


def pair_list(coord: np.ndarray, box: Optional[np.ndarray], rcut: float):
    """All ordered pairs (i, j, shift, distance) with distance < rcut. coord: N x 3, box: 3 x 3 or None."""
    coord = np.ascontiguousarray(coord, dtype=np.float64)
    if box is None:
        box_arr, periodic = np.zeros((3, 3)), False
    else:
        box_arr, periodic = np.ascontiguousarray(box, dtype=np.float64), True
    calculator = vesin.NeighborList(cutoff=float(rcut), full_list=True)
    i, j, shift, dist = calculator.compute(coord, box_arr, periodic, quantities="ijSd")
    return i.astype(np.int64), j.astype(np.int64), shift.astype(np.float64), dist


def _rank_within_groups(sorted_keys: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal keys; keys must be grouped (sorted)."""
    n = sorted_keys.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.ones(n, dtype=bool)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    start_index = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    return np.arange(n) - start_index


def build_neighbor_list(
    coord: np.ndarray, box: Optional[np.ndarray], atype: np.ndarray, rcut: float, sel: List[int]
) -> NeighborList:
    """Type-blocked neighbor list of one frame. coord: N x 3 (Angstrom), box: 3 x 3 or None, atype: N
    (-1 for a virtual atom, which gets no neighbors and is no one's neighbor)."""
    natoms = coord.shape[0]
    nnei = int(sum(sel))
    i, j, shift, dist = pair_list(coord, box, rcut)
    real = (atype[i] >= 0) & (atype[j] >= 0)  # virtual atoms (type -1) are no one's neighbors
    i, j, shift, dist = i[real], j[real], shift[real], dist[real]
    # global distance order per center, truncated to sum(sel)
    order = np.lexsort((dist, i))
    i, j, shift, dist = i[order], j[order], shift[order], dist[order]
    keep = _rank_within_groups(i) < nnei
    i, j, shift = i[keep], j[keep], shift[keep]
    # per-type blocks (stable: keeps the distance order inside each block)
    tj = atype[j]
    order = np.lexsort((tj, i))  # stable sort by (i, tj), already distance-ordered within
    i, j, shift, tj = i[order], j[order], shift[order], tj[order]
    rank = _rank_within_groups(i * (len(sel) + 1) + tj)
    sel_arr = np.asarray(sel, dtype=np.int64)
    keep = rank < sel_arr[tj]
    i, j, shift, tj, rank = i[keep], j[keep], shift[keep], tj[keep], rank[keep]
    offsets = np.concatenate([[0], np.cumsum(sel_arr)[:-1]])
    column = offsets[tj] + rank
    index = np.full((natoms, nnei), -1, dtype=np.int64)
    shifts = np.zeros((natoms, nnei, 3), dtype=np.float64)
    index[i, column] = j
    shifts[i, column] = shift
    return NeighborList(index=index, shift=shifts)


def max_neighbor_counts(coord: np.ndarray, box: Optional[np.ndarray], atype: np.ndarray, rcut: float, ntypes: int):
    """Largest number of type-t neighbors of any atom within rcut, and the smallest pair distance."""
    i, j, _, dist = pair_list(coord, box, rcut)
    counts = np.zeros((coord.shape[0], ntypes), dtype=np.int64)
    np.add.at(counts, (i, atype[j]), 1)
    min_dist = float(dist.min()) if dist.size else np.inf
    return counts.max(axis=0) if coord.shape[0] else np.zeros(ntypes, dtype=np.int64), min_dist
