"""What every descriptor + fitting model shares: the neighbor slots, exclusions, the per-type output
statistics (``out_bias``/``out_std``, spec 3.10-3.11), fparam/aparam checks and DeePMD-kit's model dict.

Subclasses (:class:`deeppot.model.energy_model.EnergyModel`, :mod:`deeppot.model.tensor_model`) add their
outputs and the two entry points ``forward`` (Python, builds its own neighbor list) and ``forward_lower``
(MD engines, TorchScript).
"""

from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from deeppot.descriptor import Descriptor
from deeppot.descriptor.base import excluded_pair_table
from deeppot.errors import DataError
from deeppot.model.nlist_format import EngineInputError, format_engine_nlist
from deeppot.model.pairs import gather_pair_vectors, local_neighbor_slots, neighbor_types, shift_vectors


class DescriptorFittingModel(nn.Module):
    """Descriptor + fitting on type-blocked (or mixed) neighbor slots. All lengths in Angstrom."""

    output_dim = 1  # width of the per-type output statistics (out_bias: 1 x ntypes x output_dim)
    output_type = "energy"  # what the model predicts, DeePMD-kit's model_output_type(): energy, dipole, polarizability

    def __init__(
        self,
        descriptor: Descriptor,
        fitting: nn.Module,
        type_map: List[str],
        atom_exclude_types: Optional[List[int]] = None,
        pair_exclude_types: Optional[List[Tuple[int, int]]] = None,
        preset_out_bias: Optional[Dict[str, List[Optional[float]]]] = None,
    ):
        super().__init__()
        self.output_dim = int(self.output_dim)  # an instance attribute, as TorchScript reads it
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
        self.register_buffer("out_bias", torch.zeros(1, self.ntypes, self.output_dim, dtype=torch.float64))
        self.register_buffer("out_std", torch.ones(1, self.ntypes, self.output_dim, dtype=torch.float64))
        atom_keep = torch.ones(self.ntypes, dtype=torch.float64)
        for t in self.atom_exclude_types:
            atom_keep[t] = 0.0
        self.register_buffer("atom_keep", atom_keep, persistent=False)
        # ntypes x ntypes: False for a (center type, neighbor type) pair in pair_exclude_types
        self.register_buffer("pair_keep", ~excluded_pair_table(self.ntypes, self.pair_exclude_types), persistent=False)

    def get_sel_type(self) -> List[int]:
        """Types whose atoms contribute (DeePMD-kit: the types not in atom_exclude_types)."""
        return [t for t in range(self.ntypes) if t not in self.atom_exclude_types]

    # ------------------------------------------------------------------ slots
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

    def engine_pairs(
        self,
        extended_coord: torch.Tensor,
        extended_atype: torch.Tensor,
        nlist: torch.Tensor,
        mapping: Optional[torch.Tensor],
        fparam: Optional[torch.Tensor],
        aparam: Optional[torch.Tensor],
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """An MD engine's input (see ``forward_lower``) as (rij nf x nloc x nnei x 3 detached, formatted
        nlist nf x nloc x nnei, center types nf x nloc, neighbor types nf x nloc x nnei)."""
        coord = extended_coord.to(torch.float64).detach()
        nlist = format_engine_nlist(
            coord, extended_atype, nlist, mapping, self.rcut, self.sel, self.ntypes, self.mixed_types
        )
        nf, nloc = nlist.shape[0], nlist.shape[1]
        self._check_params(nf, nloc, fparam, aparam)
        zero_shift = torch.zeros(nf, nloc, nlist.shape[2], 3, dtype=coord.dtype, device=coord.device)
        rij = gather_pair_vectors(coord, nlist, zero_shift).detach()
        atype = extended_atype[:, :nloc].to(torch.int64)
        return rij, nlist, atype, neighbor_types(extended_atype, nlist)

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
    def frames(
        self, coord: torch.Tensor, atype: torch.Tensor, box: Optional[torch.Tensor], aparam: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """The Python entry point's inputs made uniform: coordinates nf x N x 3 (float64, Angstrom), the types the
        model sees nf x N (with use_aparam_as_mask, atoms whose aparam is 0 become virtual, -1) and the box
        nf x 3 x 3 (float64) or None; atype may be given as N or nf x N."""
        coord = coord.to(torch.float64).detach()
        nf, natoms = coord.shape[0], coord.shape[1]
        atype = self.fitting.atom_types(atype.reshape(-1, natoms).expand(nf, natoms), aparam)
        box = None if box is None else box.to(torch.float64).reshape(nf, 3, 3)
        return coord, atype, box

    @torch.jit.unused
    def chunked_pairs(
        self,
        coord: torch.Tensor,
        atype: torch.Tensor,
        box: Optional[torch.Tensor],
        chunk_atoms: int,
        neighbors: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> Iterator[Tuple[slice, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Centers of frames coord (nf x N x 3, float64), atype (nf x N), box (nf x 3 x 3 or None) in chunks of
        ``chunk_atoms`` (all at once if <= 0): yields (rows, nlist nf x nc x nnei local indices, rij
        nf x nc x nnei x 3, neighbor types nf x nc x nnei)."""
        if box is not None and not self.descriptor.periodic:
            raise DataError(f"descriptor {self.descriptor.type_name} has no cut-off and treats every frame as an "
                            "isolated cluster: give frames without a cell (a nopbc file in the system folder, "
                            "box None, pbc=False in ASE)")
        natoms = coord.shape[1]
        index, shift = self.neighbor_slots(coord, atype, box, neighbors)
        chunk = natoms if chunk_atoms <= 0 else chunk_atoms
        for start in range(0, natoms, max(chunk, 1)):
            rows = slice(start, min(start + chunk, natoms))
            nlist = index[:, rows]
            yield rows, nlist, gather_pair_vectors(coord, nlist, shift[:, rows], start), neighbor_types(atype, nlist)

    # ---------------------------------------------------------- serialization
    @torch.jit.unused
    def serialize(self) -> dict:
        """DeePMD-kit's backend-independent model dict (spec section 5); the fitting's type names the model."""
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
    @torch.jit.unused
    def from_parts(cls, data: dict, descriptor: Descriptor, fitting: nn.Module) -> "DescriptorFittingModel":
        """The model of dict ``data`` (spec section 5) around an already deserialized descriptor and fitting."""
        if data.get("type", "standard") != "standard":
            raise ValueError(f"model type {data.get('type')!r} is not supported")
        model = cls(
            descriptor,
            fitting,
            data["type_map"],
            data.get("atom_exclude_types", []),
            data.get("pair_exclude_types", []),
            data.get("preset_out_bias"),
        )
        with torch.no_grad():
            model.out_bias.copy_(torch.as_tensor(np.asarray(data["@variables"]["out_bias"])).reshape(model.out_bias.shape))
            model.out_std.copy_(torch.as_tensor(np.asarray(data["@variables"]["out_std"])).reshape(model.out_std.shape))
        return model
