"""``hybrid``: a list of descriptors, each with its own rcut and sel, outputs concatenated in list order
(DeePMD-kit's ``DescrptHybrid``).

One neighbor search serves all members: the hybrid's rcut is the largest member rcut. With type-blocked
members only, its sel is the per-type largest member sel, and member m sees, of each type block t, the first
``sel_m[t]`` slots (nearest first). With a mixed-type member (se_atten), the hybrid is mixed-type: its one block
holds the nsel nearest neighbors of any type, nsel the largest member nsel (sum of sel); a mixed-type member sees
the first nsel_m slots, and the type-blocked members read a type-blocked list made from the mixed one, per type the
first ``blocked_sel[t]`` neighbors of that type in distance order (``blocked_sel`` the per-type largest sel of the
type-blocked members; DeePMD-kit's ``nlist_distinguish_types``). In both cases real neighbors beyond a member's
rcut stay in its list and get switch weight 0, exactly as in DeePMD-kit.
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
        self.mixed_types = any(m.mixed_types for m in members)  # read by the base class
        blocked = [m for m in members if not m.mixed_types]
        # the type-blocked members' list: the hybrid's own, or (mixed hybrid) one made from the mixed list
        blocked_sel = np.max([m.sel for m in blocked], axis=0).tolist() if blocked else []
        sel = [max(sum(m.sel) for m in members)] if self.mixed_types else blocked_sel
        super().__init__(ntypes, max(m.rcut for m in members), min(m.rcut_smth for m in members), sel, 0,
                         precision="float64", trainable=any(m.trainable for m in members))
        self.from_blocked = [self.mixed_types and not m.mixed_types for m in members]  # member reads the made list
        self.blocked_sel = blocked_sel if self.mixed_types else []
        self.makes_blocked_list = len(self.blocked_sel) > 0
        made_offsets = [int(x) for x in np.cumsum([0] + self.blocked_sel)[:-1]]
        # per neighbor type, and a last entry for padding: its slots in the made list and where they start
        self.register_buffer("blocked_room", torch.tensor(self.blocked_sel + [0], dtype=torch.long), persistent=False)
        self.register_buffer("blocked_start", torch.tensor(made_offsets + [0], dtype=torch.long), persistent=False)
        slot_types = [t for t, count in enumerate(self.blocked_sel) for _ in range(count)]
        self.register_buffer("blocked_types", torch.tensor(slot_types, dtype=torch.long), persistent=False)
        self.members = nn.ModuleList(members)
        self.compressed = any(m.compressed for m in members)
        self.shared_fitting = any(m.shared_fitting for m in members)
        self.has_rotation_matrix = all(m.has_rotation_matrix for m in members)
        # each member's slots in the list it reads, concatenated: member m's are cut_sizes[m] from cut_starts[m]
        cuts = [
            np.concatenate([np.arange(o, o + s) for o, s in zip(made_offsets if made else self.sel_offsets, m.sel)])
            for m, made in zip(members, self.from_blocked)
        ]
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
        made = self._type_blocked(rij, nei_mask, nei_type) if self.makes_blocked_list else (rij, nei_mask, nei_type)
        outputs: List[torch.Tensor] = []
        for k, member in enumerate(self.members):
            slots = self._member_slots(k)
            r, m, t = made if self.from_blocked[k] else (rij, nei_mask, nei_type)
            outputs.append(member(r.index_select(2, slots), m.index_select(2, slots), center_type,
                                  t.index_select(2, slots)))
        return torch.cat(outputs, dim=-1)

    def _type_blocked(
        self, rij: torch.Tensor, nei_mask: torch.Tensor, nei_type: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The type-blocked list (blocks of ``blocked_sel``) made from the mixed one: per type, its first
        neighbors in the mixed (distance) order. Returns rij (nf x nloc x nblocked x 3), nei_mask and nei_type."""
        nf, nloc, nnei = nei_mask.shape
        nblocked = len(self.blocked_types)
        kind = torch.where(nei_mask, nei_type, self.ntypes)  # padding: an extra kind with no room
        one_hot = torch.nn.functional.one_hot(kind, self.ntypes + 1)  # nf x nloc x nnei x (ntypes + 1)
        rank = (one_hot.cumsum(2) * one_hot).sum(-1) - 1  # place among the slots of its type, nearest first
        keep = nei_mask & (rank < self.blocked_room[kind])
        target = torch.where(keep, self.blocked_start[kind] + rank, nblocked)  # dropped ones go to a spare slot
        source = torch.full((nf, nloc, nblocked + 1), nnei, dtype=torch.long, device=rij.device)
        source = source.scatter(2, target, torch.arange(nnei, device=rij.device).expand(nf, nloc, nnei))
        source = source[:, :, :nblocked]  # the mixed slot each made slot reads (nnei: padding)
        padded = torch.cat([rij, torch.zeros_like(rij[:, :, :1])], dim=2)
        made_rij = torch.gather(padded, 2, source.unsqueeze(-1).expand(nf, nloc, nblocked, 3))
        made_mask = source < nnei
        made_type = torch.where(made_mask, self.blocked_types, -1)
        return made_rij, made_mask, made_type

    @torch.jit.unused
    def compute_input_stats(
        self, samples: Iterable[Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]], protection: float = 0.01
    ) -> None:
        """Each member's statistics on its own slots of the shared samples."""
        samples = list(samples)
        made = []  # the samples on the made type-blocked list (a mixed hybrid with type-blocked members)
        if self.makes_blocked_list:
            for rij, mask, ctype, ntype in samples:
                made_rij, made_mask, made_type = self._type_blocked(rij, mask, ntype)
                made.append((made_rij, made_mask, ctype, made_type))
        for k, member in enumerate(self.members):
            slots = self._member_slots(k)
            member.compute_input_stats(
                ((rij.index_select(2, slots), mask.index_select(2, slots), ctype, ntype.index_select(2, slots))
                 for rij, mask, ctype, ntype in (made if self.from_blocked[k] else samples)),
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
