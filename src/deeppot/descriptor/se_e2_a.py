"""DeepPot-SE descriptor ``se_e2_a`` (spec sections 3.3, 3.4, 3.6).

For center i with normalised environment rows R_j (1 x 4) and embeddings G_j = N(s_j) (1 x M1),
``gr_i = (1/nnei) sum_j G_j^T R_j`` (M1 x 4) and ``D_i = gr_i gr_i[:M2]^T`` flattened (a*M2 + b),
M2 = axis_neuron. nnei = sum(sel), padded slots included (they normalise to -davg/dstd).

Compressed (``deeppot compress``, spec section 6): each G is a table of quintic pieces in s and the sum
``sum_j G_j^T R_j`` is evaluated fused with it (:class:`deeppot.nn.tabulate.EmbeddingTables`); padded slots
still contribute ``G(s_pad)^T R_pad`` each.

With a type embedding (input.json's model-level ``type_embedding``, DeePMD-kit TF's semantics): one embedding
net G([s_j, T[t_j]]) (``type_one_side``) or G([s_j, T[t_j], T[t_i]]) for all type pairs (see
:mod:`deeppot.descriptor.radial_embedding`), and the center's type vector T[t_i] appended to D_i, so that one
fitting net serves every type (``shared_fitting``; TF's ener fitting with a type embedding). DeePMD-kit has no
backend-independent dict for this model, so its serialized form is deeppot's own extension of se_e2_a's dict
(version 1 of the extension): ``"type_embedding"`` holds the :class:`deeppot.nn.type_embedding.TypeEmbedding`
dict (DeePMD-kit's ``TypeEmbedNet`` layout), ``"embeddings"`` the one net (a collection of ndim 0, input width
1 + Y or 1 + 2Y) and ``"deeppot_extension"`` = ``{"name": "se_e2_a_type_embedding", "@version": 1}``.
DeePMD-kit cannot read such a dict; deeppot's deserialize rebuilds it. Compression refuses it, as DeePMD-kit does.
"""

from typing import List, Optional, Tuple

import torch
from torch import nn

from deeppot.descriptor.radial_embedding import RadialEmbeddingDescriptor
from deeppot.nn.type_embedding import TypeEmbedding

TYPE_EMBEDDING_EXTENSION = {"name": "se_e2_a_type_embedding", "@version": 1}
"""Marks deeppot's extension of se_e2_a's dict with a type embedding (see the module docstring)."""


class DescriptorSeA(RadialEmbeddingDescriptor):
    """se_e2_a on type-blocked neighbor slots. All lengths in Angstrom."""

    type_name = "se_e2_a"
    has_rotation_matrix = True

    def __init__(
        self,
        ntypes: int,
        rcut: float,
        rcut_smth: float,
        sel: List[int],
        neuron: List[int],
        axis_neuron: int,
        activation_function: str = "tanh",
        resnet_dt: bool = False,
        type_one_side: bool = True,
        exclude_types: Optional[List[Tuple[int, int]]] = None,
        env_protection: float = 0.0,
        set_davg_zero: bool = False,
        precision: str = "float64",
        trainable: bool = True,
        seed: Optional[int] = None,
        type_embedding: Optional[TypeEmbedding] = None,
    ):
        super().__init__(ntypes, rcut, rcut_smth, sel, neuron, False, activation_function, resnet_dt, type_one_side,
                         exclude_types, env_protection, set_davg_zero, precision, trainable, seed, type_embedding)
        self.axis_neuron = int(axis_neuron)
        self.dim_type = 0 if type_embedding is None else type_embedding.dim_out
        self.shared_fitting = type_embedding is not None

    @property
    def dim_out(self) -> int:
        return self.neuron[-1] * self.axis_neuron + self.dim_type

    @property
    def dim_emb(self) -> int:
        """M1, the rows of the rotation matrix."""
        return self.neuron[-1]

    def forward(
        self, rij: torch.Tensor, nei_mask: torch.Tensor, center_type: torch.Tensor, nei_type: torch.Tensor
    ) -> torch.Tensor:
        """rij: nf x nloc x nnei x 3 (Angstrom); nei_mask: nf x nloc x nnei bool; center_type: nf x nloc;
        nei_type: nf x nloc x nnei (-1 where nei_mask is False).

        Returns the descriptor, nf x nloc x (neuron[-1] * axis_neuron [+ Y, the center's type vector, with a
        type embedding]).
        """
        return self.forward_with_rotation(rij, nei_mask, center_type, nei_type)[0]

    def forward_with_rotation(
        self, rij: torch.Tensor, nei_mask: torch.Tensor, center_type: torch.Tensor, nei_type: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The descriptor (as :meth:`forward`) and the rotation matrix gr[:, :, 1:], nf x nloc x M1 x 3: the
        three equivariant columns of gr = (1/nnei) sum_j G_j^T R_j (DeePMD-kit's se_e2_a returns the same)."""
        nf, nloc = rij.shape[0], rij.shape[1]
        env = self.normalized_environment(rij, nei_mask, center_type, nei_type)
        n = nf * nloc
        type_embedding = self.type_embedding
        if type_embedding is None:
            gr_t = self.embedding_sum(env.reshape(n, self.nnei, 4), nei_mask.reshape(n, self.nnei),
                                      center_type.reshape(-1))
            return self._from_embedding_sum(gr_t, nf, nloc)
        types = type_embedding()  # ntypes x Y
        gr_t = self.typed_embedding_sum(env.reshape(n, self.nnei, 4), center_type.reshape(-1), types)
        desc, rotation = self._from_embedding_sum(gr_t, nf, nloc)
        return torch.cat([desc, types.to(desc.dtype)[center_type]], dim=-1), rotation  # the center's type vector appended

    def _from_embedding_sum(self, gr_t: torch.Tensor, nf: int, nloc: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """D (nf x nloc x (M1 * M2)) and the rotation matrix (nf x nloc x M1 x 3) from sum_j R_j^T G_j (n x 4 x M1)."""
        gr_t = gr_t / self.nnei  # gr transposed: n x 4 x M1
        gr = gr_t.transpose(1, 2)  # n x M1 x 4
        desc = torch.matmul(gr, gr_t[:, :, : self.axis_neuron])  # n x M1 x M2
        m1 = self.neuron[-1]
        return desc.reshape(nf, nloc, m1 * self.axis_neuron), gr[:, :, 1:].reshape(nf, nloc, m1, 3)

    @torch.jit.unused
    def serialize(self) -> dict:
        data = self._common_dict()
        data.update(self._embedding_dict(), axis_neuron=self.axis_neuron)
        if self.type_embedding is not None:  # deeppot's extension (module docstring)
            data.update(type_embedding=self.type_embedding.serialize(), deeppot_extension=dict(TYPE_EMBEDDING_EXTENSION))
        return self._with_compression(data)

    @classmethod
    def deserialize(cls, data: dict) -> "DescriptorSeA":
        type_embedding = None
        if data.get("type_embedding") is not None:
            extension = data.get("deeppot_extension") or {}
            if extension.get("name") != TYPE_EMBEDDING_EXTENSION["name"] or extension.get("@version", 0) > 1:
                raise ValueError(f"se_e2_a with a type embedding: unknown deeppot_extension {extension!r}; "
                                 "written by a newer deeppot? upgrade deeppot")
            type_embedding = TypeEmbedding.deserialize(data["type_embedding"])
        descriptor = cls(
            neuron=data["neuron"],
            axis_neuron=data["axis_neuron"],
            activation_function=data["activation_function"],
            resnet_dt=data["resnet_dt"],
            type_one_side=data["type_one_side"],
            type_embedding=type_embedding,
            **cls._common_arguments(data),
        )
        descriptor._load_embeddings(data)
        descriptor._load_compression(data)
        return descriptor
