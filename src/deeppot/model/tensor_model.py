"""Tensor models: descriptor (with its rotation matrix) + dipole or polarizability fitting (spec 3.10).

The atomic tensor of atom i is the fitting's output, rotated back with the descriptor's rotation matrix,
plus the model's output statistics where DeePMD-kit applies them (polar with ``shift_diag``: the mean of
the diagonal of ``out_bias[t]`` times ``scale[t]`` on the diagonal; dipole: none). Atoms of
``atom_exclude_types`` (the types not in DeePMD-kit's ``sel_type``) and virtual atoms (type -1) give zero.
The global tensor is the sum over atoms.

Outputs, with DeePMD-kit's names: ``dipole`` (nf x N x 3) and ``global_dipole`` (nf x 3); ``polar``
(nf x N x 9, row-major 3 x 3) and ``global_polar`` (nf x 9). Units are those of the training labels.
"""

from typing import Dict, Optional, Tuple

import torch

from deeppot import keys
from deeppot.descriptor import DESCRIPTORS, descriptor_class, deserialize_descriptor
from deeppot.errors import ConfigError
from deeppot.fitting.dipole import DipoleFitting
from deeppot.fitting.polar import PolarFitting
from deeppot.model.base import DescriptorFittingModel
from deeppot.model.tensor_statistics import compute_tensor_output_bias


class TensorModel(DescriptorFittingModel):
    """A per-atom tensor of ``output_dim`` components and its sum over atoms."""

    output_name = ""  # DeePMD-kit's output key of the atomic tensor ("dipole", "polar")
    label_name = ""  # the data's global label (keys.DIPOLE, keys.POLARIZABILITY); atomic: "atom_" + label_name
    fitting_class = DipoleFitting

    def __init__(self, *args, **kwargs):
        """The arguments of :class:`DescriptorFittingModel`; the descriptor must have a rotation matrix."""
        super().__init__(*args, **kwargs)
        if not self.descriptor.has_rotation_matrix:
            raise ValueError(f"descriptor '{self.descriptor.type_name}' has no rotation matrix; a {self.output_name} "
                             "fitting needs one (se_e2_a, se_atten, ...)")
        self.output_name = str(self.output_name)  # instance attributes, as TorchScript reads them
        self.label_name = str(self.label_name)

    def atomic_tensor(
        self,
        rij: torch.Tensor,
        nei_mask: torch.Tensor,
        atype: torch.Tensor,
        nei_type: torch.Tensor,
        fparam: Optional[torch.Tensor] = None,
        aparam: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Atomic tensors nf x nloc x output_dim (float64) from pair vectors rij (nf x nloc x nnei x 3,
        Angstrom), slot mask (nf x nloc x nnei), center types (nf x nloc, -1 virtual) and neighbor types
        (nf x nloc x nnei, -1 padding)."""
        nf, nloc = atype.shape[0], atype.shape[1]
        nei_mask, nei_type, atype, real = self.slot_mask(nei_mask, atype, nei_type)
        descriptor, rotation = self.descriptor.forward_with_rotation(rij, nei_mask, atype, nei_type)
        tensor = self.fitting(descriptor, rotation, atype, fparam, aparam).to(torch.float64)
        tensor = self.apply_out_stat(tensor.reshape(nf, nloc, self.output_dim), atype)
        keep = self.atom_keep[atype] * real.to(torch.float64)
        return tensor * keep.unsqueeze(-1)

    def apply_out_stat(self, tensor: torch.Tensor, atype: torch.Tensor) -> torch.Tensor:
        """The output statistics added to the atomic tensors (nf x nloc x output_dim); none by default."""
        return tensor

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
        nlist: nf x nloc x nnei_any into the extended atoms (any order and width, -1 padding; formatted as
        DeePMD-kit's ``format_nlist``); mapping: nf x nall or None; fparam: nf x numb_fparam; aparam:
        nf x nloc x numb_aparam. ``do_atomic_virial`` is accepted for the engine interface and unused.

        Returns the atomic tensor (nf x nloc x output_dim) and ``global_<name>`` (nf x output_dim)."""
        rij, nlist, atype, nei_type = self.engine_pairs(extended_coord, extended_atype, nlist, mapping, fparam, aparam)
        tensor = self.atomic_tensor(rij, nlist >= 0, atype, nei_type, fparam, aparam).detach()
        return {self.output_name: tensor, "global_" + self.output_name: tensor.sum(dim=1)}

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

        Returns the atomic tensor (nf x N x output_dim) and ``global_<name>`` (nf x output_dim).
        ``create_graph`` keeps the graph to the parameters (training); otherwise centers are evaluated in
        chunks of ``chunk_atoms`` (> 0) without it. ``neighbors`` = (index, cell shift) as from
        ``local_neighbor_slots`` skips the neighbor search. ``do_atomic_virial`` is accepted and unused."""
        coord, atype, box = self.frames(coord, atype, box, aparam)
        nf, natoms = coord.shape[0], coord.shape[1]
        chunk = 0 if create_graph else chunk_atoms
        parts = []
        with torch.set_grad_enabled(create_graph and torch.is_grad_enabled()):
            for rows, nlist, rij, nei_type in self.chunked_pairs(coord, atype, box, chunk, neighbors):
                chunk_aparam = None if aparam is None else aparam.reshape(nf, natoms, -1)[:, rows]
                parts.append(self.atomic_tensor(rij, nlist >= 0, atype[:, rows], nei_type, fparam, chunk_aparam))
        tensor = torch.cat(parts, dim=1)
        return {self.output_name: tensor, "global_" + self.output_name: tensor.sum(dim=1)}

    @classmethod
    @torch.jit.unused
    def from_config(cls, config) -> "TensorModel":
        """From a validated, resolved ``model`` section whose fitting_net is this model's type; a descriptor
        without a rotation matrix is a ConfigError."""
        desc_cfg, fit_cfg = config.descriptor, config.fitting_net
        if fit_cfg.dim_case_embd or fit_cfg.default_fparam is not None:
            raise ConfigError("model/fitting_net: dim_case_embd and default_fparam are not implemented yet; remove them")
        ntypes = len(config.type_map)
        descriptor_cls = descriptor_class(desc_cfg.type)
        if not descriptor_cls.has_rotation_matrix:
            rotating = [name for name, c in DESCRIPTORS.classes.items() if c.has_rotation_matrix]
            raise ConfigError(f"model/descriptor/type: '{desc_cfg.type}' has no rotation matrix, which a "
                              f"'{fit_cfg.type}' fitting needs; use one of {', '.join(rotating)}")
        descriptor = descriptor_cls.from_config(desc_cfg, ntypes, config.type_embedding)
        options = fit_cfg.model_dump(exclude={"type", "sel_type", "precision", "default_fparam", "dim_case_embd"})
        fitting = cls.fitting_class(
            ntypes=ntypes, dim_descrpt=descriptor.dim_out, embedding_width=descriptor.dim_emb,
            precision=fit_cfg.resolved_precision, mixed_types=descriptor.shared_fitting,
            exclude_types=config.atom_exclude_types, **options,
        )
        return cls(descriptor, fitting, config.type_map, config.atom_exclude_types, config.pair_exclude_types,
                   config.preset_out_bias)

    @torch.jit.unused
    def compute_output_bias(self, batches) -> None:
        """out_bias/out_std from the labels of sampled numpy batches (:mod:`deeppot.model.tensor_statistics`)."""
        compute_tensor_output_bias(self, batches)

    @classmethod
    def deserialize(cls, data: dict) -> "TensorModel":
        return cls.from_parts(data, deserialize_descriptor(data["descriptor"]), cls.fitting_class.deserialize(data["fitting"]))


class DipoleModel(TensorModel):
    """Atomic dipoles nf x N x 3 and their sum, the dipole of the frame (nf x 3)."""

    output_dim = 3
    output_name = "dipole"
    label_name = keys.DIPOLE
    output_type = keys.DIPOLE
    fitting_class = DipoleFitting


class PolarModel(TensorModel):
    """Atomic polarizabilities nf x N x 9 and their sum (nf x 9); row-major 3 x 3 tensors."""

    output_dim = 9
    output_name = "polar"
    label_name = keys.POLARIZABILITY
    output_type = keys.POLARIZABILITY
    fitting_class = PolarFitting

    def apply_out_stat(self, tensor: torch.Tensor, atype: torch.Tensor) -> torch.Tensor:
        """With ``shift_diag``: + mean(diag(out_bias[t])) * scale[t] on the diagonal (DeePMD-kit's
        ``DPPolarAtomicModel.apply_out_stat``)."""
        if not self.fitting.shift_diag:
            return tensor
        diag_mean = torch.diagonal(self.out_bias[0].reshape(self.ntypes, 3, 3), dim1=-2, dim2=-1).mean(dim=-1)
        shift = diag_mean[atype] * self.fitting.scale[atype, 0]  # nf x nloc
        eye = torch.eye(3, dtype=tensor.dtype, device=tensor.device).reshape(9)
        return tensor + shift.unsqueeze(-1) * eye
