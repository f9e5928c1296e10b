"""Energy fitting net (spec section 3.10): one FittingNet per center type (one shared by all types with
``mixed_types``, as for mixed-type descriptors such as se_atten), atomic energies in eV.

Input of atom i: ``[D_i, (fparam - fparam_avg) * fparam_inv_std, (aparam_i - aparam_avg) * aparam_inv_std]``.
Output: ``E_i = net_{t_i}(x_i) + bias_atom_e[t_i]``.

``use_aparam_as_mask`` (DeePMD-kit's key, for se_a_mask): aparam (one column) is not a network input but the
real/virtual mask of the atoms: :meth:`EnergyFitting.atom_types` makes atoms with aparam 0 virtual (type -1),
which the model then treats as absent (no neighbors, not a neighbor, zero energy and force).
"""

from typing import List, Optional

import numpy as np
import torch
from torch import nn

from deeppot.nn.mlp import FittingNet, NetworkCollection
from deeppot.nn.precision import precision_name, resolve_dtype


class EnergyFitting(nn.Module):
    def __init__(
        self,
        ntypes: int,
        dim_descrpt: int,
        neuron: List[int],
        resnet_dt: bool = True,
        numb_fparam: int = 0,
        numb_aparam: int = 0,
        activation_function: str = "tanh",
        precision: str = "float64",
        trainable: Optional[List[bool]] = None,
        rcond: Optional[float] = None,
        seed: Optional[int] = None,
        mixed_types: bool = False,
        use_aparam_as_mask: bool = False,
    ):
        super().__init__()
        self.ntypes = ntypes
        self.use_aparam_as_mask = bool(use_aparam_as_mask)
        self.mixed_types = bool(mixed_types)
        self.dim_descrpt = dim_descrpt
        self.neuron = list(neuron)
        self.resnet_dt = resnet_dt
        self.numb_fparam = numb_fparam
        self.numb_aparam = numb_aparam
        self.activation_function = activation_function
        self.rcond = rcond
        self.trainable = list(trainable) if trainable is not None else [True] * (len(neuron) + 1)
        self.dtype = resolve_dtype(precision)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        in_dim = dim_descrpt + numb_fparam + (0 if self.use_aparam_as_mask else numb_aparam)
        self.nets = nn.ModuleList(
            FittingNet(in_dim, 1, self.neuron, activation_function, resnet_dt, self.dtype, generator, self.trainable)
            for _ in range(1 if self.mixed_types else ntypes)
        )
        self.register_buffer("bias_atom_e", torch.zeros(ntypes, 1, dtype=self.dtype))
        self.register_buffer("fparam_avg", torch.zeros(numb_fparam, dtype=self.dtype))
        self.register_buffer("fparam_inv_std", torch.ones(numb_fparam, dtype=self.dtype))
        self.register_buffer("aparam_avg", torch.zeros(numb_aparam, dtype=self.dtype))
        self.register_buffer("aparam_inv_std", torch.ones(numb_aparam, dtype=self.dtype))

    def forward(
        self,
        descriptor: torch.Tensor,
        atype: torch.Tensor,
        fparam: Optional[torch.Tensor] = None,
        aparam: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """descriptor: nf x nloc x dim_descrpt; atype: nf x nloc; fparam: nf x numb_fparam;
        aparam: nf x nloc x numb_aparam. Returns atomic energies nf x nloc (eV), in the fitting dtype."""
        nf, nloc = descriptor.shape[0], descriptor.shape[1]
        parts = [descriptor.to(self.dtype)]
        if self.numb_fparam > 0:
            if fparam is None:
                raise ValueError("this model needs fparam (numb_fparam > 0)")
            fp = (fparam.to(self.dtype).reshape(nf, self.numb_fparam) - self.fparam_avg) * self.fparam_inv_std
            parts.append(fp.unsqueeze(1).expand(nf, nloc, self.numb_fparam))
        if self.numb_aparam > 0 and not self.use_aparam_as_mask:
            if aparam is None:
                raise ValueError("this model needs aparam (numb_aparam > 0)")
            ap = aparam.to(self.dtype).reshape(nf, nloc, self.numb_aparam)
            parts.append((ap - self.aparam_avg) * self.aparam_inv_std)
        x = torch.cat(parts, dim=-1).reshape(nf * nloc, -1)
        flat_type = atype.reshape(-1)
        if self.mixed_types:
            return (self.nets[0](x).squeeze(-1) + self.bias_atom_e[flat_type, 0]).reshape(nf, nloc)
        energy = torch.zeros(nf * nloc, dtype=self.dtype, device=x.device)
        for t, net in enumerate(self.nets):
            rows = torch.nonzero(flat_type == t).squeeze(-1)
            energy = energy.index_add(0, rows, net(x.index_select(0, rows)).squeeze(-1) + self.bias_atom_e[t, 0])
        return energy.reshape(nf, nloc)

    def atom_types(self, atype: torch.Tensor, aparam: Optional[torch.Tensor]) -> torch.Tensor:
        """The types the model sees, nf x natoms: with ``use_aparam_as_mask`` an atom whose aparam (nf x natoms x 1,
        truncated to an integer as DeePMD-kit does) is 0 is virtual (-1); otherwise ``atype`` itself."""
        if not self.use_aparam_as_mask:
            return atype
        if aparam is None:
            raise ValueError("this model reads the real (1) / virtual (0) atom mask from aparam "
                             "(use_aparam_as_mask); give aparam, nf x natoms x 1")
        real = aparam.reshape(atype.shape).to(torch.int64) != 0
        return torch.where(real, atype, -torch.ones_like(atype))

    @torch.jit.unused
    def serialize(self) -> dict:
        def arr(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().numpy().copy()

        return {
            "@class": "Fitting",
            "@version": 4,
            "type": "ener",
            "var_name": "energy",
            "ntypes": self.ntypes,
            "dim_descrpt": self.dim_descrpt,
            "neuron": list(self.neuron),
            "resnet_dt": self.resnet_dt,
            "numb_fparam": self.numb_fparam,
            "numb_aparam": self.numb_aparam,
            "dim_case_embd": 0,
            "default_fparam": None,
            "rcond": self.rcond,
            "activation_function": self.activation_function,
            "precision": precision_name(self.dtype),
            "mixed_types": self.mixed_types,
            "exclude_types": [],
            "nets": NetworkCollection.serialize(list(self.nets), 0 if self.mixed_types else 1, self.ntypes,
                                                "fitting_network"),
            "@variables": {
                "bias_atom_e": arr(self.bias_atom_e),
                "case_embd": None,
                "fparam_avg": arr(self.fparam_avg) if self.numb_fparam else None,
                "fparam_inv_std": arr(self.fparam_inv_std) if self.numb_fparam else None,
                "aparam_avg": arr(self.aparam_avg) if self.numb_aparam and not self.use_aparam_as_mask else None,
                "aparam_inv_std": arr(self.aparam_inv_std) if self.numb_aparam and not self.use_aparam_as_mask else None,
            },
            "type_map": None,
            "tot_ener_zero": False,
            "trainable": list(self.trainable),
            "layer_name": None,
            "use_aparam_as_mask": self.use_aparam_as_mask,
            "spin": None,
            "dim_out": 1,
            "atom_ener": None,
        }

    @classmethod
    def deserialize(cls, data: dict) -> "EnergyFitting":
        if data.get("dim_case_embd", 0) or data.get("atom_ener"):
            raise ValueError("case embeddings and atom_ener are not supported yet")
        trainable = data.get("trainable", True)
        fitting = cls(
            ntypes=data["ntypes"],
            dim_descrpt=data["dim_descrpt"],
            neuron=data["neuron"],
            resnet_dt=data["resnet_dt"],
            numb_fparam=data["numb_fparam"],
            numb_aparam=data["numb_aparam"],
            activation_function=data["activation_function"],
            precision=data["precision"],
            trainable=trainable if isinstance(trainable, list) else None,
            rcond=data.get("rcond"),
            mixed_types=data.get("mixed_types", False),
            use_aparam_as_mask=data.get("use_aparam_as_mask", False),
        )
        fitting.nets = nn.ModuleList(NetworkCollection.deserialize(data["nets"], fitting.dtype))
        variables = data["@variables"]
        with torch.no_grad():
            fitting.bias_atom_e.copy_(torch.as_tensor(np.asarray(variables["bias_atom_e"])))
            for name in ("fparam_avg", "fparam_inv_std", "aparam_avg", "aparam_inv_std"):
                if variables.get(name) is not None and getattr(fitting, name).numel() > 0:
                    getattr(fitting, name).copy_(torch.as_tensor(np.asarray(variables[name])))
        return fitting
