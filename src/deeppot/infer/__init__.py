"""Inference with frozen models: DeepPot (numpy in, numpy out) and the ASE calculator."""

from deeppot.infer.deep_pot import DeepPot

__all__ = ["DeepPot"]
