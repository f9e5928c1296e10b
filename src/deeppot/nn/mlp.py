"""Dense layers, embedding nets and fitting nets with DeePMD-kit's ResNet rules.

A layer computes ``y = act(x W + b)`` (no ``b`` if built with ``bias=False``); if it has a timestep
vector ``idt`` then ``y *= idt``;
with ``resnet`` a skip is added when ``n_out == n_in`` (``y + x``) or ``n_out == 2 n_in``
(``y + [x, x]``). ``idt`` exists only where a skip exists and ``resnet_dt`` is set.
Serialization follows DeePMD-kit's backend-independent dict (``@class``/``@version``/``@variables``).

Mixed precision (DeePMD-kit TF's ``training/mixed_precision``, :mod:`deeppot.nn.precision`): a layer switched
by ``enable_mixed_precision`` casts its input, ``w``, ``b`` and ``idt`` to the compute dtype (float16 or
bfloat16), while its weights stay in their own dtype (float32 master weights) and its output is cast back to
it. An embedding net keeps its residual stream in the compute dtype; a fitting net adds its skips in the
weights' dtype and computes its output layer wholly in it, as DeePMD-kit's ``embedding_net`` / ``one_layer``.
"""

from typing import List, Optional

import numpy as np
import torch
from torch import nn

from deeppot.nn.activations import activate
from deeppot.nn.precision import precision_name


def _skip_kind(n_in: int, n_out: int, resnet: bool) -> int:
    """0: no skip, 1: y + x, 2: y + [x, x]."""
    if not resnet:
        return 0
    if n_out == n_in:
        return 1
    if n_out == 2 * n_in:
        return 2
    return 0


class DenseLayer(nn.Module):
    """One dense layer. Weights ``w`` (n_in, n_out), bias ``b`` (n_out,), timestep ``idt`` (n_out,)."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        activation: str,
        resnet: bool,
        use_timestep: bool,
        dtype: torch.dtype,
        generator: Optional[torch.Generator] = None,
        trainable: bool = True,
        bias: bool = True,
    ):
        super().__init__()
        self.n_in = n_in
        self.n_out = n_out
        self.activation = activation
        self.resnet = resnet
        self.skip = _skip_kind(n_in, n_out, resnet)
        self.has_idt = bool(use_timestep and self.skip != 0)
        self.trainable = trainable
        std = 1.0 / np.sqrt(n_in + n_out)
        self.w = nn.Parameter(torch.randn(n_in, n_out, dtype=dtype, generator=generator) * std, requires_grad=trainable)
        self.has_bias = bool(bias)
        b = torch.randn(n_out, dtype=dtype, generator=generator) if bias else torch.zeros(0, dtype=dtype)
        self.b = nn.Parameter(b, requires_grad=trainable)
        idt = 0.1 + 0.001 * torch.randn(n_out, dtype=dtype, generator=generator)
        self.idt = nn.Parameter(idt if self.has_idt else torch.ones(0, dtype=dtype), requires_grad=trainable)
        self.mixed = False  # set by enable_mixed_precision
        self.compute_dtype = dtype
        self.skip_in_compute = True

    def enable_mixed_precision(self, compute_dtype: torch.dtype, skip_in_compute: bool) -> None:
        """Compute in ``compute_dtype`` from now on (output in the weights' dtype); the skip ``+ x`` is added
        before the cast back (``skip_in_compute``, embedding nets) or after it (fitting nets)."""
        self.mixed = True
        self.compute_dtype = compute_dtype
        self.skip_in_compute = skip_in_compute

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mixed:
            return self._forward_mixed(x)
        if not self.has_bias:
            y = torch.matmul(x, self.w)
        elif x.dim() == 2:
            y = torch.addmm(self.b, x, self.w)
        else:
            y = torch.matmul(x, self.w) + self.b
        y = activate(y, self.activation)
        if self.has_idt:
            y = y * self.idt
        return self._add_skip(y, x)

    def _add_skip(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.skip == 1:
            y = y + x
        elif self.skip == 2:  # y + [x, x] without materialising the concatenation
            y = (y.unflatten(-1, (2, self.n_in)) + x.unsqueeze(-2)).flatten(-2)
        return y

    def _forward_mixed(self, x: torch.Tensor) -> torch.Tensor:
        """The layer with x, w, b, idt cast to ``compute_dtype``; the output cast to the weights' dtype."""
        xc = x.to(self.compute_dtype)
        y = torch.matmul(xc, self.w.to(self.compute_dtype))
        if self.has_bias:
            y = y + self.b.to(self.compute_dtype)
        y = activate(y, self.activation)
        if self.has_idt:
            y = y * self.idt.to(self.compute_dtype)
        if self.skip_in_compute:
            return self._add_skip(y, xc).to(self.w.dtype)
        return self._add_skip(y.to(self.w.dtype), x.to(self.w.dtype))

    @torch.jit.unused
    def serialize(self) -> dict:
        return {
            "@class": "Layer",
            "@version": 2,
            "bias": self.has_bias,
            "use_timestep": self.has_idt,
            "activation_function": self.activation,
            "resnet": self.resnet,
            "precision": precision_name(self.w.dtype),
            "trainable": self.trainable,
            "@variables": {
                "w": self.w.detach().cpu().numpy().copy(),
                "b": self.b.detach().cpu().numpy().copy() if self.has_bias else None,
                "idt": self.idt.detach().cpu().numpy().copy() if self.has_idt else None,
            },
        }

    @classmethod
    def deserialize(cls, data: dict, dtype: torch.dtype) -> "DenseLayer":
        variables = data["@variables"]
        w = np.asarray(variables["w"])
        has_bias = variables.get("b") is not None
        layer = cls(
            w.shape[0],
            w.shape[1],
            data["activation_function"],
            bool(data["resnet"]),
            variables.get("idt") is not None,
            dtype,
            trainable=bool(data.get("trainable", True)),
            bias=has_bias,
        )
        with torch.no_grad():
            layer.w.copy_(torch.as_tensor(w))
            if has_bias:
                layer.b.copy_(torch.as_tensor(np.asarray(variables["b"]).reshape(-1)))
            if layer.has_idt:
                layer.idt.copy_(torch.as_tensor(np.asarray(variables["idt"])))
        return layer


class EmbeddingNet(nn.Module):
    """Stack of ResNet-capable dense layers ``in_dim -> neuron[0] -> ... -> neuron[-1]``."""

    def __init__(
        self,
        in_dim: int,
        neuron: List[int],
        activation: str,
        resnet_dt: bool,
        dtype: torch.dtype,
        generator: Optional[torch.Generator] = None,
        trainable: bool = True,
        bias: bool = True,
    ):
        super().__init__()
        self.in_dim = in_dim
        self.neuron = list(neuron)
        self.activation = activation
        self.resnet_dt = resnet_dt
        self.bias = bool(bias)
        sizes = [in_dim] + list(neuron)
        self.layers = nn.ModuleList(
            DenseLayer(sizes[k], sizes[k + 1], activation, True, resnet_dt, dtype, generator, trainable, bias)
            for k in range(len(neuron))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    @torch.jit.unused
    def enable_mixed_precision(self, compute_dtype: torch.dtype) -> None:
        """Every layer computes in ``compute_dtype``; the residual stream stays in it (DeePMD-kit's embedding_net)."""
        for layer in self.layers:
            layer.enable_mixed_precision(compute_dtype, skip_in_compute=True)

    @torch.jit.unused
    def serialize(self) -> dict:
        return {
            "@class": "EmbeddingNetwork",
            "@version": 2,
            "in_dim": self.in_dim,
            "neuron": list(self.neuron),
            "activation_function": self.activation,
            "resnet_dt": self.resnet_dt,
            "bias": self.bias,
            "precision": precision_name(self.layers[0].w.dtype),
            "layers": [layer.serialize() for layer in self.layers],
        }

    @classmethod
    def deserialize(cls, data: dict, dtype: torch.dtype) -> "EmbeddingNet":
        net = cls(data["in_dim"], data["neuron"], data["activation_function"], data["resnet_dt"], dtype,
                  bias=data.get("bias", True))
        net.layers = nn.ModuleList(DenseLayer.deserialize(layer, dtype) for layer in data["layers"])
        return net


class FittingNet(nn.Module):
    """Embedding-net hidden layers followed by a linear output layer ``neuron[-1] -> out_dim``."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        neuron: List[int],
        activation: str,
        resnet_dt: bool,
        dtype: torch.dtype,
        generator: Optional[torch.Generator] = None,
        trainable: Optional[List[bool]] = None,
    ):
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.neuron = list(neuron)
        self.activation = activation
        self.resnet_dt = resnet_dt
        flags = trainable if trainable is not None else [True] * (len(neuron) + 1)
        sizes = [in_dim] + list(neuron)
        self.layers = nn.ModuleList(
            DenseLayer(sizes[k], sizes[k + 1], activation, True, resnet_dt, dtype, generator, flags[k])
            for k in range(len(neuron))
        )
        self.output = DenseLayer(sizes[-1], out_dim, "none", False, False, dtype, generator, flags[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.output(x)

    @torch.jit.unused
    def enable_mixed_precision(self, compute_dtype: torch.dtype) -> None:
        """Hidden layers compute in ``compute_dtype`` and add their skips in the weights' dtype; the output layer
        stays wholly in the weights' dtype (DeePMD-kit's one_layer with final_layer)."""
        for layer in self.layers:
            layer.enable_mixed_precision(compute_dtype, skip_in_compute=False)

    @torch.jit.unused
    def serialize(self) -> dict:
        return {
            "@class": "FittingNetwork",
            "@version": 1,
            "in_dim": self.in_dim,
            "out_dim": self.out_dim,
            "neuron": list(self.neuron),
            "activation_function": self.activation,
            "resnet_dt": self.resnet_dt,
            "precision": precision_name(self.output.w.dtype),
            "bias_out": True,
            "layers": [layer.serialize() for layer in self.layers] + [self.output.serialize()],
        }

    @classmethod
    def deserialize(cls, data: dict, dtype: torch.dtype) -> "FittingNet":
        net = cls(data["in_dim"], data["out_dim"], data["neuron"], data["activation_function"], data["resnet_dt"], dtype)
        layers = [DenseLayer.deserialize(layer, dtype) for layer in data["layers"]]
        net.layers = nn.ModuleList(layers[:-1])
        net.output = layers[-1]
        return net


class NetworkCollection:
    """(De)serialize a list of networks indexed by type tuples as DeePMD-kit's ``NetworkCollection``.

    With ``ndim`` key types the network for key ``(k0, k1, ...)`` sits at ``sum_k key[k] * ntypes**k``.
    """

    @staticmethod
    def serialize(networks: List[nn.Module], ndim: int, ntypes: int, network_type: str) -> dict:
        return {
            "@class": "NetworkCollection",
            "@version": 1,
            "ndim": ndim,
            "ntypes": ntypes,
            "network_type": network_type,
            "networks": [net.serialize() for net in networks],
        }

    @staticmethod
    def deserialize(data: dict, dtype: torch.dtype) -> List[nn.Module]:
        net_cls = {"embedding_network": EmbeddingNet, "fitting_network": FittingNet}[data["network_type"]]
        expected = data["ntypes"] ** data["ndim"]
        networks = data["networks"]
        if len(networks) != expected or any(net is None for net in networks):
            raise ValueError(f"network collection needs {expected} networks, got {len(networks)}")
        return [net_cls.deserialize(net, dtype) for net in networks]
