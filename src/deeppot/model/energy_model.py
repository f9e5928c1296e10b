"""Energy model = descriptor + energy fitting + per-type output bias (spec 3.10-3.12).

Two entry points, as in DeePMD-kit:
- ``forward(coord, atype, box)`` builds its own neighbor list (vesin cell list) and is used by
  Python, ASE and training;
- ``forward_lower(extended_coord, extended_atype, nlist, mapping)`` takes ghost atoms and a neighbor
  list from an MD engine; it is TorchScript-compatible and is what ``deeppot freeze`` exports.
Forces and virials come from the autograd gradient of the energy with respect to the pair vectors.
"""

from typing import Dict, List, Optional, Tuple

import torch

from deeppot import keys
from deeppot.descriptor import deserialize_descriptor
from deeppot.fitting.energy import EnergyFitting
from deeppot.model.base import DescriptorFittingModel
from deeppot.model.nlist_format import EngineInputError
from deeppot.model.pairs import (
    atomic_virial_from_pair_gradient,
    forces_from_pair_gradient,
    virial_from_pair_gradient,
)


class EnergyModel(DescriptorFittingModel):
    """Descriptor + energy fitting; slots, exclusions, statistics and the dict: :class:`DescriptorFittingModel`."""

    # ------------------------------------------------------------------ core
    def atomic_energy(
        self,
        rij: torch.Tensor,
        nei_mask: torch.Tensor,
        atype: torch.Tensor,
        nei_type: torch.Tensor,
        fparam: Optional[torch.Tensor] = None,
        aparam: Optional[torch.Tensor] = None,
        type_counts: Optional[List[int]] = None,
    ) -> torch.Tensor:
        """Atomic energies nf x nloc (eV, float64) from pair vectors rij (nf x nloc x nnei x 3), slot mask
        nei_mask (nf x nloc x nnei), center types atype (nf x nloc) and neighbor types nei_type (nf x nloc x nnei,
        -1 for padding; see :func:`deeppot.model.pairs.neighbor_types`). type_counts: the atoms of each type if
        every frame's atoms are sorted by type (:func:`deeppot.model.pairs.sorted_type_counts`), else None.

        Type -1 marks a virtual (padding) atom: it has no neighbors and zero energy.
        """
        nei_mask, nei_type, atype, real = self.slot_mask(nei_mask, atype, nei_type)
        descriptor = self.descriptor(rij, nei_mask, atype, nei_type)
        energy = self.fitting(descriptor, atype, fparam, aparam, type_counts).to(torch.float64)
        energy = energy + self.out_bias[0, :, 0][atype]
        return energy * self.atom_keep[atype] * real.to(torch.float64)

    def _energy_and_pair_gradient(
        self,
        rij: torch.Tensor,
        nei_mask: torch.Tensor,
        atype: torch.Tensor,
        nei_type: torch.Tensor,
        fparam: Optional[torch.Tensor],
        aparam: Optional[torch.Tensor],
        create_graph: bool,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Atomic energies (nf x nloc) and g = dE/drij (nf x nloc x nnei x 3)."""
        if not rij.requires_grad:
            rij.requires_grad_(True)
        atom_energy = self.atomic_energy(rij, nei_mask, atype, nei_type, fparam, aparam)
        grads = torch.autograd.grad([atom_energy.sum()], [rij], create_graph=create_graph, allow_unused=True)
        pair_grad = grads[0]
        if pair_grad is None:
            pair_grad = torch.zeros_like(rij)
        return atom_energy, pair_grad

    # ----------------------------------------------------------- MD engines
    def forward_lower(
        self,
        extended_coord: torch.Tensor,
        extended_atype: torch.Tensor,
        nlist: torch.Tensor,
        mapping: Optional[torch.Tensor] = None,
        fparam: Optional[torch.Tensor] = None,
        aparam: Optional[torch.Tensor] = None,
        do_atomic_virial: bool = False,
    ) -> Dict[str, torch.Tensor]:
        """extended_coord: nf x nall x 3 (Angstrom, local atoms first); extended_atype: nf x nall (-1: virtual);
        nlist: nf x nloc x nnei_any indices into the extended atoms, any order and width, -1 padding anywhere,
        neighbors beyond rcut allowed (formatted here as DeePMD-kit's ``format_nlist``, spec 3.2);
        mapping: nf x nall local atom of each extended atom, or None (only orders equidistant neighbors);
        fparam: nf x numb_fparam; aparam: nf x nloc x numb_aparam.

        Returns energy (nf x 1), atom_energy (nf x nloc x 1), extended_force (nf x nall x 3),
        virial (nf x 9) and, with do_atomic_virial, extended_virial (nf x nall x 9); eV, eV/Angstrom, eV.
        Input it cannot treat right raises EngineInputError.
        """
        nall = extended_coord.shape[1]
        extended_atype = self._engine_atom_types(extended_atype, aparam, mapping, nlist.shape[1])
        rij, nlist, atype, nei_type = self.engine_pairs(extended_coord, extended_atype, nlist, mapping, fparam, aparam)
        atom_energy, pair_grad = self._energy_and_pair_gradient(
            rij, nlist >= 0, atype, nei_type, fparam, aparam, False
        )
        atom_energy = atom_energy.detach()
        rij = rij.detach()
        out: Dict[str, torch.Tensor] = {
            "energy": atom_energy.sum(dim=1, keepdim=True),
            "atom_energy": atom_energy.unsqueeze(-1),
            "extended_force": forces_from_pair_gradient(pair_grad, nlist, nall),
            "virial": virial_from_pair_gradient(pair_grad, rij),
        }
        if do_atomic_virial:
            out["extended_virial"] = atomic_virial_from_pair_gradient(pair_grad, rij, nlist, nall)
        return out

    def _engine_atom_types(
        self, extended_atype: torch.Tensor, aparam: Optional[torch.Tensor], mapping: Optional[torch.Tensor], nloc: int
    ) -> torch.Tensor:
        """extended_atype (nf x nall) with the fitting's aparam mask (use_aparam_as_mask) applied: a local atom
        with aparam 0 is virtual (-1), and so are its ghost images (found through mapping)."""
        if not self.fitting.use_aparam_as_mask:
            return extended_atype
        if aparam is None:
            raise EngineInputError("this model reads the real/virtual atom mask from aparam (use_aparam_as_mask); "
                                   "give aparam, nf x nloc x 1")
        local = self.fitting.atom_types(extended_atype[:, :nloc].to(torch.int64), aparam)
        if extended_atype.shape[1] == nloc:
            return local
        if mapping is None:
            raise EngineInputError("with use_aparam_as_mask, ghost atoms take the mask of their local atom: give mapping")
        real = torch.gather(local >= 0, 1, mapping.to(torch.int64))
        return torch.where(real, extended_atype.to(torch.int64), -torch.ones_like(local[:, :1]))

    # --------------------------------------------------------------- Python
    @torch.jit.unused
    def forward(
        self,
        coord: torch.Tensor,
        atype: torch.Tensor,
        box: Optional[torch.Tensor] = None,
        fparam: Optional[torch.Tensor] = None,
        aparam: Optional[torch.Tensor] = None,
        do_atomic_virial: bool = False,
        create_graph: bool = False,
        chunk_atoms: int = 0,
        neighbors: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> Dict[str, torch.Tensor]:
        """coord: nf x N x 3 (Angstrom); atype: nf x N or N; box: nf x 3 x 3 (rows a, b, c) or None.

        Returns energy (nf), atom_energy (nf x N), force (nf x N x 3), virial (nf x 9) and, with
        do_atomic_virial, atom_virial (nf x N x 9); eV, eV/Angstrom, eV. ``create_graph`` keeps the
        graph for force training. ``chunk_atoms`` > 0 evaluates centers in chunks to bound memory.
        ``neighbors`` = (index, cell shift) as from ``local_neighbor_slots`` skips the neighbor search.
        """
        coord, atype, box = self.frames(coord, atype, box, aparam)
        nf, natoms = coord.shape[0], coord.shape[1]
        parts: Dict[str, List[torch.Tensor]] = {keys.ATOM_ENERGY: [], keys.FORCE: [], keys.VIRIAL: [],
                                                 keys.ATOM_VIRIAL: []}
        chunk = 0 if create_graph else chunk_atoms
        for rows, nlist, rij, nei_type in self.chunked_pairs(coord, atype, box, chunk, neighbors):
            chunk_aparam = None if aparam is None else aparam.reshape(nf, natoms, -1)[:, rows]
            energy, pair_grad = self._energy_and_pair_gradient(
                rij, nlist >= 0, atype[:, rows], nei_type, fparam, chunk_aparam, create_graph
            )
            rij = rij.detach()
            parts[keys.ATOM_ENERGY].append(energy if create_graph else energy.detach())
            parts[keys.FORCE].append(forces_from_pair_gradient(pair_grad, nlist, natoms, rows.start))
            parts[keys.VIRIAL].append(virial_from_pair_gradient(pair_grad, rij))
            if do_atomic_virial:
                parts[keys.ATOM_VIRIAL].append(atomic_virial_from_pair_gradient(pair_grad, rij, nlist, natoms))
        all_energy = torch.cat(parts[keys.ATOM_ENERGY], dim=1)
        out = {keys.ENERGY: all_energy.sum(dim=1), keys.ATOM_ENERGY: all_energy}
        for name in (keys.FORCE, keys.VIRIAL, keys.ATOM_VIRIAL):
            if parts[name]:  # chunks add up; a single chunk needs no sum
                out[name] = parts[name][0] if len(parts[name]) == 1 else torch.stack(parts[name]).sum(dim=0)
        return out

    @torch.jit.unused
    def compute_output_bias(self, batches: List[Dict]) -> None:
        """out_bias/out_std from the energy labels of sampled numpy batches (spec 3.11)."""
        from deeppot.model.statistics import compute_output_bias

        compute_output_bias(self, batches, self.fitting.rcond)

    @classmethod
    def deserialize(cls, data: dict) -> "EnergyModel":
        fitting_type = data["fitting"].get("type", "ener")
        if fitting_type != "ener":
            raise ValueError(f"fitting {fitting_type!r} is not an energy fitting; load the dict with "
                             "deeppot.model.deserialize_model")
        return cls.from_parts(data, deserialize_descriptor(data["descriptor"]), EnergyFitting.deserialize(data["fitting"]))
