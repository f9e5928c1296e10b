"""Neural-network building blocks: dense layers, embedding and fitting nets, per-type collections."""

from deeppot.nn.mlp import DenseLayer, EmbeddingNet, FittingNet, NetworkCollection
from deeppot.nn.precision import resolve_dtype

__all__ = ["DenseLayer", "EmbeddingNet", "FittingNet", "NetworkCollection", "resolve_dtype"]
