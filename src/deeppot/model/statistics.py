"""Data statistics that initialise a model before training (spec sections 3.4, 3.10, 3.11).

- Environment-matrix mean and std per center type, computed by the descriptor (spec 3.4).
- Output bias: the minimum-norm least-squares solution of ``counts @ bias = E`` over sampled frames.
- fparam / aparam mean and 1/std.
"""

from typing import Dict, List, Optional

import numpy as np
import torch

from deeppot import keys
from deeppot.model.energy_model import EnergyModel
from deeppot.model.pairs import gather_pair_vectors, neighbor_types


def compute_descriptor_statistics(model: EnergyModel, batches: List[Dict], protection: float = 0.01) -> None:
    """Set the descriptor's davg/dstd from batches (numpy dicts with coord, box, atype); the descriptor pools
    the environment rows of the slots the model gives it (:meth:`Descriptor.compute_input_stats`)."""

    def samples():
        for batch in batches:
            coord, atype, box = batch[keys.COORD], batch[keys.ATYPE], batch.get(keys.BOX)
            coord_t, atype_t = torch.from_numpy(np.asarray(coord)), torch.from_numpy(np.asarray(atype))
            box_t = None if box is None else torch.from_numpy(np.asarray(box, dtype=np.float64))
            index, shift = model.neighbor_slots(coord_t, atype_t, box_t)
            atype_t = atype_t.expand(index.shape[:2])
            mask, nei_type, _, _ = model.slot_mask(index >= 0, atype_t, neighbor_types(atype_t, index))
            yield gather_pair_vectors(coord_t, index, shift), mask, atype_t, nei_type

    with torch.no_grad():
        model.descriptor.compute_input_stats(samples(), protection)


def compute_output_bias(model: EnergyModel, batches: List[Dict], rcond: Optional[float] = None) -> None:
    """Least-squares per-type energy bias (eV) from frames carrying energy labels; sets out_bias/out_std."""
    counts, energies = [], []
    for batch in batches:
        if not batch.get(keys.find_key(keys.ENERGY), 0.0):
            continue
        atype = batch[keys.ATYPE]
        counts.append(np.stack([(atype == t).sum(axis=1) for t in range(model.ntypes)], axis=1))
        energies.append(np.asarray(batch[keys.ENERGY], dtype=np.float64).reshape(-1))
    if not counts:
        return
    a = np.concatenate(counts).astype(np.float64)
    y = np.concatenate(energies)
    preset = (model.preset_out_bias or {}).get("energy")
    fixed = np.zeros(model.ntypes, dtype=bool)
    bias = np.zeros(model.ntypes)
    if preset is not None:
        for t, value in enumerate(preset):
            if value is not None:
                fixed[t], bias[t] = True, float(value)
    free = ~fixed
    solution, *_ = np.linalg.lstsq(a[:, free], y - a[:, fixed] @ bias[fixed], rcond=rcond)
    bias[free] = solution
    residual_std = float(np.std(y - a @ bias))
    with torch.no_grad():
        model.out_bias.copy_(torch.from_numpy(bias.reshape(1, -1, 1)))
        model.out_std.fill_(residual_std if residual_std > 0 else 1.0)


def compute_parameter_statistics(model: EnergyModel, batches: List[Dict], protection: float = 0.01) -> None:
    """Mean and 1/std of fparam (per frame) and aparam (per atom) for the fitting input."""
    fitting = model.fitting
    for name, count, per_atom in (("fparam", fitting.numb_fparam, False), ("aparam", fitting.numb_aparam, True)):
        if count == 0:
            continue
        values = np.concatenate([np.asarray(b[name]).reshape(-1, count) for b in batches if b.get(name) is not None])
        mean = values.mean(axis=0)
        std = np.maximum(np.sqrt(np.maximum((values**2).mean(axis=0) - mean**2, 0.0)), protection)
        with torch.no_grad():
            getattr(fitting, f"{name}_avg").copy_(torch.from_numpy(mean))
            getattr(fitting, f"{name}_inv_std").copy_(torch.from_numpy(1.0 / std))
