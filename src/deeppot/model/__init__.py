"""Models: descriptor + fitting -> energy, forces, virial; serialization."""

from deeppot.model.energy_model import EnergyModel

__all__ = ["EnergyModel"]
