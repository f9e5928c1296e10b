"""What every fitting shares (spec 3.10): the network input, one FittingNet per center type (or one for all
with a mixed-type descriptor), a per-type output bias, fparam/aparam normalisation and DeePMD-kit's dict.

Input of atom i: ``x_i = [D_i, (fparam - fparam_avg) * fparam_inv_std, (aparam_i - aparam_avg) * aparam_inv_std]``;
network output ``o_i = net_{t_i}(x_i) + bias_atom_e[t_i]`` (nf x nloc x ``net_dim_out``). Each fitting turns
``o_i`` into its quantity (an atomic energy, a dipole, a polarizability).

``use_aparam_as_mask`` (DeePMD-kit's key, for se_a_mask): aparam (one column) is not a network input but the
real/virtual mask of the atoms: :meth:`GeneralFitting.atom_types` makes atoms with aparam 0 virtual (type -1),
which the model then treats as absent (no neighbors, not a neighbor, zero output).
"""

from typing import Dict, List, Optional

import numpy as np
import torch
from torch import nn

from deeppot.nn.mlp import FittingNet, NetworkCollection
from deeppot.nn.precision import precision_name, resolve_dtype


class GeneralFitting(nn.Module):
    """Per-type fitting networks of output width ``net_dim_out``; subclasses name the quantity."""

    type_name = ""  # DeePMD-kit's fitting type ("ener", "dipole", "polar")
    var_name = ""  # DeePMD-kit's output variable name ("energy", "dipole", "polar")
    serial_version = 4  # @version of DeePMD-kit's fitting dict of this type

    def __init__(
        self,
        ntypes: int,
        dim_descrpt: int,
        net_dim_out: int,
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
        exclude_types: Optional[List[int]] = None,
        use_aparam_as_mask: bool = False,
    ):
        super().__init__()
        self.ntypes = int(ntypes)
        self.dim_descrpt = int(dim_descrpt)
        self.net_dim_out = int(net_dim_out)
        self.neuron = list(neuron)
        self.resnet_dt = bool(resnet_dt)
        self.numb_fparam = int(numb_fparam)
        self.numb_aparam = int(numb_aparam)
        self.activation_function = activation_function
        self.rcond = rcond
        self.mixed_types = bool(mixed_types)
        self.use_aparam_as_mask = bool(use_aparam_as_mask)
        self.exclude_types = [int(t) for t in (exclude_types or [])]  # kept for the dict; the model zeroes them
        self.trainable = list(trainable) if trainable is not None else [True] * (len(neuron) + 1)
        self.dtype = resolve_dtype(precision)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        in_dim = self.dim_descrpt + self.numb_fparam + (0 if self.use_aparam_as_mask else self.numb_aparam)
        self.nets = nn.ModuleList(
            FittingNet(in_dim, self.net_dim_out, self.neuron, activation_function, self.resnet_dt, self.dtype,
                       generator, self.trainable)
            for _ in range(1 if self.mixed_types else self.ntypes)
        )
        self.register_buffer("bias_atom_e", torch.zeros(self.ntypes, self.net_dim_out, dtype=self.dtype))
        self.register_buffer("fparam_avg", torch.zeros(self.numb_fparam, dtype=self.dtype))
        self.register_buffer("fparam_inv_std", torch.ones(self.numb_fparam, dtype=self.dtype))
        self.register_buffer("aparam_avg", torch.zeros(self.numb_aparam, dtype=self.dtype))
        self.register_buffer("aparam_inv_std", torch.ones(self.numb_aparam, dtype=self.dtype))

    def network_output(
        self,
        descriptor: torch.Tensor,
        atype: torch.Tensor,
        fparam: Optional[torch.Tensor] = None,
        aparam: Optional[torch.Tensor] = None,
        type_counts: Optional[List[int]] = None,
    ) -> torch.Tensor:
        """descriptor: nf x nloc x dim_descrpt; atype: nf x nloc (>= 0); fparam: nf x numb_fparam;
        aparam: nf x nloc x numb_aparam. Returns o = net_t(x) + bias_atom_e[t], nf x nloc x net_dim_out,
        in the fitting dtype.

        type_counts: if every frame's atoms are sorted by type (as training data are loaded), the number of atoms of
        each type (:func:`deeppot.model.pairs.sorted_type_counts`). Each type's net then runs on its contiguous slice
        of the atoms instead of on the rows gathered by type and scattered back: the same values, and the compiled
        training step's gradient needs no serial scatter kernel."""
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
        bias = self.bias_atom_e[flat_type]  # nf*nloc x net_dim_out
        if self.mixed_types:
            out = self.nets[0](x) + bias
        elif type_counts is not None:
            per_frame = x.reshape(nf, nloc, x.shape[-1])
            per_type: List[torch.Tensor] = []
            start = 0
            for t, net in enumerate(self.nets):
                if type_counts[t] > 0:
                    rows = per_frame.narrow(1, start, type_counts[t]).reshape(nf * type_counts[t], -1)
                    per_type.append(net(rows).reshape(nf, type_counts[t], self.net_dim_out))
                start += type_counts[t]
            out = torch.cat(per_type, dim=1).reshape(nf * nloc, self.net_dim_out) + bias
        else:
            out = torch.zeros(nf * nloc, self.net_dim_out, dtype=self.dtype, device=x.device)
            for t, net in enumerate(self.nets):
                rows = torch.nonzero(flat_type == t).squeeze(-1)
                out = out.index_add(0, rows, net(x.index_select(0, rows)))
            out = out + bias
        return out.reshape(nf, nloc, self.net_dim_out)

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

    # ---------------------------------------------------------- serialization
    @torch.jit.unused
    def serialize(self) -> Dict:
        """DeePMD-kit's fitting dict (spec section 5); subclasses add their keys."""

        def arr(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().numpy().copy()

        return {
            "@class": "Fitting",
            "@version": self.serial_version,
            "type": self.type_name,
            "var_name": self.var_name,
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
            "exclude_types": list(self.exclude_types),
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
        }

    @staticmethod
    @torch.jit.unused
    def common_arguments(data: Dict) -> Dict:
        """Constructor arguments every fitting reads from a DeePMD-kit dict; refuses what deeppot lacks."""
        if data.get("dim_case_embd", 0) or data.get("default_fparam") is not None:
            raise ValueError("case embeddings and default_fparam are not supported yet")
        trainable = data.get("trainable", True)
        return dict(
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
            exclude_types=data.get("exclude_types", []),
            use_aparam_as_mask=data.get("use_aparam_as_mask", False),
        )

    @torch.jit.unused
    def load_variables(self, data: Dict) -> None:
        """The networks, bias_atom_e and fparam/aparam statistics of a DeePMD-kit fitting dict."""
        self.nets = nn.ModuleList(NetworkCollection.deserialize(data["nets"], self.dtype))
        variables = data["@variables"]
        with torch.no_grad():
            self.bias_atom_e.copy_(torch.as_tensor(np.asarray(variables["bias_atom_e"])).reshape(self.bias_atom_e.shape))
            for name in ("fparam_avg", "fparam_inv_std", "aparam_avg", "aparam_inv_std"):
                if variables.get(name) is not None and getattr(self, name).numel() > 0:
                    getattr(self, name).copy_(torch.as_tensor(np.asarray(variables[name])))
