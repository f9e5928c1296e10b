"""Activation functions by DeePMD-kit name. TorchScript-compatible (selected by string)."""

import math

import torch

ACTIVATIONS = ("tanh", "relu", "relu6", "softplus", "sigmoid", "gelu", "gelu_tf", "silu", "none", "linear")

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def activate(x: torch.Tensor, name: str) -> torch.Tensor:
    """Apply the activation ``name``; gelu is the tanh approximation, as in DeePMD-kit."""
    if name == "tanh":
        return torch.tanh(x)
    if name == "relu":
        return torch.relu(x)
    if name == "relu6":
        return torch.clamp(x, 0.0, 6.0)
    if name == "softplus":
        return torch.nn.functional.softplus(x)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "gelu" or name == "gelu_tf":
        return 0.5 * x * (1.0 + torch.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
    if name == "silu":
        return x * torch.sigmoid(x)
    return x
