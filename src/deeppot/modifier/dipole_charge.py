"""DPLR's long-range term (DeePMD-kit's ``dipole_charge`` modifier).

Every atom carries the charge ``sys_charge_map[type]`` (e, ions); every atom of a type the dipole model
selects (its ``get_sel_type()``) also carries a Wannier centroid (WC) of charge
``model_charge_map[k]`` (k: the type's place in ``get_sel_type()``) at  atom position + predicted atomic
dipole (Angstrom). The term is the reciprocal-space Ewald energy of all these charges
(:mod:`deeppot.modifier.ewald`); forces and virial are its autograd derivatives, through the dipole model
too (a WC moves with its atom's environment).
"""

from typing import Dict, List, Optional

import torch

from deeppot import keys
from deeppot.errors import DataError
from deeppot.model.pairs import gather_pair_vectors, local_neighbor_slots, neighbor_types, shift_vectors
from deeppot.model.tensor_model import DipoleModel
from deeppot.modifier.base import Modifier
from deeppot.modifier.ewald import ewald_grid, reciprocal_energy


class DipoleChargeModifier(Modifier):
    """Reciprocal Ewald energy of ions (``sys_charge_map``, per type) and Wannier centroids (``model_charge_map``,
    per selected type of ``dipole_model``); ``ewald_h`` grid spacing (Angstrom), ``ewald_beta`` (Angstrom^-1).
    ``model_name`` is where the dipole model came from (kept for DeePMD-kit's dict; the model travels inside)."""

    type_name = "dipole_charge"

    def __init__(self, dipole_model: DipoleModel, model_charge_map: List[float], sys_charge_map: List[float],
                 ewald_h: float = 1.0, ewald_beta: float = 0.4, model_name: str = ""):
        super().__init__()
        self.dipole_model = dipole_model.eval()
        self.model_name = str(model_name)
        self.model_charge_map = [float(q) for q in model_charge_map]
        self.sys_charge_map = [float(q) for q in sys_charge_map]
        self.ewald_h = float(ewald_h)
        self.ewald_beta = float(ewald_beta)
        self.sel_type = list(dipole_model.get_sel_type())
        problems = charge_map_problems(dipole_model, self.model_charge_map, self.sys_charge_map)
        if problems:
            raise ValueError("; ".join(problems))
        ntypes = dipole_model.ntypes
        wc_charge = torch.zeros(ntypes, dtype=torch.float64)
        for k, t in enumerate(self.sel_type):
            wc_charge[t] = self.model_charge_map[k]
        self.register_buffer("ion_charge", torch.tensor(self.sys_charge_map, dtype=torch.float64), persistent=False)
        self.register_buffer("wc_charge", wc_charge, persistent=False)  # ntypes: 0 for types without a WC
        for p in self.dipole_model.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> "DipoleChargeModifier":
        """The dipole model stays frozen (eval mode) whatever the mode."""
        super().train(mode)
        self.dipole_model.eval()
        return self

    def charge_sites(self, coord: torch.Tensor, atype: torch.Tensor, box: torch.Tensor):
        """Positions (nf x 2N x 3: the atoms, then one WC slot per atom) and charges (nf x 2N) of frames coord
        (nf x N x 3), atype (nf x N, -1 virtual), box (nf x 3 x 3); a slot without a WC has charge 0.
        Differentiable in coord and box (through the dipole model)."""
        index, cell_shift = local_neighbor_slots(
            coord.detach().numpy(), box.detach().numpy(), atype.numpy(), self.dipole_model.rcut,
            self.dipole_model.sel, self.dipole_model.mixed_types,
        )
        nlist = torch.from_numpy(index)
        rij = gather_pair_vectors(coord, nlist, shift_vectors(torch.from_numpy(cell_shift), box))
        dipole = self.dipole_model.atomic_tensor(rij, nlist >= 0, atype, neighbor_types(atype, nlist))  # nf x N x 3
        real = atype >= 0
        safe = atype.clamp(min=0)
        ion = torch.where(real, self.ion_charge[safe], torch.zeros_like(coord[..., 0]))
        wc = torch.where(real, self.wc_charge[safe], torch.zeros_like(coord[..., 0]))
        return torch.cat([coord, coord + dipole], dim=1), torch.cat([ion, wc], dim=1)

    def forward(self, coord: torch.Tensor, atype: torch.Tensor, box: Optional[torch.Tensor]) -> Dict[str, torch.Tensor]:
        if box is None:
            raise DataError("the dipole_charge modifier (DPLR) needs a periodic cell; give a box")
        coord = coord.detach().to(torch.float64)
        nf, natoms = coord.shape[0], coord.shape[1]
        atype = atype.reshape(-1, natoms).expand(nf, natoms).to(torch.int64)
        box = box.detach().to(torch.float64).reshape(nf, 3, 3)
        grids = [ewald_grid(cell, self.ewald_h) for cell in box.numpy()]
        with torch.enable_grad():
            coord = coord.clone().requires_grad_(True)
            strain = torch.zeros(nf, 3, 3, dtype=torch.float64, requires_grad=True)
            deform = torch.eye(3, dtype=torch.float64) + strain
            positions, charges = self.charge_sites(coord @ deform, atype, box @ deform)
            energy = reciprocal_energy(positions, charges, box @ deform, grids, self.ewald_beta)
            grad_coord, grad_strain = torch.autograd.grad(energy.sum(), [coord, strain])
        return {
            keys.ENERGY: energy.detach(),
            keys.FORCE: -grad_coord,
            keys.VIRIAL: -grad_strain.transpose(1, 2).reshape(nf, 9),  # W[a*3+b] = sum_j F_j[a] r_j[b]
        }

    def serialize(self) -> dict:
        """DeePMD-kit's modifier dict (``@class`` Modifier, ``type`` dipole_charge) plus the dipole model's dict."""
        return {
            "@class": "Modifier",
            "type": self.type_name,
            "@version": 3,
            "model_name": self.model_name,
            "model_charge_map": list(self.model_charge_map),
            "sys_charge_map": list(self.sys_charge_map),
            "ewald_h": self.ewald_h,
            "ewald_beta": self.ewald_beta,
            "dipole_model": self.dipole_model.serialize(),
        }

    @classmethod
    def deserialize(cls, data: dict) -> "DipoleChargeModifier":
        dipole = DipoleModel.deserialize(data["dipole_model"])
        return cls(dipole, data["model_charge_map"], data["sys_charge_map"], data["ewald_h"], data["ewald_beta"],
                   data.get("model_name", ""))


def charge_map_problems(dipole_model, model_charge_map: List[float], sys_charge_map: List[float]) -> List[str]:
    """What is wrong with the charge maps for ``dipole_model`` (empty if nothing): one model charge per type of its
    sel_type, one system charge per type of its type_map."""
    problems = []
    sel_type = list(dipole_model.get_sel_type())
    names = [dipole_model.type_map[t] for t in sel_type]
    if len(model_charge_map) != len(sel_type):
        problems.append(f"model_charge_map has {len(model_charge_map)} entries but the dipole model places Wannier "
                        f"centroids on {len(sel_type)} type(s) {names} (its sel_type {sel_type}); give one charge "
                        "per selected type, in that order")
    if len(sys_charge_map) != dipole_model.ntypes:
        problems.append(f"sys_charge_map has {len(sys_charge_map)} entries but type_map {dipole_model.type_map} has "
                        f"{dipole_model.ntypes} types; give one ion charge per type")
    return problems

