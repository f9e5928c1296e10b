"""Dipole fitting (spec 3.10): ``mu_i = o_i^T R_i``, with o_i (M1) the network output and R_i (M1 x 3) the
descriptor's rotation matrix, so mu_i rotates as a vector. Units are those of the labels (e.g. e*Angstrom)."""

from typing import Dict, List, Optional

import torch

from deeppot.fitting.base import GeneralFitting


class DipoleFitting(GeneralFitting):
    type_name = "dipole"
    var_name = "dipole"
    output_dim = 3  # components of the atomic tensor
    serial_version = 4

    def __init__(self, ntypes: int, dim_descrpt: int, embedding_width: int, neuron: List[int], **options):
        """``embedding_width`` is M1, the rows of the descriptor's rotation matrix; ``options`` are
        :class:`GeneralFitting`'s."""
        super().__init__(ntypes, dim_descrpt, embedding_width, neuron, **options)
        self.embedding_width = int(embedding_width)

    def forward(
        self,
        descriptor: torch.Tensor,
        rotation: torch.Tensor,
        atype: torch.Tensor,
        fparam: Optional[torch.Tensor] = None,
        aparam: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """descriptor: nf x nloc x dim_descrpt; rotation: nf x nloc x M1 x 3; atype: nf x nloc.
        Returns atomic dipoles nf x nloc x 3 (fitting dtype)."""
        nf, nloc = atype.shape[0], atype.shape[1]
        out = self.network_output(descriptor, atype, fparam, aparam)  # nf x nloc x M1
        rot = rotation.to(self.dtype).reshape(nf * nloc, self.embedding_width, 3)
        return torch.bmm(out.reshape(nf * nloc, 1, self.embedding_width), rot).reshape(nf, nloc, 3)

    @torch.jit.unused
    def serialize(self) -> Dict:
        data = super().serialize()
        data.update(embedding_width=self.embedding_width, r_differentiable=True, c_differentiable=True)
        return data

    @classmethod
    def deserialize(cls, data: Dict) -> "DipoleFitting":
        fitting = cls(embedding_width=data["embedding_width"], **cls.common_arguments(data))
        fitting.load_variables(data)
        return fitting
