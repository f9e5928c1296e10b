"""Neighbor self-attention of the DPA-1 descriptor (spec 3.9; DeePMD-kit's ``NeighborGatedAttention``).

Each layer maps the embeddings G (n x nnei x d) of a center's neighbor slots to ``LayerNorm(G + A(G))`` with
one-head gated attention A:

- ``q, k, v = split(G W_in + b_in)`` (width ``hidden_dim`` each), L2-normalised if ``normalize``;
- logits ``L = s q k^T`` with ``s = (hidden_dim * scaling_factor)^-1/2``, or ``s = temperature`` if given;
- smooth (``smooth_type_embedding``): ``L = (L + 20) w_j w_k - 20`` with the switch w of each slot (padded
  slots have w = 0, so they stay in the softmax as constant exp(-20) terms); otherwise padded keys get -inf;
- ``a = softmax_k(L)``, zero on padded query rows, times ``w_j w_k`` if smooth, times ``r_j . r_k`` (unit
  neighbor directions) if ``dotr``;
- ``A = (a v) W_out + b_out``.
Serialization follows DeePMD-kit's dicts (``NeighborGatedAttention`` / layer / ``GatedAttentionLayer`` /
``LayerNorm``).
"""

from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from deeppot.nn.mlp import DenseLayer
from deeppot.nn.precision import precision_name

ATTENTION_SHIFT = 20.0
"""Logit shift of the smooth attention: a slot with switch 0 gets the logit -ATTENTION_SHIFT."""


class LayerNorm(nn.Module):
    """``y = (x - mean) / sqrt(var + eps) * w + b`` over the last axis (width ``n``); w = 1, b = 0 initially."""

    def __init__(self, n: int, eps: float, dtype: torch.dtype, trainable: bool = True):
        super().__init__()
        self.n = int(n)
        self.eps = float(eps)
        self.trainable = bool(trainable)
        self.w = nn.Parameter(torch.ones(n, dtype=dtype), requires_grad=self.trainable)
        self.b = nn.Parameter(torch.zeros(n, dtype=dtype), requires_grad=self.trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.layer_norm(x, [self.n], self.w, self.b, self.eps)

    @torch.jit.unused
    def serialize(self) -> dict:
        return {
            "@class": "LayerNorm",
            "@version": 1,
            "eps": self.eps,
            "trainable": self.trainable,
            "precision": precision_name(self.w.dtype),
            "@variables": {"w": self.w.detach().cpu().numpy().copy(), "b": self.b.detach().cpu().numpy().copy()},
        }

    @classmethod
    def deserialize(cls, data: dict, dtype: torch.dtype) -> "LayerNorm":
        w = np.asarray(data["@variables"]["w"])
        norm = cls(w.shape[0], data["eps"], dtype, data.get("trainable", True))
        with torch.no_grad():
            norm.w.copy_(torch.as_tensor(w))
            norm.b.copy_(torch.as_tensor(np.asarray(data["@variables"]["b"])))
        return norm


class GatedAttention(nn.Module):
    """One-head gated self-attention over the neighbor slots of each center (see the module docstring)."""

    def __init__(
        self,
        embed_dim: int,
        hidden_dim: int,
        dotr: bool,
        scaling_factor: float,
        normalize: bool,
        temperature: Optional[float],
        smooth: bool,
        dtype: torch.dtype,
        generator: Optional[torch.Generator] = None,
        trainable: bool = True,
    ):
        super().__init__()
        self.embed_dim = int(embed_dim)
        self.hidden_dim = int(hidden_dim)
        self.dotr = bool(dotr)
        self.scaling_factor = float(scaling_factor)
        self.normalize = bool(normalize)
        self.temperature = temperature
        self.smooth = bool(smooth)
        self.scaling = float((hidden_dim * scaling_factor) ** -0.5 if temperature is None else temperature)
        self.in_proj = DenseLayer(embed_dim, 3 * hidden_dim, "none", False, False, dtype, generator, trainable)
        self.out_proj = DenseLayer(hidden_dim, embed_dim, "none", False, False, dtype, generator, trainable)

    def forward(
        self, g: torch.Tensor, logit_gate: Optional[torch.Tensor], logit_bias: torch.Tensor, post: torch.Tensor
    ) -> torch.Tensor:
        """g: n x nnei x embed_dim; the masks of :meth:`NeighborAttention.weight_masks`: logits are
        ``s q k^T * logit_gate + logit_bias``, weights ``softmax(logits) * post``. Returns n x nnei x embed_dim."""
        q, k, v = self.in_proj(g).split(self.hidden_dim, dim=-1)  # n x nnei x hidden each
        if self.normalize:  # x / max(|x|, 1e-12), as a product (cheaper to differentiate twice than a quotient)
            q = q * torch.rsqrt((q * q).sum(dim=-1, keepdim=True).clamp(min=1e-24))
            k = k * torch.rsqrt((k * k).sum(dim=-1, keepdim=True).clamp(min=1e-24))
            v = v * torch.rsqrt((v * v).sum(dim=-1, keepdim=True).clamp(min=1e-24))
        logits = torch.matmul(q * self.scaling, k.transpose(1, 2))  # n x nnei (query) x nnei (key)
        if logit_gate is not None:
            logits = logits * logit_gate
        weights = torch.softmax(logits + logit_bias, dim=-1) * post
        return self.out_proj(torch.matmul(weights, v))

    @torch.jit.unused
    def serialize(self, nnei: int) -> dict:
        return {
            "nnei": nnei,
            "embed_dim": self.embed_dim,
            "hidden_dim": self.hidden_dim,
            "num_heads": 1,
            "dotr": self.dotr,
            "do_mask": False,
            "scaling_factor": self.scaling_factor,
            "normalize": self.normalize,
            "temperature": self.temperature,
            "bias": True,
            "smooth": self.smooth,
            "precision": precision_name(self.in_proj.w.dtype),
            "in_proj": self.in_proj.serialize(),
            "out_proj": self.out_proj.serialize(),
        }

    @classmethod
    def deserialize(cls, data: dict, dtype: torch.dtype) -> "GatedAttention":
        if data.get("num_heads", 1) != 1 or data.get("do_mask", False) or not data.get("bias", True):
            raise ValueError("only one-head attention with bias and without do_mask is supported")
        layer = cls(data["embed_dim"], data["hidden_dim"], data["dotr"], data["scaling_factor"], data["normalize"],
                    data["temperature"], data.get("smooth", True), dtype)
        layer.in_proj = DenseLayer.deserialize(data["in_proj"], dtype)
        layer.out_proj = DenseLayer.deserialize(data["out_proj"], dtype)
        return layer


class NeighborAttention(nn.Module):
    """``attn_layer`` layers ``G <- LayerNorm(G + A(G))`` (DeePMD-kit's ``NeighborGatedAttention``)."""

    def __init__(
        self,
        layer_num: int,
        embed_dim: int,
        hidden_dim: int,
        dotr: bool,
        scaling_factor: float,
        normalize: bool,
        temperature: Optional[float],
        smooth: bool,
        trainable_ln: bool,
        ln_eps: float,
        dtype: torch.dtype,
        generator: Optional[torch.Generator] = None,
        trainable: bool = True,
    ):
        super().__init__()
        self.layer_num = int(layer_num)
        self.embed_dim = int(embed_dim)
        self.hidden_dim = int(hidden_dim)
        self.dotr = bool(dotr)
        self.scaling_factor = float(scaling_factor)
        self.normalize = bool(normalize)
        self.temperature = temperature
        self.smooth = bool(smooth)
        self.trainable_ln = bool(trainable_ln)
        self.ln_eps = float(ln_eps)
        self.shift = ATTENTION_SHIFT
        self.dtype = dtype
        self.attention = nn.ModuleList(
            GatedAttention(embed_dim, hidden_dim, dotr, scaling_factor, normalize, temperature, smooth, dtype,
                           generator, trainable)
            for _ in range(self.layer_num)
        )
        self.norms = nn.ModuleList(LayerNorm(embed_dim, ln_eps, dtype, trainable_ln) for _ in range(self.layer_num))

    def forward(self, g: torch.Tensor, mask: torch.Tensor, direction: torch.Tensor, sw: torch.Tensor) -> torch.Tensor:
        """g: n x nnei x embed_dim; mask: n x nnei (real slots); direction: n x nnei x 3 unit vectors (0 for
        padding); sw: n x nnei switch (0 for padding). Returns n x nnei x embed_dim."""
        if self.layer_num == 0:
            return g
        logit_gate, logit_bias, post = self.weight_masks(mask, direction, sw)
        for attention, norm in zip(self.attention, self.norms):
            g = norm(g + attention(g, logit_gate, logit_bias, post))
        return g

    def weight_masks(
        self, mask: torch.Tensor, direction: torch.Tensor, sw: torch.Tensor
    ) -> Tuple[Optional[torch.Tensor], torch.Tensor, torch.Tensor]:
        """What every layer applies to its n x nnei (query) x nnei (key) logits L and weights, computed once:
        smooth: ``L w_j w_k + 20 (w_j w_k - 1)`` (= DeePMD-kit's ``(L + 20) w_j w_k - 20``) and weights times
        ``w_j w_k``; otherwise -inf on padded keys and weights zero on padded query rows (whose logits stay
        finite); with dotr, weights times ``r_j . r_k``. Returns (logit gate or None, logit bias, weight factor)."""
        real = mask.unsqueeze(-1)  # n x nnei x 1, query rows
        logit_gate: Optional[torch.Tensor] = None
        if self.smooth:
            gate = sw.unsqueeze(-1) * sw.unsqueeze(-2)  # zero on padded rows and columns
            logit_gate, logit_bias, post = gate, self.shift * (gate - 1.0), gate
        else:
            open_key = mask.unsqueeze(-2) | ~real
            logit_bias = torch.zeros_like(open_key, dtype=sw.dtype).masked_fill(~open_key, float("-inf"))
            post = real.to(sw.dtype)
        if self.dotr:
            post = post * torch.matmul(direction, direction.transpose(1, 2))
        return logit_gate, logit_bias, post

    @torch.jit.unused
    def serialize(self, nnei: int) -> dict:
        options = {
            "nnei": nnei,
            "embed_dim": self.embed_dim,
            "hidden_dim": self.hidden_dim,
            "dotr": self.dotr,
            "do_mask": False,
            "scaling_factor": self.scaling_factor,
            "normalize": self.normalize,
            "temperature": self.temperature,
            "trainable_ln": self.trainable_ln,
            "ln_eps": self.ln_eps,
            "precision": precision_name(self.dtype),
        }
        layers: List[dict] = [
            {**options, "attention_layer": attention.serialize(nnei),
             "attn_layer_norm": norm.serialize()}
            for attention, norm in zip(self.attention, self.norms)
        ]
        return {"@class": "NeighborGatedAttention", "@version": 1, "layer_num": self.layer_num, **options,
                "attention_layers": layers}

    @classmethod
    def deserialize(cls, data: dict, dtype: torch.dtype, smooth: bool) -> "NeighborAttention":
        """``smooth`` is the descriptor's smooth_type_embedding (DeePMD-kit keeps it in each layer's dict only)."""
        stack = cls(data["layer_num"], data["embed_dim"], data["hidden_dim"], data["dotr"], data["scaling_factor"],
                    data["normalize"], data["temperature"], smooth, data["trainable_ln"], data["ln_eps"], dtype)
        layers = data["attention_layers"]
        if len(layers) != stack.layer_num:
            raise ValueError(f"attention: layer_num is {stack.layer_num} but {len(layers)} layers are stored")
        for layer in layers:
            if layer["attention_layer"]["dotr"] != stack.dotr or layer["attention_layer"].get("smooth", True) != smooth:
                raise ValueError("attention layers with different dotr or smooth settings are not supported")
        stack.attention = nn.ModuleList(GatedAttention.deserialize(layer["attention_layer"], dtype) for layer in layers)
        stack.norms = nn.ModuleList(LayerNorm.deserialize(layer["attn_layer_norm"], dtype) for layer in layers)
        return stack
