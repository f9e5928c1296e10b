"""Energy fitting net (spec section 3.10): atomic energies in eV, ``E_i = net_{t_i}(x_i) + bias_atom_e[t_i]``
with one output per atom; one FittingNet per center type, or one shared by all types with ``mixed_types`` (as for
mixed-type descriptors such as se_atten). Input, nets, ``use_aparam_as_mask`` and the dict:
:class:`deeppot.fitting.base.GeneralFitting`.
"""

from typing import List, Optional

import torch

from deeppot.fitting.base import GeneralFitting


class EnergyFitting(GeneralFitting):
    type_name = "ener"
    var_name = "energy"
    serial_version = 4

    def __init__(self, ntypes: int, dim_descrpt: int, neuron: List[int], **options):
        """``options`` are :class:`GeneralFitting`'s (resnet_dt, numb_fparam, ..., use_aparam_as_mask)."""
        super().__init__(ntypes, dim_descrpt, 1, neuron, **options)

    def forward(
        self,
        descriptor: torch.Tensor,
        atype: torch.Tensor,
        fparam: Optional[torch.Tensor] = None,
        aparam: Optional[torch.Tensor] = None,
        type_counts: Optional[List[int]] = None,
    ) -> torch.Tensor:
        """descriptor: nf x nloc x dim_descrpt; atype: nf x nloc; fparam: nf x numb_fparam;
        aparam: nf x nloc x numb_aparam; type_counts: see :meth:`GeneralFitting.network_output`. Returns atomic
        energies nf x nloc (eV), in the fitting dtype."""
        return self.network_output(descriptor, atype, fparam, aparam, type_counts).squeeze(-1)

    @torch.jit.unused
    def serialize(self) -> dict:
        data = super().serialize()
        data.update(dim_out=1, atom_ener=None)
        return data

    @classmethod
    def deserialize(cls, data: dict) -> "EnergyFitting":
        if data.get("atom_ener"):
            raise ValueError("atom_ener is not supported yet")
        fitting = cls(**cls.common_arguments(data))
        fitting.load_variables(data)
        return fitting
