"""``hybrid``: a list of type-blocked descriptors, each with its own rcut and sel, outputs concatenated in list
order (DeePMD-kit's ``DescrptHybrid``).

One neighbor search serves all members: the hybrid's rcut is the largest member rcut and its sel the per-type
largest member sel. Member m sees, of each type block t, the first ``sel_m[t]`` slots (nearest first); real
neighbors there beyond the member's rcut stay in its list and get switch weight 0, exactly as in DeePMD-kit.
"""

from typing import Iterable, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from deeppot.descriptor.base import Descriptor


class DescriptorHybrid(Descriptor):
    """Concatenation of member descriptors on one shared neighbor list. All lengths in Angstrom."""

    type_name = "hybrid"

    def __init__(self, members: List[Descriptor]):
        if len(members) == 0:
            raise ValueError("hybrid descriptor: 'list' is empty; give at least one descriptor")
        ntypes = members[0].ntypes
        if any(m.ntypes != ntypes for m in members):
            raise ValueError("hybrid descriptor: its members have different numbers of atom types")
        sel = np.max([m.sel for m in members], axis=0).tolist()
        super().__init__(ntypes, max(m.rcut for m in members), min(m.rcut_smth for m in members), sel, 0,
                         precision="float64", trainable=any(m.trainable for m in members))
        self.members = nn.ModuleList(members)
        self.compressed = any(m.compressed for m in members)
        self.shared_fitting = any(m.shared_fitting for m in members)
        self.has_rotation_matrix = all(m.has_rotation_matrix for m in members)
        # the slots of each member in the hybrid layout, concatenated: member m's are cut_sizes[m] from cut_starts[m]
        cuts = [np.concatenate([np.arange(o, o + s) for o, s in zip(self.sel_offsets, m.sel)]) for m in members]
        self.cut_sizes = [int(len(c)) for c in cuts]
        self.cut_starts = [int(x) for x in np.concatenate([[0], np.cumsum(self.cut_sizes)[:-1]])]
        self.register_buffer("cut_slots", torch.from_numpy(np.concatenate(cuts)).long(), persistent=False)

    @classmethod
    def from_config(cls, config, ntypes: int, type_embedding=None) -> "DescriptorHybrid":
        """Each member from its section of the resolved ``list`` (a hybrid takes no type embedding)."""
        from deeppot.descriptor import descriptor_class  # the registry imports this module

        return cls([descriptor_class(member.type).from_config(member, ntypes) for member in config.list])

    @property
    def dim_out(self) -> int:
        return sum(m.dim_out for m in self.members)

    def _member_slots(self, k: int) -> torch.Tensor:
        return self.cut_slots.narrow(0, self.cut_starts[k], self.cut_sizes[k])

    def forward(
        self, rij: torch.Tensor, nei_mask: torch.Tensor, center_type: torch.Tensor, nei_type: torch.Tensor
    ) -> torch.Tensor:
        """rij: nf x nloc x nnei x 3 (Angstrom); nei_mask: nf x nloc x nnei bool; center_type: nf x nloc;
        nei_type: nf x nloc x nnei (-1 where nei_mask is False).

        Returns the members' descriptors concatenated: nf x nloc x dim_out.
        """
        outputs: List[torch.Tensor] = []
        for k, member in enumerate(self.members):
            slots = self._member_slots(k)
            outputs.append(member(rij.index_select(2, slots), nei_mask.index_select(2, slots), center_type,
                                  nei_type.index_select(2, slots)))
        return torch.cat(outputs, dim=-1)

    @torch.jit.unused
    def compute_input_stats(
        self, samples: Iterable[Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]], protection: float = 0.01
    ) -> None:
        """Each member's statistics on its own slots of the shared samples."""
        samples = list(samples)
        for k, member in enumerate(self.members):
            slots = self._member_slots(k)
            member.compute_input_stats(
                ((rij.index_select(2, slots), mask.index_select(2, slots), ctype, ntype.index_select(2, slots))
                 for rij, mask, ctype, ntype in samples),
                protection,
            )

    @torch.jit.unused
    def compression_refusal(self) -> Optional[str]:
        for k, member in enumerate(self.members):
            refusal = member.compression_refusal()
            if refusal is not None:
                return f"its member {k} ({member.type_name}) cannot be: {refusal}"
        return None

    @torch.jit.unused
    def enable_compression(
        self, min_nbor_dist: float, table_extrapolate: float = 5.0, table_stride_1: float = 0.01,
        table_stride_2: float = 0.1, check_frequency: int = -1,
    ) -> None:
        """Each member tabulates its own nets (its own rcut and statistics); all or none."""
        refusal = self.compression_refusal()
        if refusal is not None or self.compressed:
            raise ValueError(f"descriptor hybrid cannot be compressed: {refusal or 'it already is'}")
        for member in self.members:
            member.enable_compression(min_nbor_dist, table_extrapolate, table_stride_1, table_stride_2, check_frequency)
        self.compressed = True

    @torch.jit.unused
    def serialize(self) -> dict:
        return {"@class": "Descriptor", "type": "hybrid", "@version": 1, "list": [m.serialize() for m in self.members]}

    @classmethod
    def deserialize(cls, data: dict) -> "DescriptorHybrid":
        from deeppot.descriptor import deserialize_descriptor  # the registry imports this module

        return cls([deserialize_descriptor(member) for member in data["list"]])
