"""Type embedding net (DeePMD-kit's ``TypeEmbedNet``): one learned vector per atom type.

``T = N(I)``: the ntypes x ntypes identity (one-hot rows) through an embedding net ``ntypes -> neuron[0] ->
... -> neuron[-1]`` (DeePMD-kit's ResNet rules, bias only with ``use_tebd_bias``), so row t is the embedding of
type t. With ``padding`` a row of zeros is appended as the embedding of type -1 (padding / virtual atoms):
the table is then (ntypes + 1) x neuron[-1] and index -1 picks the zero row.

The descriptor se_atten uses ``neuron = [tebd_dim]`` with linear activation (a learned ntypes x tebd_dim
matrix); the model-level ``type_embedding`` of DeePMD-kit's TensorFlow models uses the section's own
neuron/activation. Electronic-configuration embeddings (``use_econf_tebd``) are not supported.
"""

from typing import List, Optional

import torch
from torch import nn

from deeppot.nn.mlp import EmbeddingNet
from deeppot.nn.precision import precision_name, resolve_dtype


class TypeEmbedding(nn.Module):
    """Embedding vectors of the atom types: ``forward()`` -> (ntypes [+ 1 padding row]) x neuron[-1]."""

    def __init__(
        self,
        ntypes: int,
        neuron: List[int],
        activation_function: str = "tanh",
        resnet_dt: bool = False,
        precision: str = "float64",
        trainable: bool = True,
        padding: bool = False,
        use_tebd_bias: bool = False,
        use_econf_tebd: bool = False,
        type_map: Optional[List[str]] = None,
        seed: Optional[int] = None,
    ):
        super().__init__()
        if use_econf_tebd:
            raise ValueError(
                "use_econf_tebd (electronic-configuration type embedding) is not supported; set it to false"
            )
        self.ntypes = int(ntypes)
        self.neuron = list(neuron)
        self.activation_function = activation_function
        self.resnet_dt = bool(resnet_dt)
        self.trainable = bool(trainable)
        self.padding = bool(padding)
        self.use_tebd_bias = bool(use_tebd_bias)
        self.type_map = None if type_map is None else list(type_map)
        self.dtype = resolve_dtype(precision)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.net = EmbeddingNet(self.ntypes, self.neuron, activation_function, self.resnet_dt, self.dtype, generator,
                                self.trainable, bias=self.use_tebd_bias)
        self.register_buffer("one_hot", torch.eye(self.ntypes, dtype=self.dtype), persistent=False)

    @property
    def dim_out(self) -> int:
        return self.neuron[-1]

    def forward(self) -> torch.Tensor:
        """The embedding table: ntypes x neuron[-1], plus a final zero row (type -1) with ``padding``."""
        table = self.net(self.one_hot)
        if self.padding:
            table = torch.cat([table, torch.zeros_like(table[:1])], dim=0)
        return table

    @torch.jit.unused
    def serialize(self) -> dict:
        """DeePMD-kit's ``TypeEmbedNet`` dict (version 2)."""
        return {
            "@class": "TypeEmbedNet",
            "@version": 2,
            "ntypes": self.ntypes,
            "neuron": list(self.neuron),
            "resnet_dt": self.resnet_dt,
            "precision": precision_name(self.dtype),
            "activation_function": self.activation_function,
            "trainable": self.trainable,
            "padding": self.padding,
            "use_econf_tebd": False,
            "use_tebd_bias": self.use_tebd_bias,
            "type_map": self.type_map,
            "embedding": self.net.serialize(),
        }

    @classmethod
    def deserialize(cls, data: dict) -> "TypeEmbedding":
        if data.get("@class", "TypeEmbedNet") != "TypeEmbedNet":
            raise ValueError(f"expected a TypeEmbedNet dict, got @class {data.get('@class')!r}")
        embedding = cls(
            ntypes=data["ntypes"],
            neuron=data["neuron"],
            activation_function=data["activation_function"],
            resnet_dt=data["resnet_dt"],
            precision=data["precision"],
            trainable=data.get("trainable", True),
            padding=data.get("padding", False),
            use_tebd_bias=data.get("use_tebd_bias", True),  # version-1 dicts had a bias
            use_econf_tebd=data.get("use_econf_tebd", False),
            type_map=data.get("type_map"),
        )
        embedding.net = EmbeddingNet.deserialize(data["embedding"], embedding.dtype)
        return embedding
