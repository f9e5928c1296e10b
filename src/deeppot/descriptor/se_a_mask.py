"""``se_a_mask`` (DeePMD-kit TF only): se_e2_a for clusters whose real atoms vary per frame (spec 2.2).

The data pads every frame to one atom count with virtual atoms; ``aparam`` (one column) is 1 for a real and
0 for a virtual atom, and the energy fitting with ``use_aparam_as_mask`` turns the 0s into virtual atoms
(type -1) before the neighbor search, so virtual atoms are neither centers nor neighbors and give zero energy
and force (:meth:`deeppot.fitting.energy.EnergyFitting.atom_types`).

What differs from se_e2_a (DeePMD-kit's ``descrpt_se_a_mask`` op, ``deepmd/tf/descriptor/se_a_mask.py``):
- no cut-off and no switch: every real atom of the frame is a neighbor, sorted by type then distance, with
  the plain row ``[1/r, x/r^2, y/r^2, z/r^2]`` (``w = 1``); the cell is never used (isolated clusters only);
- no environment statistics: davg = 0 and dstd = 1 always, so padded slots are zero rows;
- ``sel[t]`` must cover the real type-t atoms of a frame (DeePMD-kit needs ``sel`` = the per-type atom
  counts of the padded frame); ``gr = (1/sum(sel)) sum_j G_j^T R_j`` as in se_e2_a.
DeePMD-kit has no serialized form of it; ours is se_e2_a's dict with type "se_a_mask" and no rcut.
"""

from typing import Iterable, List, Optional, Tuple

import numpy as np
import torch

from deeppot.config.model import UNLIMITED_RCUT
from deeppot.descriptor.se_e2_a import DescriptorSeA


def plain_environment(rij: torch.Tensor, nei_mask: torch.Tensor) -> torch.Tensor:
    """Rows ``[1/r, x/r^2, y/r^2, z/r^2]`` without switch, zero for padded slots: nf x nloc x nnei x 4.
    rij: nf x nloc x nnei x 3 (Angstrom); nei_mask: nf x nloc x nnei bool."""
    mask = nei_mask.unsqueeze(-1)
    safe = torch.where(mask, rij, torch.ones_like(rij))  # no 1/0 in the graph for padded slots
    r2 = (safe * safe).sum(dim=-1, keepdim=True)
    inv_r2 = 1.0 / r2
    rows = torch.cat([torch.sqrt(inv_r2), safe * inv_r2], dim=-1)
    return rows * mask.to(rij.dtype)


class DescriptorSeAMask(DescriptorSeA):
    """se_a_mask on type-blocked slots of all real atoms of a cluster. Lengths in Angstrom."""

    type_name = "se_a_mask"
    periodic = False

    def __init__(
        self,
        ntypes: int,
        sel: List[int],
        neuron: List[int],
        axis_neuron: int,
        activation_function: str = "tanh",
        resnet_dt: bool = False,
        type_one_side: bool = False,
        exclude_types: Optional[List[Tuple[int, int]]] = None,
        precision: str = "float64",
        trainable: bool = True,
        seed: Optional[int] = None,
    ):
        super().__init__(ntypes, UNLIMITED_RCUT, UNLIMITED_RCUT, sel, neuron, axis_neuron, activation_function,
                         resnet_dt, type_one_side, exclude_types, 0.0, True, precision, trainable, seed)

    def _environment(self, rij: torch.Tensor, nei_mask: torch.Tensor) -> torch.Tensor:
        return plain_environment(rij.to(self.dtype), nei_mask)

    @torch.jit.unused
    def compute_input_stats(
        self, samples: Iterable[Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]], protection: float = 0.01
    ) -> None:
        """Nothing to compute: DeePMD-kit's se_a_mask keeps davg = 0 and dstd = 1."""

    @torch.jit.unused
    def compression_refusal(self) -> Optional[str]:
        return "it has no cut-off, so the training data set no range for its embedding nets' input"

    @torch.jit.unused
    def serialize(self) -> dict:
        data = self._common_dict()
        data.update(self._embedding_dict(), axis_neuron=self.axis_neuron, **{"@version": 1})
        for key in ("rcut", "rcut_smth", "env_protection", "set_davg_zero", "env_mat"):
            data.pop(key)
        return data

    @classmethod
    def deserialize(cls, data: dict) -> "DescriptorSeAMask":
        descriptor = cls(
            ntypes=np.asarray(data["@variables"]["davg"]).shape[0],
            sel=data["sel"],
            neuron=data["neuron"],
            axis_neuron=data["axis_neuron"],
            activation_function=data["activation_function"],
            resnet_dt=data["resnet_dt"],
            type_one_side=data["type_one_side"],
            exclude_types=data.get("exclude_types", []),
            precision=data["precision"],
            trainable=data.get("trainable", True),
        )
        descriptor._load_embeddings(data)
        return descriptor
