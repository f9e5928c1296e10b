"""deeppot: Deep Potential models (DeePMD-kit compatible) on PyTorch."""

__version__ = "0.1.0"
