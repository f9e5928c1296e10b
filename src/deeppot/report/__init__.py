"""Figures and reference text made from deeppot's outputs: learning curves, parity plots, the input.json keys."""
