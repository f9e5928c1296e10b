"""The ``model/modifier`` section (DeePMD-kit's data modifier): a term outside the fitted model that training
takes out of the labels and evaluation adds back. Only ``dipole_charge`` (DPLR) exists.

``model_name`` is resolved against the folder of input.json by :func:`resolve_modifier_path` (``load_input``),
so checkpoints and out.json hold an absolute path.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Literal

from pydantic import Field, field_validator

from deeppot.config.base import Section, TypeRegistry


class DipoleChargeModifierConfig(Section):
    """DPLR (``type`` "dipole_charge"): ions and Wannier centroids in a reciprocal-space Ewald sum."""

    type: Literal["dipole_charge"] = "dipole_charge"
    """Modifier type."""
    model_name: str
    """The frozen dipole model (deeppot freeze of a dipole fitting) that predicts the Wannier centroids;
    relative to input.json's folder."""
    model_charge_map: list[float]
    """Charge (e) of the Wannier centroid of each type the dipole model selects (its sel_type), in that order."""
    sys_charge_map: list[float]
    """Charge (e) of the ion of each type of model/type_map."""
    ewald_beta: Annotated[float, Field(gt=0)] = 0.4
    """Ewald splitting parameter, Angstrom^-1."""
    ewald_h: Annotated[float, Field(gt=0)] = 1.0
    """Grid spacing of the reciprocal Ewald sum, Angstrom (K = ceil(box length / ewald_h), made even)."""

    @field_validator("model_charge_map", "sys_charge_map")
    @classmethod
    def _not_empty(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("is empty; give one charge (e) per type")
        return value

    @field_validator("model_name")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty; give the path of the frozen dipole model")
        return value


MODIFIERS = TypeRegistry(
    what="modifier",
    classes={"dipole_charge": DipoleChargeModifierConfig},
)
"""Modifier types accepted in ``model/modifier/type``."""


def resolve_modifier_path(modifier: DipoleChargeModifierConfig | None, folder: FilePath) -> None:
    """Make a relative ``model_name`` absolute against ``folder`` (input.json's), in place."""
    if modifier is not None and not FilePath(modifier.model_name).is_absolute():
        modifier.model_name = str((FilePath(folder) / modifier.model_name).resolve())
