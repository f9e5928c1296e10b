"""Output statistics of tensor models (spec 3.11, DeePMD-kit's ``compute_output_stats`` in "set-by-statistic"
mode), stored in ``out_bias``/``out_std`` (1 x ntypes x ncomp); the polar model adds the mean of the diagonal
of ``out_bias[t]`` to its atoms' diagonals (``shift_diag``), the dipole model stores them unused, as DeePMD-kit.

- From atomic labels (batches with ``find_atom_<label>``): per type, the mean and std over its atoms.
- From global labels (batches with ``find_<label>``): the least-squares solution of ``counts @ bias = T``
  over frames, counts of atom_exclude_types set to 0; std = the std of the residual, for every type.
- Atomic statistics win; types they lack take the global ones; still missing is 0.
"""

from typing import Dict, List

import numpy as np
import torch

from deeppot import keys


def compute_tensor_output_bias(model, batches: List[Dict]) -> None:
    """Set ``model.out_bias``/``out_std`` (a DipoleModel or PolarModel) from numpy batches carrying its labels
    (``model.label_name`` nf x ncomp and/or ``"atom_" + label_name`` nf x N x ncomp, with find flags)."""
    ntypes, ncomp, label = model.ntypes, model.output_dim, model.label_name
    atomic_label = "atom_" + label
    atomic = [b for b in batches if b.get(keys.find_key(atomic_label), 0.0) and atomic_label in b]
    global_ = [b for b in batches if b.get(keys.find_key(label), 0.0) and label in b]
    bias = np.full((ntypes, ncomp), np.nan)
    std = np.full((ntypes, ncomp), np.nan)
    if atomic:
        values = np.concatenate([np.asarray(b[atomic_label]).reshape(-1, ncomp) for b in atomic])
        types = np.concatenate([np.asarray(b[keys.ATYPE]).reshape(-1) for b in atomic])
        for t in range(ntypes):
            if np.any(types == t):
                bias[t], std[t] = values[types == t].mean(axis=0), values[types == t].std(axis=0)
    if global_:
        keep = np.ones(ntypes)
        keep[model.atom_exclude_types] = 0.0
        counts = np.concatenate([
            np.stack([(np.asarray(b[keys.ATYPE]) == t).sum(axis=1) for t in range(ntypes)], axis=1) for b in global_
        ]).astype(np.float64) * keep
        target = np.concatenate([np.asarray(b[label], dtype=np.float64).reshape(-1, ncomp) for b in global_])
        solution, *_ = np.linalg.lstsq(counts, target, rcond=model.fitting.rcond)
        residual_std = (target - counts @ solution).std(axis=0)
        missing = np.isnan(bias)
        bias[missing] = solution[missing]
        std[missing] = np.broadcast_to(residual_std, (ntypes, ncomp))[missing]
    if not atomic and not global_:
        return
    with torch.no_grad():
        model.out_bias.copy_(torch.from_numpy(np.nan_to_num(bias)).reshape(model.out_bias.shape))
        model.out_std.copy_(torch.from_numpy(np.nan_to_num(std)).reshape(model.out_std.shape))
