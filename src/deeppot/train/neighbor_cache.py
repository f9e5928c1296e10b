"""Neighbor slots of training frames, computed once: the frames of a data set never move, so the
cell-list search and sort need not be repeated every time a frame is drawn again."""

from typing import Dict, List, Tuple

import numpy as np
import torch

from deeppot import keys
from deeppot.model.pairs import local_neighbor_slots

# index int32 + cell shift 3 x int8 per slot; past this many bytes frames are searched every time
DEFAULT_BUDGET_BYTES = 2 * 1024**3


class NeighborCache:
    def __init__(
        self, rcut: float, sel: List[int], mixed_types: bool = False, budget_bytes: int = DEFAULT_BUDGET_BYTES
    ):
        """rcut (Angstrom), sel and mixed_types: the model's slot layout (``Descriptor.mixed_types``)."""
        self.rcut = rcut
        self.sel = list(sel)
        self.mixed_types = mixed_types
        self.budget = budget_bytes
        self.used = 0
        self.frames: Dict[Tuple[int, int], Tuple[np.ndarray, np.ndarray]] = {}

    def slots(self, batch: Dict) -> Tuple[torch.Tensor, torch.Tensor]:
        """(index nf x N x nnei, integer cell shift nf x N x nnei x 3) of a batch from the data sampler."""
        system = batch["system_index"]
        frames = [int(f) for f in batch["frame_index"]]
        missing = [i for i, f in enumerate(frames) if (system, f) not in self.frames]
        found: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
        if missing:
            box = batch.get(keys.BOX)
            index, shift = local_neighbor_slots(
                _host(batch[keys.COORD])[missing], None if box is None else _host(box)[missing],
                _host(batch[keys.ATYPE])[missing], self.rcut, self.sel, self.mixed_types,
            )
            for k, i in enumerate(missing):
                value = (index[k].astype(np.int32), shift[k])
                found[frames[i]] = value
                size = value[0].nbytes + value[1].nbytes
                if self.used + size <= self.budget:
                    self.frames[(system, frames[i])] = value
                    self.used += size
        parts = [found[f] if f in found else self.frames[(system, f)] for f in frames]
        return torch.from_numpy(np.stack([p[0] for p in parts])), torch.from_numpy(np.stack([p[1] for p in parts]))


def _host(value) -> np.ndarray:
    """A numpy array of a batch entry, a numpy array or a torch tensor on any device (the search runs on the CPU)."""
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
