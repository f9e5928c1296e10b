"""The modifier interface: a term added to a model's energy, forces and virial that training takes out of the
labels first (DeePMD-kit's ``model/modifier``; DPLR's long-range electrostatics is the one there is).

A modifier's ``forward(coord, atype, box)`` gives its energy (nf, eV), forces (nf x N x 3, eV/Angstrom) and
virial (nf x 9, eV, [a*3+b] = sum_j F_j[a] r_j[b]); :meth:`Modifier.modify_system` subtracts them from a data
system's labels (DeePMD-kit's ``modify_data``), and evaluation (:class:`deeppot.infer.DeepPot`) adds them back.
"""

from typing import Dict, Optional

import numpy as np
import torch
from torch import nn

from deeppot import keys
from deeppot.errors import DataError

FRAMES_PER_CALL = 4  # frames evaluated together when correcting labels; bounds the memory of the k-space sums


class Modifier(nn.Module):
    """A term of energy, forces and virial outside the fitted model; subclasses register under DeePMD-kit's type."""

    type_name = ""  # DeePMD-kit's model/modifier/type

    def forward(self, coord: torch.Tensor, atype: torch.Tensor, box: Optional[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """coord: nf x N x 3 (Angstrom); atype: nf x N or N (-1: virtual); box: nf x 3 x 3 (rows a, b, c).
        Returns energy (nf), force (nf x N x 3) and virial (nf x 9); eV, eV/Angstrom, eV; detached."""
        raise NotImplementedError

    def serialize(self) -> dict:
        raise NotImplementedError

    @classmethod
    def deserialize(cls, data: dict) -> "Modifier":
        raise NotImplementedError

    def evaluate_numpy(self, coord: np.ndarray, atype: np.ndarray, box: Optional[np.ndarray]) -> Dict[str, np.ndarray]:
        """``forward`` on numpy frames (coord nf x N x 3, atype nf x N or N, box nf x 3 x 3 or None), in groups
        of FRAMES_PER_CALL frames; float64 numpy outputs."""
        nframes = coord.shape[0]
        atype = np.broadcast_to(np.asarray(atype).reshape(-1, coord.shape[1]), coord.shape[:2])
        parts: Dict[str, list] = {}
        for start in range(0, nframes, FRAMES_PER_CALL):
            rows = slice(start, start + FRAMES_PER_CALL)
            out = self(torch.from_numpy(np.ascontiguousarray(coord[rows], dtype=np.float64)),
                       torch.from_numpy(np.array(atype[rows], dtype=np.int64)),
                       None if box is None else torch.from_numpy(np.ascontiguousarray(box[rows], dtype=np.float64)))
            for name, value in out.items():
                parts.setdefault(name, []).append(value.detach().numpy())
        return {name: np.concatenate(value) for name, value in parts.items()}

    def modify_system(self, system) -> None:
        """Subtract this term from the energy, force and virial labels of a loaded
        :class:`deeppot.data.DeepmdSystem` (in place; labels it lacks are left alone)."""
        if system.box is None:
            raise DataError(f"{system.path}: the {self.type_name} modifier needs periodic frames (box.npy), but this "
                            "system has none (a nopbc file); remove it from the data or the modifier from the model")
        if all(getattr(system, label) is None for label in keys.LABELS):
            return
        out = self.evaluate_numpy(system.coord, system.frame_types(np.arange(system.nframes)), system.box)
        for label in keys.LABELS:
            value = getattr(system, label)
            if value is not None:
                setattr(system, label, value - out[label].reshape(value.shape))
