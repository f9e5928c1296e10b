"""Neighbor statistics over data systems, as ``dp neighbor-stat``: the largest number of neighbors of
each type within rcut of any atom, and the smallest interatomic distance (Angstrom)."""

from typing import Iterable, Tuple

import numpy as np

from deeppot.geometry.neighbors import max_neighbor_counts


def neighbor_stat(systems: Iterable, rcut: float, ntypes: int) -> Tuple[np.ndarray, float]:
    """systems: objects with coord (nf x N x 3), box (nf x 3 x 3 or None) and atype (N). Returns
    (max_nbor per type, min_nbor_dist)."""
    max_nbor = np.zeros(ntypes, dtype=np.int64)
    min_dist = np.inf
    for system in systems:
        for f in range(system.coord.shape[0]):
            box = None if system.box is None else system.box[f]
            counts, dist = max_neighbor_counts(np.asarray(system.coord[f]), box, system.atype, rcut, ntypes)
            max_nbor = np.maximum(max_nbor, counts)
            min_dist = min(min_dist, dist)
    return max_nbor, float(min_dist)
