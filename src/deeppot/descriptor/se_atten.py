"""Attention descriptor ``se_atten`` (DPA-1; alias ``dpa1``) and ``se_atten_v2`` (spec 3.9), as DeePMD-kit 3.2's
dense ``DescrptDPA1`` computes it.

Slots are mixed-type: the nsel nearest neighbors of any type, nearest first, padding after. With the type
embedding table T (:class:`deeppot.nn.type_embedding.TypeEmbedding`, zero row for type -1), the normalised
rows R_j = [s_j, ...] (1 x 4) and the switch w_j of each slot:

- ``tebd_input_mode`` "concat": ``G_j = N([s_j, T(t_j), T(t_i)])`` (``[s_j, T(t_j)]`` with ``type_one_side``);
- "strip": ``G_j = N_s(s_j) (1 + N_t([T(t_j), T(t_i)]) w_j)`` (w_j only with ``smooth_type_embedding``;
  ``N_t(T(t_j))`` with ``type_one_side``), N_t evaluated once per type (pair) as a table;
- ``attn_layer`` attention layers (:mod:`deeppot.nn.attention`) refine G;
- ``gr = (1/nsel) sum_j G_j^T R_j`` (M1 x 4), ``D = gr gr[:axis_neuron]^T`` flattened, then ``T(t_i)`` appended
  with ``concat_output_tebd``. The rotation matrix (dipole/polar fittings) is gr[:, 1:4] (M1 x 3).

DeePMD-kit's conventions kept for exact parity: a padded slot (and an excluded pair, which DeePMD-kit turns into
padding) has the normalised row -davg/dstd (0 for an excluded pair) and, in its embedding input, the type of
the frame's first atom (DeePMD-kit gathers padding from extended atom 0), here ``center_type[:, 0]``. Such
slots contribute ``G_pad^T R_pad``, which vanishes when davg = 0 (``set_davg_zero``, se_atten's default); in
"strip" mode with ``smooth_type_embedding`` G_pad does not depend on that type at all.

Where DeePMD-kit's documentation and its numpy implementation (the reference here) differ, the implementation is
followed: ``temperature`` multiplies the attention logits (it is not a divisor); ``smooth_type_embedding``
applies to every backend, not only TensorFlow; ``attn_mask`` true is refused (not implemented there either);
``ln_eps`` null means 1e-5 (TensorFlow used 1e-3).
"""

from typing import List, Optional, Tuple

import numpy as np
import torch

from deeppot.descriptor.base import Descriptor
from deeppot.geometry.env_mat import switch_weight
from deeppot.nn.attention import NeighborAttention
from deeppot.nn.mlp import EmbeddingNet, NetworkCollection
from deeppot.nn.type_embedding import TypeEmbedding

TEBD_INPUT_MODES = ("concat", "strip")


class DescriptorSeAtten(Descriptor):
    """se_atten / DPA-1 on mixed-type neighbor slots. All lengths in Angstrom."""

    type_name = "se_atten"
    mixed_types = True
    has_rotation_matrix = True

    def __init__(
        self,
        ntypes: int,
        rcut: float,
        rcut_smth: float,
        sel: List[int],
        neuron: List[int],
        axis_neuron: int,
        tebd_dim: int = 8,
        tebd_input_mode: str = "concat",
        attn: int = 128,
        attn_layer: int = 2,
        attn_dotr: bool = True,
        attn_mask: bool = False,
        type_one_side: bool = False,
        scaling_factor: float = 1.0,
        normalize: bool = True,
        temperature: Optional[float] = None,
        smooth_type_embedding: bool = False,
        concat_output_tebd: bool = True,
        trainable_ln: bool = True,
        ln_eps: Optional[float] = None,
        activation_function: str = "tanh",
        resnet_dt: bool = False,
        exclude_types: Optional[List[Tuple[int, int]]] = None,
        env_protection: float = 0.0,
        set_davg_zero: bool = True,
        precision: str = "float64",
        trainable: bool = True,
        use_econf_tebd: bool = False,
        use_tebd_bias: bool = False,
        type_map: Optional[List[str]] = None,
        seed: Optional[int] = None,
    ):
        if tebd_input_mode not in TEBD_INPUT_MODES:
            raise ValueError(f"tebd_input_mode must be 'concat' or 'strip', got {tebd_input_mode!r}")
        if attn_mask:
            raise ValueError("attn_mask = true is not supported (DeePMD-kit 3.2 does not implement it); set it to false")
        super().__init__(ntypes, rcut, rcut_smth, sel, 4, exclude_types, env_protection, set_davg_zero, precision,
                         trainable)
        self.neuron = list(neuron)
        self.axis_neuron = int(axis_neuron)
        self.tebd_dim = int(tebd_dim)
        self.tebd_input_mode = tebd_input_mode
        self.concat_input = tebd_input_mode == "concat"
        self.type_one_side = bool(type_one_side)
        self.smooth = bool(smooth_type_embedding)
        self.concat_output_tebd = bool(concat_output_tebd)
        self.activation_function = activation_function
        self.resnet_dt = bool(resnet_dt)
        self.attn = int(attn)
        self.attn_layer = int(attn_layer)
        self.attn_dotr = bool(attn_dotr)
        self.scaling_factor = float(scaling_factor)
        self.normalize = bool(normalize)
        self.temperature = None if temperature is None else float(temperature)
        self.trainable_ln = bool(trainable_ln)
        self.ln_eps = 1e-5 if ln_eps is None else float(ln_eps)  # DeePMD-kit's PyTorch/numpy default
        self.use_tebd_bias = bool(use_tebd_bias)
        self.type_map = None if type_map is None else list(type_map)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.type_embedding = TypeEmbedding(ntypes, [self.tebd_dim], "Linear", False, precision, trainable, True,
                                            use_tebd_bias, use_econf_tebd, type_map, seed)
        type_width = self.tebd_dim if self.type_one_side else 2 * self.tebd_dim
        self.embedding = EmbeddingNet(1 + type_width if self.concat_input else 1, self.neuron, activation_function,
                                      self.resnet_dt, self.dtype, generator, trainable)
        # strip mode: the type branch N_t (a placeholder of no layers in concat mode, so TorchScript sees one type)
        self.embedding_strip = EmbeddingNet(type_width, [] if self.concat_input else self.neuron, activation_function,
                                            self.resnet_dt, self.dtype, generator, trainable)
        self.attention = NeighborAttention(self.attn_layer, self.neuron[-1], self.attn, self.attn_dotr,
                                           self.scaling_factor, self.normalize, self.temperature, self.smooth,
                                           self.trainable_ln, self.ln_eps, self.dtype, generator, trainable)

    @property
    def dim_out(self) -> int:
        return self.neuron[-1] * self.axis_neuron + (self.tebd_dim if self.concat_output_tebd else 0)

    @property
    def dim_emb(self) -> int:
        return self.neuron[-1]

    # ----------------------------------------------------------------- forward
    def forward(
        self, rij: torch.Tensor, nei_mask: torch.Tensor, center_type: torch.Tensor, nei_type: torch.Tensor
    ) -> torch.Tensor:
        """rij: nf x nloc x nnei x 3 (Angstrom); nei_mask: nf x nloc x nnei bool; center_type: nf x nloc (>= 0);
        nei_type: nf x nloc x nnei (-1 where nei_mask is False). Returns nf x nloc x dim_out."""
        return self.forward_with_rotation(rij, nei_mask, center_type, nei_type)[0]

    def forward_with_rotation(
        self, rij: torch.Tensor, nei_mask: torch.Tensor, center_type: torch.Tensor, nei_type: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The descriptor (nf x nloc x dim_out) and the rotation matrix gr[:, :, 1:4] (nf x nloc x M1 x 3,
        1/Angstrom), from the inputs of :meth:`forward`."""
        nf, nloc, nnei = rij.shape[0], rij.shape[1], rij.shape[2]
        n, m1 = nf * nloc, self.neuron[-1]
        env = self.normalized_environment(rij, nei_mask, center_type, nei_type)  # nf x nloc x nnei x 4
        mask = nei_mask
        if self.has_exclude:  # an excluded pair is a padded slot from here on (its row stays 0)
            mask = nei_mask & (self._keep_factor(nei_mask, center_type, nei_type).squeeze(-1) > 0.5)
        sw = switch_weight(rij.to(self.dtype), mask, self.rcut_smth, self.rcut).reshape(n, nnei)
        env = env.reshape(n, nnei, 4)
        mask = mask.reshape(n, nnei)
        ctype = center_type.reshape(n)
        # padded slots take the type of the frame's first atom (DeePMD-kit's gather from extended atom 0)
        pad_type = center_type[:, :1].unsqueeze(-1).expand(nf, nloc, nnei).reshape(n, nnei)
        slot_type = torch.where(mask, nei_type.reshape(n, nnei), pad_type)
        table = self.type_embedding()  # (ntypes + 1) x tebd_dim
        g = self._pair_embedding(env[:, :, :1], slot_type, ctype, sw, table)  # n x nnei x M1
        direction = _unit_vectors(env[:, :, 1:])  # n x nnei x 3, 0 for a zero row
        g = self.attention(g, mask, direction, sw)
        gr = torch.matmul(g.transpose(1, 2), env) / nnei  # n x M1 x 4
        desc = torch.matmul(gr, gr[:, : self.axis_neuron].transpose(1, 2)).reshape(nf, nloc, m1 * self.axis_neuron)
        if self.concat_output_tebd:
            desc = torch.cat([desc, table[center_type]], dim=-1)
        return desc, gr[:, :, 1:].reshape(nf, nloc, m1, 3)

    def _pair_embedding(
        self, s: torch.Tensor, slot_type: torch.Tensor, ctype: torch.Tensor, sw: torch.Tensor, table: torch.Tensor
    ) -> torch.Tensor:
        """G of every slot, n x nnei x M1, from s (n x nnei x 1), the slot's neighbor type (n x nnei), the center
        type (n), the switch (n x nnei) and the type embedding table."""
        n, nnei = s.shape[0], s.shape[1]
        if self.concat_input:
            parts = [s, table[slot_type]]
            if not self.type_one_side:
                parts.append(table[ctype].unsqueeze(1).expand(n, nnei, self.tebd_dim))
            return self.embedding(torch.cat(parts, dim=-1))
        if self.type_one_side:
            type_g = self.embedding_strip(table)[slot_type]  # n x nnei x M1
        else:  # one row per (center type, neighbor type), padding row included: index ti * (ntypes + 1) + tj
            nrow = table.shape[0]
            pairs = torch.cat([table.unsqueeze(0).expand(nrow, nrow, self.tebd_dim),
                               table.unsqueeze(1).expand(nrow, nrow, self.tebd_dim)], dim=-1)
            type_g = self.embedding_strip(pairs.reshape(nrow * nrow, 2 * self.tebd_dim))
            type_g = type_g[ctype.unsqueeze(-1) * nrow + slot_type]
        if self.smooth:
            type_g = type_g * sw.unsqueeze(-1)
        radial_g = self.embedding(s)
        return radial_g * type_g + radial_g

    @torch.jit.unused
    def compression_refusal(self) -> Optional[str]:
        return "tabulating se_atten / se_atten_v2 (DeePMD-kit: type-embedding tables in strip mode) is not implemented"

    # ---------------------------------------------------------- serialization
    @torch.jit.unused
    def serialize(self) -> dict:
        """DeePMD-kit's ``dpa1`` / ``se_atten_v2`` descriptor dict (version 2)."""
        data = self._common_dict()
        data.update(
            type="dpa1",
            ntypes=self.ntypes,
            neuron=list(self.neuron),
            axis_neuron=self.axis_neuron,
            tebd_dim=self.tebd_dim,
            tebd_input_mode=self.tebd_input_mode,
            attn=self.attn,
            attn_layer=self.attn_layer,
            attn_dotr=self.attn_dotr,
            attn_mask=False,
            activation_function=self.activation_function,
            resnet_dt=self.resnet_dt,
            scaling_factor=self.scaling_factor,
            normalize=self.normalize,
            temperature=self.temperature,
            trainable_ln=self.trainable_ln,
            ln_eps=self.ln_eps,
            smooth_type_embedding=self.smooth,
            type_one_side=self.type_one_side,
            concat_output_tebd=self.concat_output_tebd,
            use_econf_tebd=False,
            use_tebd_bias=self.use_tebd_bias,
            type_map=self.type_map,
            embeddings=NetworkCollection.serialize([self.embedding], 0, self.ntypes, "embedding_network"),
            attention_layers=self.attention.serialize(self.nnei),
            type_embedding=self.type_embedding.serialize(),
            spin=None,
        )
        if not self.concat_input:
            data["embeddings_strip"] = NetworkCollection.serialize(
                [self.embedding_strip], 0, self.ntypes, "embedding_network"
            )
        return data

    @classmethod
    def _arguments(cls, data: dict) -> dict:
        """Constructor arguments from a DeePMD-kit dict (its deprecated stripped_type_embedding honoured)."""
        if data.get("lmax", 1) != 1:
            raise ValueError(f"se_atten with lmax = {data['lmax']} (moment basis) is not supported; only lmax = 1")
        if data.get("compress") is not None:
            raise ValueError("compressed se_atten models are not supported; load the uncompressed model")
        if data.get("spin") is not None:
            raise ValueError("se_atten with the old spin implementation is not supported")
        arguments = cls._common_arguments(data)
        arguments["sel"] = [int(np.sum(data["sel"]))]
        for key in ("neuron", "axis_neuron", "tebd_dim", "attn", "attn_layer", "attn_dotr", "activation_function",
                    "resnet_dt", "scaling_factor", "normalize", "temperature", "trainable_ln", "ln_eps",
                    "type_one_side", "concat_output_tebd", "use_econf_tebd", "type_map"):
            if key in data:
                arguments[key] = data[key]
        arguments["use_tebd_bias"] = data.get("use_tebd_bias", True)  # version-1 dicts had a bias
        return arguments

    @classmethod
    def deserialize(cls, data: dict) -> "DescriptorSeAtten":
        arguments = cls._arguments(data)
        strip = data.get("stripped_type_embedding")
        arguments["tebd_input_mode"] = data["tebd_input_mode"] if strip is None else ("strip" if strip else "concat")
        arguments["smooth_type_embedding"] = data.get("smooth_type_embedding", True)
        descriptor = cls(**arguments)
        descriptor._load_networks(data)
        return descriptor

    @torch.jit.unused
    def _load_networks(self, data: dict) -> None:
        """The nets, the type embedding, the attention layers and davg/dstd of a DeePMD-kit dict."""
        (self.embedding,) = NetworkCollection.deserialize(data["embeddings"], self.dtype)
        if not self.concat_input:
            (self.embedding_strip,) = NetworkCollection.deserialize(data["embeddings_strip"], self.dtype)
        self.type_embedding = TypeEmbedding.deserialize(data["type_embedding"])
        self.attention = NeighborAttention.deserialize(data["attention_layers"], self.dtype, self.smooth)
        with torch.no_grad():
            self.davg.copy_(torch.as_tensor(np.asarray(data["@variables"]["davg"])))
            self.dstd.copy_(torch.as_tensor(np.asarray(data["@variables"]["dstd"])))


def _unit_vectors(v: torch.Tensor) -> torch.Tensor:
    """v / max(|v|, 1e-12) over the last axis, 0 (with zero first and second derivatives) where v = 0."""
    squared = (v * v).sum(dim=-1, keepdim=True)
    norm = torch.sqrt(torch.where(squared > 0, squared, torch.ones_like(squared)))
    return v / norm.clamp(min=1e-12)


class DescriptorSeAttenV2(DescriptorSeAtten):
    """se_atten_v2: se_atten with ``tebd_input_mode`` "strip" and ``smooth_type_embedding`` always on, and
    ``set_davg_zero`` False by default."""

    type_name = "se_atten_v2"

    def __init__(
        self,
        ntypes: int,
        rcut: float,
        rcut_smth: float,
        sel: List[int],
        neuron: List[int],
        axis_neuron: int,
        set_davg_zero: bool = False,
        **options,
    ):
        for fixed in ("tebd_input_mode", "smooth_type_embedding"):
            if fixed in options:
                raise ValueError(f"se_atten_v2 fixes {fixed}; use se_atten to choose it")
        super().__init__(ntypes, rcut, rcut_smth, sel, neuron, axis_neuron, tebd_input_mode="strip",
                         smooth_type_embedding=True, set_davg_zero=set_davg_zero, **options)

    @torch.jit.unused
    def serialize(self) -> dict:
        data = super().serialize()
        data["type"] = "se_atten_v2"
        del data["tebd_input_mode"], data["smooth_type_embedding"]
        return data

    @classmethod
    def deserialize(cls, data: dict) -> "DescriptorSeAttenV2":
        descriptor = cls(**cls._arguments(data))
        descriptor._load_networks(data)
        return descriptor
