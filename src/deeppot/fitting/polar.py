"""Polarizability fitting (spec 3.10). With R_i (M1 x 3) the descriptor's rotation matrix and o_i the
network output scaled by ``scale[t_i]``:

- ``fit_diag``: ``alpha_i = R_i^T diag(o_i) R_i`` (o_i has M1 entries);
- otherwise: o_i is M1 x M1, symmetrised ``P = (o + o^T)/2``, ``alpha_i = R_i^T P R_i``;
- ``shift_diag``: ``alpha_i += constant_matrix[t_i] * scale[t_i] * I``.
alpha_i rotates as R alpha R^T. Units are those of the labels (e.g. Angstrom^3).
"""

from typing import Dict, List, Optional, Union

import numpy as np
import torch

from deeppot.fitting.base import GeneralFitting


class PolarFitting(GeneralFitting):
    type_name = "polar"
    var_name = "polar"
    output_dim = 9  # components of the atomic tensor (3 x 3, row-major)
    serial_version = 5

    def __init__(
        self,
        ntypes: int,
        dim_descrpt: int,
        embedding_width: int,
        neuron: List[int],
        fit_diag: bool = True,
        scale: Union[float, List[float], None] = None,
        shift_diag: bool = True,
        **options,
    ):
        """``embedding_width`` is M1; ``scale`` one float or one per type (default 1); ``options`` are
        :class:`GeneralFitting`'s."""
        width = int(embedding_width)
        super().__init__(ntypes, dim_descrpt, width if fit_diag else width * width, neuron, **options)
        self.embedding_width = width
        self.fit_diag = bool(fit_diag)
        self.shift_diag = bool(shift_diag)
        scales = [1.0] * ntypes if scale is None else scale
        scales = [float(scales)] * ntypes if isinstance(scales, (int, float)) else [float(s) for s in scales]
        if len(scales) != ntypes:
            raise ValueError(f"scale has {len(scales)} entries for {ntypes} types; give one per type or one float")
        self.register_buffer("scale", torch.tensor(scales, dtype=torch.float64).reshape(ntypes, 1))
        self.register_buffer("constant_matrix", torch.zeros(ntypes, dtype=torch.float64))

    def forward(
        self,
        descriptor: torch.Tensor,
        rotation: torch.Tensor,
        atype: torch.Tensor,
        fparam: Optional[torch.Tensor] = None,
        aparam: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """descriptor: nf x nloc x dim_descrpt; rotation: nf x nloc x M1 x 3; atype: nf x nloc.
        Returns atomic polarizabilities nf x nloc x 3 x 3 (fitting dtype)."""
        nf, nloc = atype.shape[0], atype.shape[1]
        n, m1 = nf * nloc, self.embedding_width
        scale = self.scale.to(self.dtype)[atype]  # nf x nloc x 1
        out = (self.network_output(descriptor, atype, fparam, aparam) * scale).reshape(n, -1)
        rot = rotation.to(self.dtype).reshape(n, m1, 3)
        if self.fit_diag:
            weighted = out.unsqueeze(-1) * rot  # n x M1 x 3: diag(o) R
        else:
            square = out.reshape(n, m1, m1)
            weighted = torch.bmm((square + square.transpose(1, 2)) / 2, rot)
        alpha = torch.bmm(rot.transpose(1, 2), weighted).reshape(nf, nloc, 3, 3)
        if self.shift_diag:
            shift = self.constant_matrix.to(self.dtype)[atype].unsqueeze(-1) * scale  # nf x nloc x 1
            alpha = alpha + shift.unsqueeze(-1) * torch.eye(3, dtype=self.dtype, device=alpha.device)
        return alpha

    @torch.jit.unused
    def serialize(self) -> Dict:
        data = super().serialize()
        data.update(embedding_width=self.embedding_width, fit_diag=self.fit_diag, shift_diag=self.shift_diag)
        data["@variables"]["scale"] = self.scale.detach().cpu().numpy().copy()
        data["@variables"]["constant_matrix"] = self.constant_matrix.detach().cpu().numpy().copy()
        return data

    @classmethod
    def deserialize(cls, data: Dict) -> "PolarFitting":
        variables = data["@variables"]
        fitting = cls(
            embedding_width=data["embedding_width"],
            fit_diag=data.get("fit_diag", True),
            scale=np.asarray(variables["scale"], dtype=np.float64).reshape(-1).tolist(),
            shift_diag=data.get("shift_diag", True),
            **cls.common_arguments(data),
        )
        fitting.load_variables(data)
        with torch.no_grad():
            fitting.constant_matrix.copy_(torch.as_tensor(np.asarray(variables["constant_matrix"])).reshape(-1))
        return fitting
