"""Activation functions by DeePMD-kit name. TorchScript-compatible (selected by string)."""

import torch

ACTIVATIONS = ("tanh", "relu", "relu6", "softplus", "sigmoid", "gelu", "gelu_tf", "silu", "none", "linear")


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
        return 0.5 * x * (1.0 + torch.tanh(0.7978845608028654 * (  # sqrt(2/pi)
                x + 0.044715 * x * x * x)))
    if name == "silu":
        return x * torch.sigmoid(x)
    return x
