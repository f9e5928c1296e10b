"""DeepPot-SE descriptor ``se_e3`` (aliases ``se_at``, ``se_a_3be``, ``se_t``) from three-body angles
(spec sections 3.3, 3.4, 3.8).

With normalised rows R_j = (row_j - davg) / dstd, angular parts a_j = R_j[1:4] and, for neighbor-type
blocks ti <= tj, theta_jk = a_j . a_k (j in block ti, k in block tj):
``D_i = sum_{ti <= tj} 1/(sel[ti] sel[tj]) sum_{j,k} theta_jk N_{ti + tj*ntypes}(theta_jk)``, M1 = neuron[-1]
wide. DeePMD-kit keeps ntypes^2 nets (NetworkCollection ndim 2); those with tj < ti are never used (and
are zeros here, as DeePMD-kit's numpy backend writes them).

Padded slots have angular part -davg[1:4]/dstd[1:4] = 0 (the statistics set davg = [avg_r, 0, 0, 0]), so
their theta is 0 and they contribute nothing: the nets run on the filled heads of the blocks only.

Compressed (``deeppot compress``, spec section 6, DeePMD-kit's se_t tables): each net is a two-sided table on
theta in [-b, b], b the bound of |a_j . a_k| over the training data (min_nbor_dist), both strides 10 x the
command's, and ``sum_jk theta_jk N(theta_jk)`` is evaluated fused with the lookup.
"""

from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from deeppot.descriptor.base import Descriptor
from deeppot.nn.mlp import EmbeddingNet, NetworkCollection
from deeppot.nn.tabulate import EmbeddingTables, angle_product_bound
from deeppot.nn.tabulate_kernel import compressed_entries, tables_from_entries, tabulate_nets


class DescriptorSeT(Descriptor):
    """se_e3 on type-blocked neighbor slots. All lengths in Angstrom."""

    type_name = "se_e3"

    def __init__(
        self,
        ntypes: int,
        rcut: float,
        rcut_smth: float,
        sel: List[int],
        neuron: List[int],
        activation_function: str = "tanh",
        resnet_dt: bool = False,
        exclude_types: Optional[List[Tuple[int, int]]] = None,
        env_protection: float = 0.0,
        set_davg_zero: bool = False,
        precision: str = "float64",
        trainable: bool = True,
        seed: Optional[int] = None,
    ):
        super().__init__(ntypes, rcut, rcut_smth, sel, 4, exclude_types, env_protection, set_davg_zero, precision,
                         trainable)
        self.neuron = list(neuron)
        self.activation_function = activation_function
        self.resnet_dt = resnet_dt
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.embeddings = nn.ModuleList(
            EmbeddingNet(1, self.neuron, activation_function, resnet_dt, self.dtype, generator, trainable)
            for _ in range(ntypes * ntypes)
        )
        with torch.no_grad():  # the unused nets (tj < ti) are zeros, as DeePMD-kit writes them
            for k, net in enumerate(self.embeddings):
                if k // ntypes < k % ntypes:
                    for parameter in net.parameters():
                        parameter.zero_()
        self.tables = EmbeddingTables([], [], self.neuron[-1], self.dtype, two_sided=True)  # enable_compression

    @property
    def dim_out(self) -> int:
        return self.neuron[-1]

    def forward(
        self, rij: torch.Tensor, nei_mask: torch.Tensor, center_type: torch.Tensor, nei_type: torch.Tensor
    ) -> torch.Tensor:
        """rij: nf x nloc x nnei x 3 (Angstrom); nei_mask: nf x nloc x nnei bool; center_type: nf x nloc;
        nei_type: nf x nloc x nnei (-1 where nei_mask is False).

        Returns the descriptor, nf x nloc x neuron[-1].
        """
        nf, nloc = rij.shape[0], rij.shape[1]
        n, m1 = nf * nloc, self.neuron[-1]
        env = self.normalized_environment(rij, nei_mask, center_type, nei_type).reshape(n, self.nnei, 4)
        _, widths = self.block_fill(nei_mask.reshape(n, self.nnei))
        angular = env[:, :, 1:]  # n x nnei x 3
        result = torch.zeros(n, 1, m1, dtype=self.dtype, device=rij.device)
        for k, net in enumerate(self.embeddings):
            ti, tj = k % self.ntypes, k // self.ntypes
            if ti <= tj:  # the nets with tj < ti are unused
                a_i = angular.narrow(1, self.sel_offsets[ti], widths[ti])  # n x w_i x 3
                a_j = angular.narrow(1, self.sel_offsets[tj], widths[tj])  # n x w_j x 3
                theta = torch.matmul(a_i, a_j.transpose(1, 2))  # n x w_i x w_j
                if self.compressed:  # sum_jk theta_jk N(theta_jk) fused with the table lookup
                    flat = theta.reshape(n, -1)
                    pair_sum = self.tables.contract(k, flat, flat.unsqueeze(-1))  # n x 1 x M1
                else:
                    g = net(theta.reshape(-1, 1)).reshape(n, widths[ti] * widths[tj], m1)
                    pair_sum = torch.matmul(theta.reshape(n, 1, -1), g)  # n x 1 x M1
                result = result + pair_sum * (1.0 / float(self.sel[ti] * self.sel[tj]))
        return result.reshape(nf, nloc, m1)

    # ------------------------------------------------------------ compression
    @torch.jit.unused
    def compression_refusal(self) -> Optional[str]:
        return None

    @torch.jit.unused
    def enable_compression(
        self, min_nbor_dist: float, table_extrapolate: float = 5.0, table_stride_1: float = 0.01,
        table_stride_2: float = 0.1, check_frequency: int = -1,
    ) -> None:
        """Tabulate every net on theta in [-b, b], b = angle_product_bound of the angular dstd (davg_a is 0)
        and min_nbor_dist (Angstrom), both sides extended to table_extrapolate * b, both strides x 10."""
        if self.compressed:
            raise ValueError("descriptor se_e3 cannot be compressed: it already is")
        dstd_a = self.dstd[:, 0, 1:].detach().double().cpu().numpy().min(axis=-1)  # ntypes
        bound = angle_product_bound(dstd_a, min_nbor_dist, self.rcut_smth, self.rcut)
        self.tables = tabulate_nets(list(self.embeddings), [(-bound, bound)] * len(self.embeddings), table_extrapolate,
                                    10 * table_stride_1, 10 * table_stride_2, check_frequency, self.neuron[-1],
                                    self.dtype, two_sided=True)
        self.compressed = True

    @torch.jit.unused
    def serialize(self) -> dict:
        data = self._common_dict()
        data.update(
            neuron=list(self.neuron),
            resnet_dt=self.resnet_dt,
            activation_function=self.activation_function,
            embeddings=NetworkCollection.serialize(list(self.embeddings), 2, self.ntypes, "embedding_network"),
        )
        if self.compressed:
            data.update(compressed_entries(self.tables))
        return data

    @classmethod
    def deserialize(cls, data: dict) -> "DescriptorSeT":
        if np.any(np.asarray(data["@variables"]["davg"])[..., 1:] != 0):
            raise ValueError("se_e3 needs the angular columns of davg to be 0 (as DeePMD-kit's statistics give)")
        descriptor = cls(
            neuron=data["neuron"],
            activation_function=data["activation_function"],
            resnet_dt=data["resnet_dt"],
            **cls._common_arguments(data),
        )
        descriptor._load_embeddings(data)
        if data.get("compress") is not None:
            descriptor.tables = tables_from_entries(data["compress"], descriptor.neuron[-1], descriptor.dtype, True)
            descriptor.compressed = True
        return descriptor
