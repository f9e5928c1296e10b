"""The ``loss`` section: the energy loss ``ener`` and the tensor loss ``tensor`` (dipole, polarizability).

Energy-loss prefactors weight each term of the loss; each is interpolated from its ``start_pref_*``
value at the start learning rate to its ``limit_pref_*`` value as the learning rate decays. The tensor
loss has constant prefactors.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from deeppot.config.base import Section, TypeRegistry
from deeppot.config.messages import SectionProblems, show

Pref = Annotated[float, Field(ge=0)]


def _check_huber_delta(value: Any) -> Any:
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0

    if number(value) or (isinstance(value, list) and len(value) == 3 and all(number(v) for v in value)):
        return value
    raise ValueError(f"expected a positive number or a list of three [energy, force, virial] deltas, got {show(value)}")


class EnerLossConfig(Section):
    """Weighted sum of energy, force, virial and optional per-atom terms."""

    type: Literal["ener"] = "ener"
    """Loss type."""
    start_pref_e: Pref = 0.02
    """Energy prefactor at the start of training."""
    limit_pref_e: Pref = 1.0
    """Energy prefactor at the end of training."""
    start_pref_f: Pref = 1000.0
    """Force prefactor at the start of training."""
    limit_pref_f: Pref = 1.0
    """Force prefactor at the end of training."""
    start_pref_v: Pref = 0.0
    """Virial prefactor at the start of training."""
    limit_pref_v: Pref = 0.0
    """Virial prefactor at the end of training."""
    start_pref_ae: Pref = 0.0
    """Atomic-energy prefactor (labels in atom_ener.npy) at the start of training."""
    limit_pref_ae: Pref = 0.0
    """Atomic-energy prefactor at the end of training."""
    start_pref_pf: Pref = 0.0
    """Atom-prefactor-weighted force prefactor (weights in atom_pref.npy) at the start of training."""
    limit_pref_pf: Pref = 0.0
    """Atom-prefactor-weighted force prefactor at the end of training."""
    use_default_pf: bool = False
    """Use atom_pref 1.0 for systems without atom_pref.npy."""
    relative_f: float | None = Field(None, gt=0)
    """If set, force errors are divided by (|F| + relative_f), with relative_f in eV/Angstrom."""
    enable_atom_ener_coeff: bool = False
    """Weight atomic energies by atom_ener_coeff.npy when summing the energy."""
    start_pref_gf: Pref = 0.0
    """Generalized-force prefactor (drdq.npy) at the start of training."""
    limit_pref_gf: Pref = 0.0
    """Generalized-force prefactor at the end of training."""
    numb_generalized_coord: int = Field(0, ge=0)
    """Number of generalized coordinates; must be > 0 to use the generalized-force term."""
    start_pref_h: Pref = 0.0
    """Hessian prefactor (hessian.npy) at the start of training."""
    limit_pref_h: Pref = 0.0
    """Hessian prefactor at the end of training."""
    use_huber: bool = False
    """Use the Huber loss instead of the squared error."""
    huber_delta: Annotated[float | list[float], BeforeValidator(_check_huber_delta)] = 0.01
    """Huber threshold: one value, or [energy, force, virial]."""
    loss_func: Literal["mse", "mae"] = "mse"
    """Error measure: mean squared ("mse") or mean absolute ("mae") error."""
    f_use_norm: bool = False
    """Use the norm of the force error vector (only with Huber or MAE)."""
    intensive_ener_virial: bool = False
    """Normalize energy and virial terms by 1/N^2 instead of 1/N."""


class TensorLossConfig(Section):
    """Squared error of the atomic and of the global tensor of a dipole or polar model (DeePMD-kit's
    ``TensorLoss``): ``pref_atomic * mean |T_i - T_i^label|^2 + pref * mean |T - T^label|^2``."""

    type: Literal["tensor"] = "tensor"
    """Loss type."""
    pref: Pref
    """Weight of the global tensor term (labels in dipole.npy / polarizability.npy); 0 switches it off."""
    pref_atomic: Pref
    """Weight of the atomic tensor term (labels in atomic_dipole.npy / atomic_polarizability.npy)."""
    enable_atomic_weight: bool = False
    """Weight the atomic term by atomic_weight.npy."""

    @model_validator(mode="after")
    def _check_some_weight(self) -> TensorLossConfig:
        if self.pref == 0 and self.pref_atomic == 0:
            raise SectionProblems([(("pref",), "pref and pref_atomic are both 0; give at least one a positive weight")])
        return self


LossConfig = EnerLossConfig | TensorLossConfig

LOSSES = TypeRegistry(
    what="loss",
    classes={"ener": EnerLossConfig, "tensor": TensorLossConfig},
    default="ener",
    unsupported=("ener_hess", "dos", "property", "ener_spin", "dens", "population"),
)
"""Loss types accepted in ``loss/type``."""
