"""Small float64 DP/ZBL models for the physics and reference tests: a model of ``make_model`` with the water pair
table (../shared/data/water/H2O_tab_potential.txt) switched in between sw_rmin and sw_rmax."""

import numpy as np
from deeppot_test_models import DATA_DIR, cluster_frame, make_model, periodic_frame

from deeppot.model.pair_table import PairTableEnergy
from deeppot.model.zbl_model import DPZBLModel

WATER_TABLE = DATA_DIR / "water" / "H2O_tab_potential.txt"


def make_zbl_model(sw_rmin: float = 0.8, sw_rmax: float = 1.6, smin_alpha: float = 0.1, **options) -> DPZBLModel:
    """``make_model(**options)`` (2 types, O and H) as the DP part of a DP/ZBL model with the water table, its
    random output bias kept."""
    dp = make_model(**options)
    table = PairTableEnergy.from_file(WATER_TABLE, dp.ntypes, dp.rcut, sum(dp.sel), "test table")
    model = DPZBLModel(dp.descriptor, dp.fitting, dp.type_map, table, sw_rmin, sw_rmax, smin_alpha,
                       dp.atom_exclude_types, dp.pair_exclude_types)
    model.out_bias.copy_(dp.out_bias)
    return model.eval()


def close_contact_frame(periodic: bool = False, seed: int = 0):
    """(coord N x 3, atype N, box or None): 12 (cluster) or 16 (periodic cell) atoms at least 1.7 A apart, then
    atom 1 moved to 0.5 A of atom 0 (soft-min distance below sw_rmin 0.8) and atom 3 to 1.1 A of atom 2 (between
    sw_rmin and sw_rmax 1.6): atoms whose table weight is 1, strictly between 0 and 1, and 0."""
    if periodic:
        coord, atype, box = periodic_frame(16, seed=seed, min_dist=1.7)
    else:
        (coord, atype), box = cluster_frame(12, seed=seed, size=6.0, min_dist=1.7), None
    coord = coord.copy()
    coord[1] = coord[0] + np.array([0.42, 0.25, -0.1])
    coord[3] = coord[2] + np.array([-0.3, 0.95, 0.45])
    return coord, atype, box


def softmin_weights(coord, box, rcut: float, alpha: float = 0.1, rmin: float = 0.8, rmax: float = 1.6) -> np.ndarray:
    """The table weight of each atom (N) by brute force over minimum images (cells wider than 2 rcut)."""
    diff = coord[None] - coord[:, None]
    if box is not None:
        frac = diff @ np.linalg.inv(box)
        diff = (frac - np.round(frac)) @ box
    dist = np.linalg.norm(diff, axis=-1)
    weights = []
    for i, row in enumerate(dist):
        r = row[(np.arange(len(row)) != i) & (row < rcut)]
        sigma = (r * np.exp(-r / alpha)).sum() / np.exp(-r / alpha).sum()
        u = np.clip((sigma - rmin) / (rmax - rmin), 0, 1)
        weights.append(1 - 10 * u**3 + 15 * u**4 - 6 * u**5)
    return np.array(weights)
