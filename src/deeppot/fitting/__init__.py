"""Fitting networks, registered by DeePMD-kit type name."""

from deeppot.fitting.energy import EnergyFitting

FITTINGS = {"ener": EnergyFitting}

__all__ = ["FITTINGS", "EnergyFitting"]
