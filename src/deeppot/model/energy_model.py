"""Energy model = descriptor + energy fitting + per-type output bias (spec 3.10-3.12).

Two entry points, as in DeePMD-kit:
- ``forward(coord, atype, box)`` builds its own neighbor list (vesin cell list) and is used by
  Python, ASE and training;
- ``forward_lower(extended_coord, extended_atype, nlist, mapping)`` takes ghost atoms and a neighbor
  list from an MD engine; it is TorchScript-compatible and is what ``deeppot freeze`` exports.
Forces and virials come from the autograd gradient of the energy with respect to the pair vectors.
"""

from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from deeppot import keys
from deeppot.errors import DataError
from deeppot.descriptor import Descriptor, deserialize_descriptor
from deeppot.descriptor.base import excluded_pair_table
from deeppot.fitting.energy import EnergyFitting
from deeppot.model.pairs import (
    atomic_virial_from_pair_gradient,
    forces_from_pair_gradient,
    gather_pair_vectors,
    local_neighbor_slots,
    neighbor_types,
    shift_vectors,
    virial_from_pair_gradient,
)
from deeppot.model.nlist_format import EngineInputError, format_engine_nlist


class EnergyModel(nn.Module):
    def __init__(
        self,
        descriptor: Descriptor,
        fitting: EnergyFitting,
        type_map: List[str],
        atom_exclude_types: Optional[List[int]] = None,
        pair_exclude_types: Optional[List[Tuple[int, int]]] = None,
        preset_out_bias: Optional[Dict[str, List[Optional[float]]]] = None,
    ):
        super().__init__()
        self.descriptor = descriptor
        self.fitting = fitting
        self.type_map = list(type_map)
        self.ntypes = len(type_map)
        self.rcut = descriptor.rcut
        self.sel = list(descriptor.sel)
        self.mixed_types = bool(descriptor.mixed_types)  # slot layout: one block of any type (spec 3.2)
        self.atom_exclude_types = [int(t) for t in (atom_exclude_types or [])]
        self.pair_exclude_types = [tuple(int(t) for t in p) for p in (pair_exclude_types or [])]
        self.has_pair_exclude = len(self.pair_exclude_types) > 0
        self.preset_out_bias = preset_out_bias
        self.min_nbor_dist = -1.0  # Angstrom; set by training's neighbor statistics, needed by compress
        self.register_buffer("out_bias", torch.zeros(1, self.ntypes, 1, dtype=torch.float64))
        self.register_buffer("out_std", torch.ones(1, self.ntypes, 1, dtype=torch.float64))
        atom_keep = torch.ones(self.ntypes, dtype=torch.float64)
        for t in self.atom_exclude_types:
            atom_keep[t] = 0.0
        self.register_buffer("atom_keep", atom_keep, persistent=False)
        # ntypes x ntypes: False for a (center type, neighbor type) pair in pair_exclude_types
        self.register_buffer("pair_keep", ~excluded_pair_table(self.ntypes, self.pair_exclude_types), persistent=False)

    # ------------------------------------------------------------------ core
    def atomic_energy(
        self,
        rij: torch.Tensor,
        nei_mask: torch.Tensor,
        atype: torch.Tensor,
        nei_type: torch.Tensor,
        fparam: Optional[torch.Tensor] = None,
        aparam: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Atomic energies nf x nloc (eV, float64) from pair vectors rij (nf x nloc x nnei x 3), slot mask
        nei_mask (nf x nloc x nnei), center types atype (nf x nloc) and neighbor types nei_type (nf x nloc x nnei,
        -1 for padding; see :func:`deeppot.model.pairs.neighbor_types`).

        Type -1 marks a virtual (padding) atom: it has no neighbors and zero energy.
        """
        nei_mask, nei_type, atype, real = self.slot_mask(nei_mask, atype, nei_type)
        descriptor = self.descriptor(rij, nei_mask, atype, nei_type)
        energy = self.fitting(descriptor, atype, fparam, aparam).to(torch.float64)
        energy = energy + self.out_bias[0, :, 0][atype]
        return energy * self.atom_keep[atype] * real.to(torch.float64)

    def slot_mask(
        self, nei_mask: torch.Tensor, atype: torch.Tensor, nei_type: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The slots the descriptor sees: no neighbors for virtual centers (type -1), model-level
        pair_exclude_types removed. Returns (mask, neighbor types with -1 where the mask is False,
        center types with -1 read as 0, real-center mask)."""
        real = atype >= 0
        atype = atype.clamp(min=0)
        nei_mask = nei_mask & real.unsqueeze(-1) & (nei_type >= 0)
        if self.has_pair_exclude:
            nei_mask = nei_mask & self.pair_keep[atype.unsqueeze(-1), nei_type.clamp(min=0)]
        return nei_mask, torch.where(nei_mask, nei_type, -1), atype, real

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
        nf, nall = extended_coord.shape[0], extended_coord.shape[1]
        coord = extended_coord.to(torch.float64).detach()
        extended_atype = self._engine_atom_types(extended_atype, aparam, mapping, nlist.shape[1])
        nlist = format_engine_nlist(
            coord, extended_atype, nlist, mapping, self.rcut, self.sel, self.ntypes, self.mixed_types
        )
        nloc = nlist.shape[1]
        self._check_params(nf, nloc, fparam, aparam)
        zero_shift = torch.zeros(nf, nloc, nlist.shape[2], 3, dtype=coord.dtype, device=coord.device)
        rij = gather_pair_vectors(coord, nlist, zero_shift).detach()
        atype = extended_atype[:, :nloc].to(torch.int64)
        nei_type = neighbor_types(extended_atype, nlist)
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

    def _check_params(self, nf: int, nloc: int, fparam: Optional[torch.Tensor], aparam: Optional[torch.Tensor]) -> None:
        """fparam (nf x numb_fparam) and aparam (nf x nloc x numb_aparam) present exactly when the model uses them."""
        names = ["fparam", "aparam"]
        given = [fparam, aparam]
        dims = [self.fitting.numb_fparam, self.fitting.numb_aparam]
        sizes = [nf * dims[0], nf * nloc * dims[1]]
        shapes = [str([nf, dims[0]]), str([nf, nloc, dims[1]])]
        for k in range(2):
            value = given[k]
            if value is None:
                if dims[k] > 0:
                    raise EngineInputError("this model needs " + names[k] + " (" + shapes[k] + "); none was given")
            elif dims[k] == 0:
                raise EngineInputError("this model takes no " + names[k] + " (its dim_" + names[k] + " is 0); pass None")
            elif value.numel() != sizes[k]:
                raise EngineInputError(
                    names[k] + " must hold " + shapes[k] + " values, got shape " + str(list(value.shape))
                )

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
        coord = coord.to(torch.float64).detach()
        nf, natoms = coord.shape[0], coord.shape[1]
        atype = atype.reshape(-1, natoms).expand(nf, natoms)
        atype = self.fitting.atom_types(atype, aparam)  # use_aparam_as_mask: atoms with aparam 0 become virtual
        if box is not None and not self.descriptor.periodic:
            raise DataError(f"descriptor {self.descriptor.type_name} has no cut-off and treats every frame as an "
                            "isolated cluster: give frames without a cell (a nopbc file in the system folder, "
                            "box None, pbc=False in ASE)")
        box = None if box is None else box.to(torch.float64).reshape(nf, 3, 3)
        index, shift = self.neighbor_slots(coord, atype, box, neighbors)
        chunk = natoms if chunk_atoms <= 0 or create_graph else chunk_atoms
        parts: Dict[str, List[torch.Tensor]] = {keys.ATOM_ENERGY: [], keys.FORCE: [], keys.VIRIAL: [],
                                                 keys.ATOM_VIRIAL: []}
        for start in range(0, natoms, chunk):
            rows = slice(start, min(start + chunk, natoms))
            nlist = index[:, rows]
            rij = gather_pair_vectors(coord, nlist, shift[:, rows], start)
            chunk_aparam = None if aparam is None else aparam.reshape(nf, natoms, -1)[:, rows]
            energy, pair_grad = self._energy_and_pair_gradient(
                rij, nlist >= 0, atype[:, rows], neighbor_types(atype, nlist), fparam, chunk_aparam, create_graph
            )
            rij = rij.detach()
            parts[keys.ATOM_ENERGY].append(energy if create_graph else energy.detach())
            parts[keys.FORCE].append(forces_from_pair_gradient(pair_grad, nlist, natoms, start))
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
    def neighbor_slots(
        self,
        coord: torch.Tensor,
        atype: torch.Tensor,
        box: Optional[torch.Tensor],
        neighbors: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Slot indices (nf x N x nnei, -1 padding) and cartesian image shifts (nf x N x nnei x 3, Angstrom)
        of frames coord (nf x N x 3), atype (nf x N), box (nf x 3 x 3 or None). ``neighbors`` = (index,
        integer cell shift) as from ``local_neighbor_slots`` skips the neighbor search."""
        if neighbors is None:
            index_np, shift_np = local_neighbor_slots(
                coord.detach().cpu().numpy(), None if box is None else box.detach().cpu().numpy(),
                atype.cpu().numpy(), self.rcut, self.sel, self.mixed_types,
            )
            neighbors = (torch.from_numpy(index_np), torch.from_numpy(shift_np))
        index = neighbors[0].to(device=coord.device, dtype=torch.long)
        return index, shift_vectors(neighbors[1].to(coord.device), box)

    @torch.jit.unused
    def compute_output_bias(self, batches: List[Dict]) -> None:
        """out_bias/out_std from the energy labels of sampled numpy batches (spec 3.11)."""
        from deeppot.model.statistics import compute_output_bias

        compute_output_bias(self, batches, self.fitting.rcond)

    # -------------------------------------------------------- serialization
    @torch.jit.unused
    def serialize(self) -> dict:
        """DeePMD-kit's backend-independent model dict (spec section 5)."""
        return {
            "@class": "Model",
            "type": "standard",
            "@version": 2,
            "type_map": list(self.type_map),
            "atom_exclude_types": list(self.atom_exclude_types),
            "pair_exclude_types": [list(p) for p in self.pair_exclude_types],
            "rcond": self.fitting.rcond,
            "preset_out_bias": self.preset_out_bias,
            "@variables": {
                "out_bias": self.out_bias.detach().cpu().numpy().copy(),
                "out_std": self.out_std.detach().cpu().numpy().copy(),
            },
            "descriptor": self.descriptor.serialize(),
            "fitting": self.fitting.serialize(),
        }

    @classmethod
    def deserialize(cls, data: dict) -> "EnergyModel":
        if data.get("type", "standard") != "standard":
            raise ValueError(f"model type {data.get('type')!r} is not supported")
        fitting_type = data["fitting"].get("type", "ener")
        if fitting_type != "ener":
            raise ValueError(f"fitting {fitting_type!r} is not supported yet")
        model = cls(
            deserialize_descriptor(data["descriptor"]),
            EnergyFitting.deserialize(data["fitting"]),
            data["type_map"],
            data.get("atom_exclude_types", []),
            data.get("pair_exclude_types", []),
            data.get("preset_out_bias"),
        )
        with torch.no_grad():
            model.out_bias.copy_(torch.as_tensor(np.asarray(data["@variables"]["out_bias"])))
            model.out_std.copy_(torch.as_tensor(np.asarray(data["@variables"]["out_std"])))
        return model
