"""Fitting networks, registered by DeePMD-kit type name (the same names as the config's ``FITTINGS``)."""

from deeppot.fitting.base import GeneralFitting
from deeppot.fitting.dipole import DipoleFitting
from deeppot.fitting.energy import EnergyFitting
from deeppot.fitting.polar import PolarFitting

FITTINGS = {"ener": EnergyFitting, "dipole": DipoleFitting, "polar": PolarFitting}
"""DeePMD-kit fitting type -> fitting class."""

__all__ = ["FITTINGS", "DipoleFitting", "EnergyFitting", "GeneralFitting", "PolarFitting"]
