"""Neighbor statistics over data systems, as ``dp neighbor-stat``: the largest number of neighbors of
each type within rcut of any atom, and the smallest interatomic distance (Angstrom)."""

from typing import Iterable, Tuple

import numpy as np

from deeppot.geometry.neighbors import max_neighbor_counts


def neighbor_stat(systems: Iterable, rcut: float, ntypes: int, mixed_types: bool = False) -> Tuple[np.ndarray, float]:
    """systems: objects with coord (nf x N x 3), box (nf x 3 x 3 or None) and atype (N, or nf x N for mixed-type
    data; -1 for a virtual atom). Returns (max_nbor per type, or [max_nbor of any type] with ``mixed_types``,
    min_nbor_dist)."""
    max_nbor = np.zeros(1 if mixed_types else ntypes, dtype=np.int64)
    min_dist = np.inf
    for system in systems:
        for f in range(system.coord.shape[0]):
            box = None if system.box is None else system.box[f]
            atype = system.atype[f] if system.atype.ndim == 2 else system.atype  # mixed-type data: per frame
            counts, dist = max_neighbor_counts(np.asarray(system.coord[f]), box, atype, rcut, ntypes,
                                               mixed_types)
            max_nbor = np.maximum(max_nbor, counts)
            min_dist = min(min_dist, dist)
    return max_nbor, float(min_dist)
