"""DeepPot-SE descriptor ``se_e2_r`` from distances only (spec sections 3.3, 3.4, 3.7).

With normalised radial entries s_j = (w(r_j)/(r_j+p) - davg) / dstd and one embedding net per neighbor
type, ``D_i = (1/5) (1/nnei) sum_j G_{t_j}(s_j)`` (M1 = neuron[-1] wide); nnei = sum(sel), padded slots
included (they normalise to -davg/dstd); the 1/5 is DeePMD-kit's fixed ``res_rescale``. Rows of excluded
type pairs are zeroed after normalisation, so they contribute G(0). ``type_one_side`` is accepted and
ignored, as in DeePMD-kit's PyTorch backend: one net per neighbor type, serialized as ``type_one_side``
true (DeePMD-kit's numpy backend refuses false).
"""

from typing import List, Optional, Tuple

import torch

from deeppot.descriptor.radial_embedding import RadialEmbeddingDescriptor


class DescriptorSeR(RadialEmbeddingDescriptor):
    """se_e2_r on type-blocked neighbor slots. All lengths in Angstrom."""

    type_name = "se_e2_r"

    def __init__(
        self,
        ntypes: int,
        rcut: float,
        rcut_smth: float,
        sel: List[int],
        neuron: List[int],
        activation_function: str = "tanh",
        resnet_dt: bool = False,
        type_one_side: bool = True,
        exclude_types: Optional[List[Tuple[int, int]]] = None,
        env_protection: float = 0.0,
        set_davg_zero: bool = False,
        precision: str = "float64",
        trainable: bool = True,
        seed: Optional[int] = None,
    ):
        del type_one_side  # always one net per neighbor type (see the module docstring)
        super().__init__(ntypes, rcut, rcut_smth, sel, neuron, True, activation_function, resnet_dt, True,
                         exclude_types, env_protection, set_davg_zero, precision, trainable, seed)

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
        n = nf * nloc
        env = self.normalized_environment(rij, nei_mask, center_type, nei_type).reshape(n, self.nnei, 1)
        total = self.embedding_sum(env, nei_mask.reshape(n, self.nnei), center_type.reshape(-1))  # n x 1 x M1
        return (total / (5.0 * self.nnei)).reshape(nf, nloc, self.neuron[-1])  # 1/5: DeePMD-kit's res_rescale

    @torch.jit.unused
    def serialize(self) -> dict:
        data = self._common_dict()
        data.update(self._embedding_dict(), type="se_r")  # DeePMD-kit writes the alias
        return self._with_compression(data)

    @classmethod
    def deserialize(cls, data: dict) -> "DescriptorSeR":
        descriptor = cls(
            neuron=data["neuron"],
            activation_function=data["activation_function"],
            resnet_dt=data["resnet_dt"],
            **cls._common_arguments(data),
        )
        descriptor._load_embeddings(data)
        descriptor._load_compression(data)
        return descriptor
