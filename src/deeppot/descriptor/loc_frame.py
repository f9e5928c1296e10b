"""``loc_frame`` (DeePMD-kit TF only): neighbor coordinates in a local frame built from two axis neighbors
(DeePMD-kit's ``Descrpt`` op, ``source/op/tf/descrpt.cc`` and ``source/lib/include/ComputeDescriptor.h``).

Neighbors within rcut of each type t, nearest first: the first ``sel_a[t]`` are "a" neighbors (full
coordinates), the next ``sel_r[t]`` "r" neighbors (distance only). Here they share one type block of
``sel[t] = sel_a[t] + sel_r[t]`` slots (the model's type-blocked layout): its first sel_a[t] slots are the a
neighbors, the rest the r neighbors. (DeePMD-kit splits per type without first cutting the whole list to
sum(sel); the two differ only when a type overflows its block.)

Frame of center i (type T), from ``axis_rule[6T : 6T+6] = (class, type, index) x 2``: axis neighbor 1 is
the ``index``-th nearest a (class 0) or r (class 1) neighbor of that type; d1, d2 its and axis neighbor 2's
vectors (neighbor minus center). If d1 and d2 are antiparallel (|cos + 1| < 1e-4), axis neighbor 2 moves to
the next index. ``x = d1/|d1|``, ``y`` = d2 minus its x part, normalised, ``z = x cross y``.
Descriptor row (DeePMD-kit's order): for every a slot (type-blocked, all types) ``[1/r, z'/r^2, x'/r^2,
y'/r^2]`` with (x', y', z') = (x.d, y.d, z.d), then for every r slot ``1/r``; padded slots 0. Normalised
column by column: ``(row - davg[T]) / dstd[T]`` (davg, dstd: ntypes x dim_out), statistics per column.
No switch at rcut: the energy jumps when a neighbor crosses rcut or the axis neighbors change (by design).
A center with a neighbors but without its axis neighbors has no frame: that is an error.
"""

from typing import Iterable, List, Tuple

import numpy as np
import torch

from deeppot.config.model import axis_rule_problems
from deeppot.descriptor.base import Descriptor, _mean_std
from deeppot.errors import DataError
from deeppot.nn.precision import precision_name
from deeppot.tracing import graph_tracing

ANTIPARALLEL_TOLERANCE = 1e-4
"""|cos(d1, d2) + 1| below this makes the second axis fall back to the next neighbor (DeePMD-kit's check)."""


class DescriptorLocFrame(Descriptor):
    """loc_frame on type-blocked slots (sel = sel_a + sel_r per type). Lengths in Angstrom."""

    type_name = "loc_frame"

    def __init__(
        self,
        ntypes: int,
        rcut: float,
        sel_a: List[int],
        sel_r: List[int],
        axis_rule: List[int],
        precision: str = "float64",
    ):
        if len(sel_a) != ntypes or len(sel_r) != ntypes:
            raise ValueError(f"sel_a and sel_r need one entry per type ({ntypes}), got {sel_a} and {sel_r}")
        problems = axis_rule_problems(list(axis_rule), list(sel_a), list(sel_r))
        if problems:
            raise ValueError("axis_rule " + "; ".join(problems))
        super().__init__(ntypes, rcut, rcut, [a + r for a, r in zip(sel_a, sel_r)], 4, precision=precision,
                         trainable=False)
        self.sel_a = [int(a) for a in sel_a]
        self.sel_r = [int(r) for r in sel_r]
        self.axis_rule = [int(v) for v in axis_rule]
        self.antiparallel_tolerance = ANTIPARALLEL_TOLERANCE
        self.nnei_a, self.nnei_r = sum(self.sel_a), sum(self.sel_r)
        a_slots = [self.sel_offsets[t] + k for t in range(ntypes) for k in range(self.sel_a[t])]
        r_slots = [self.sel_offsets[t] + self.sel_a[t] + k for t in range(ntypes) for k in range(self.sel_r[t])]
        self.register_buffer("a_slots", torch.tensor(a_slots, dtype=torch.long), persistent=False)
        self.register_buffer("r_slots", torch.tensor(r_slots, dtype=torch.long), persistent=False)
        self.register_buffer("axis_slots", self._axis_slot_table(a_slots, r_slots), persistent=False)
        self.davg = torch.zeros(ntypes, self.dim_out, dtype=self.dtype)  # replaces the base's per-slot buffers
        self.dstd = torch.ones(ntypes, self.dim_out, dtype=self.dtype)

    @property
    def dim_out(self) -> int:
        return 4 * sum(self.sel_a) + sum(self.sel_r)

    @classmethod
    def from_config(cls, config, ntypes: int, type_embedding=None) -> "DescriptorLocFrame":
        """From a validated ``model/descriptor`` section of type loc_frame (it takes no type embedding)."""
        return cls(ntypes, config.rcut, config.sel_a, config.sel_r, config.axis_rule)

    def _axis_slot_table(self, a_slots: List[int], r_slots: List[int]) -> torch.Tensor:
        """ntypes x 3 slots per center type: axis neighbor 1, axis neighbor 2, and the fallback of axis 2
        (the next neighbor of its class list, or axis 2 itself at the end of the list)."""
        sec = {0: np.concatenate([[0], np.cumsum(self.sel_a)]), 1: np.concatenate([[0], np.cumsum(self.sel_r)])}
        lists = {0: a_slots, 1: r_slots}
        table = []
        for t in range(self.ntypes):
            row = []
            for klass, ntype, index in (self.axis_rule[6 * t : 6 * t + 3], self.axis_rule[6 * t + 3 : 6 * t + 6]):
                row.append(lists[klass][int(sec[klass][ntype]) + index])
            klass, ntype, index = self.axis_rule[6 * t + 3 : 6 * t + 6]
            position = int(sec[klass][ntype]) + index + 1
            row.append(lists[klass][position] if position < len(lists[klass]) else row[1])
            table.append(row)
        return torch.tensor(table, dtype=torch.long)

    # ------------------------------------------------------------ descriptor
    def local_frame(self, rij: torch.Tensor, nei_mask: torch.Tensor, center_type: torch.Tensor) -> torch.Tensor:
        """Rows x, y, z of each center's frame: nf x nloc x 3 x 3. Centers without their axis neighbors get the
        identity (allowed only when they have no a neighbor, whose coordinates the frame would rotate)."""
        nf, nloc = rij.shape[0], rij.shape[1]
        slots = self.axis_slots[center_type]  # nf x nloc x 3
        present = torch.gather(nei_mask, 2, slots)  # nf x nloc x 3
        vectors = torch.gather(rij, 2, slots.unsqueeze(-1).expand(nf, nloc, 3, 3))  # nf x nloc x 3 x 3
        self._check_axes(nei_mask, present)
        eye = torch.eye(3, dtype=rij.dtype, device=rij.device)
        both = (present[..., 0] & present[..., 1]).unsqueeze(-1)  # else x, y axes (never a 0/0 in the graph)
        d1 = torch.where(both, vectors[:, :, 0], eye[0])
        d2 = torch.where(both, vectors[:, :, 1], eye[1])
        backup = torch.where(present[..., 2:3], vectors[:, :, 2], eye[1])
        cos = (d1 * d2).sum(-1) / torch.sqrt((d1 * d1).sum(-1) * (d2 * d2).sum(-1))
        flip = (torch.abs(cos + 1.0) < self.antiparallel_tolerance) & present[..., 2] & both.squeeze(-1)
        d2 = torch.where(flip.unsqueeze(-1), backup, d2)
        x = d1 / torch.linalg.vector_norm(d1, dim=-1, keepdim=True)
        y = d2 - (x * d2).sum(-1, keepdim=True) * x
        y = y / torch.linalg.vector_norm(y, dim=-1, keepdim=True)
        z = torch.linalg.cross(x, y, dim=-1)
        return torch.stack([x, y, z], dim=-2)

    def _check_axes(self, nei_mask: torch.Tensor, present: torch.Tensor) -> None:
        check = True
        if not torch.jit.is_scripting():
            check = not graph_tracing()
        if check:
            has_a = nei_mask.index_select(2, self.a_slots).any(dim=-1)
            missing = has_a & ~(present[..., 0] & present[..., 1])
            if bool(missing.any()):
                where = torch.nonzero(missing)[0]
                raise DataError(
                    "loc_frame: atom " + str(int(where[1])) + " of frame " + str(int(where[0]))
                    + " has neighbors but not the two axis neighbors its axis_rule names within rcut; "
                    "choose axis neighbors every atom has (nearer ones, or other types), or raise rcut"
                )

    def raw_descriptor(self, rij: torch.Tensor, nei_mask: torch.Tensor, center_type: torch.Tensor) -> torch.Tensor:
        """Unnormalised rows: nf x nloc x dim_out. rij: nf x nloc x nnei x 3 (Angstrom); nei_mask: nf x nloc x
        nnei; center_type: nf x nloc (0..ntypes-1)."""
        nf, nloc = rij.shape[0], rij.shape[1]
        rij = rij.to(self.dtype)
        frame = self.local_frame(rij, nei_mask, center_type)
        a_mask = nei_mask.index_select(2, self.a_slots).unsqueeze(-1)
        a_rij = torch.where(a_mask, rij.index_select(2, self.a_slots), torch.ones_like(rij[:, :, :1]))
        local = torch.matmul(a_rij, frame.transpose(-1, -2))  # nf x nloc x nnei_a x 3: (x.d, y.d, z.d)
        inv_r2 = 1.0 / (local * local).sum(-1, keepdim=True)
        a_rows = torch.cat([torch.sqrt(inv_r2), local[..., 2:3] * inv_r2, local[..., 0:1] * inv_r2,
                            local[..., 1:2] * inv_r2], dim=-1) * a_mask.to(self.dtype)
        r_mask = nei_mask.index_select(2, self.r_slots)
        r_rij = torch.where(r_mask.unsqueeze(-1), rij.index_select(2, self.r_slots), torch.ones_like(rij[:, :, :1]))
        r_rows = torch.rsqrt((r_rij * r_rij).sum(-1)) * r_mask.to(self.dtype)
        return torch.cat([a_rows.reshape(nf, nloc, 4 * self.nnei_a), r_rows], dim=-1)

    def forward(
        self, rij: torch.Tensor, nei_mask: torch.Tensor, center_type: torch.Tensor, nei_type: torch.Tensor
    ) -> torch.Tensor:
        """rij: nf x nloc x nnei x 3 (Angstrom); nei_mask: nf x nloc x nnei bool; center_type: nf x nloc;
        nei_type: nf x nloc x nnei (unused: the slot's block gives the type). Returns nf x nloc x dim_out."""
        raw = self.raw_descriptor(rij, nei_mask, center_type)
        return (raw - self.davg[center_type]) / self.dstd[center_type]

    # ------------------------------------------------------------- statistics
    @torch.jit.unused
    def compute_input_stats(
        self, samples: Iterable[Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]], protection: float = 0.01
    ) -> None:
        """davg/dstd per center type and descriptor column over every sampled center of that type (padding
        counted as zeros), as DeePMD-kit's loc_frame; std below ``protection`` becomes ``protection``; an
        unseen type gets avg 0 and std 0.1. Virtual centers (type -1) are not pooled."""
        sums = np.zeros((self.ntypes, 2, self.dim_out))
        counts = np.zeros(self.ntypes)
        with torch.no_grad():
            for rij, nei_mask, center_type, _ in samples:
                raw = self.raw_descriptor(rij, nei_mask, center_type.clamp(min=0)).to(torch.float64).numpy()
                ctype = center_type.numpy()
                for t in range(self.ntypes):
                    rows = raw[ctype == t]  # n x dim_out
                    sums[t] += [rows.sum(axis=0), (rows**2).sum(axis=0)]
                    counts[t] += rows.shape[0]
        davg, dstd = np.zeros((self.ntypes, self.dim_out)), np.ones((self.ntypes, self.dim_out))
        for t in range(self.ntypes):
            for c in range(self.dim_out):
                davg[t, c], dstd[t, c] = _mean_std(sums[t, 0, c], sums[t, 1, c], counts[t], protection)
        with torch.no_grad():
            self.davg.copy_(torch.from_numpy(davg))
            self.dstd.copy_(torch.from_numpy(dstd))

    # ---------------------------------------------------------- serialization
    @torch.jit.unused
    def serialize(self) -> dict:
        """DeePMD-kit has no serialized loc_frame; this dict follows its descriptor layout (spec section 5)."""
        return {
            "@class": "Descriptor",
            "type": self.type_name,
            "@version": 1,
            "rcut": self.rcut,
            "sel_a": list(self.sel_a),
            "sel_r": list(self.sel_r),
            "axis_rule": list(self.axis_rule),
            "precision": precision_name(self.dtype),
            "@variables": {
                "davg": self.davg.detach().cpu().numpy().copy(),
                "dstd": self.dstd.detach().cpu().numpy().copy(),
            },
            "type_map": None,
        }

    @classmethod
    def deserialize(cls, data: dict) -> "DescriptorLocFrame":
        descriptor = cls(len(data["sel_a"]), data["rcut"], data["sel_a"], data["sel_r"], data["axis_rule"],
                         data["precision"])
        with torch.no_grad():
            descriptor.davg.copy_(torch.as_tensor(np.asarray(data["@variables"]["davg"])))
            descriptor.dstd.copy_(torch.as_tensor(np.asarray(data["@variables"]["dstd"])))
        return descriptor
