"""DeePMD-kit's energy loss with learning-rate-scheduled prefactors (spec section 3.13).

``p = limit_pref + (start_pref - limit_pref) * lr / start_lr`` for each term, and
``L = p_e/N mean(dE^2) + p_f mean(dF^2) + p_v/N mean(dW^2)`` (1/N^2 with intensive_ener_virial);
a term is on only if both its prefactors are non-zero (PyTorch backend), and is multiplied by the
batch's ``find_<label>``. Displayed metrics: rmse_e (eV/atom), rmse_f (eV/Angstrom), rmse_v (eV/atom).
"""

from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np
import torch

from deeppot import keys


@dataclass(frozen=True)
class EnergyLoss:
    start_lr: float
    start_pref_e: float = 0.02
    limit_pref_e: float = 1.0
    start_pref_f: float = 1000.0
    limit_pref_f: float = 1.0
    start_pref_v: float = 0.0
    limit_pref_v: float = 0.0
    intensive_ener_virial: bool = False

    @classmethod
    def from_config(cls, config, start_lr: float) -> "EnergyLoss":
        """From the validated ``loss`` section (EnerLossConfig)."""
        names = [f for f in cls.__dataclass_fields__ if f != "start_lr"]
        return cls(start_lr, **{name: getattr(config, name) for name in names})

    @property
    def has_e(self) -> bool:
        return self.start_pref_e != 0.0 and self.limit_pref_e != 0.0

    @property
    def has_f(self) -> bool:
        return self.start_pref_f != 0.0 and self.limit_pref_f != 0.0

    @property
    def has_v(self) -> bool:
        return self.start_pref_v != 0.0 and self.limit_pref_v != 0.0

    def prefactors(self, lr: float) -> Tuple[float, float, float]:
        c = lr / self.start_lr
        return (
            self.limit_pref_e + (self.start_pref_e - self.limit_pref_e) * c,
            self.limit_pref_f + (self.start_pref_f - self.limit_pref_f) * c,
            self.limit_pref_v + (self.start_pref_v - self.limit_pref_v) * c,
        )

    def __call__(
        self, pred: Dict[str, torch.Tensor], label: Dict[str, torch.Tensor], natoms: int, lr: float
    ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Loss (scalar tensor) and displayed metrics for one batch of frames with ``natoms`` atoms each."""
        pref_e, pref_f, pref_v = self.prefactors(lr)
        # DeePMD-kit 3.2 computes 1/N in float32; keep it for numerical parity of the loss
        inv_n = float(np.float32(1.0) / np.float32(natoms))
        norm = inv_n * inv_n if self.intensive_ener_virial else inv_n
        loss = torch.zeros((), dtype=torch.float64)
        metrics: Dict[str, float] = {}
        if self.has_e:
            mse = torch.mean((pred[keys.ENERGY] - label[keys.ENERGY]) ** 2)
            find = float(label[keys.find_key(keys.ENERGY)])
            loss = loss + pref_e * norm * mse * find
            metrics["rmse_e"] = float(mse.detach().sqrt()) / natoms if find else float("nan")
        if self.has_f:
            mse = torch.mean((pred[keys.FORCE] - label[keys.FORCE]) ** 2)
            find = float(label[keys.find_key(keys.FORCE)])
            loss = loss + pref_f * mse * find
            metrics["rmse_f"] = float(mse.detach().sqrt()) if find else float("nan")
        if self.has_v:
            mse = torch.mean((pred[keys.VIRIAL] - label[keys.VIRIAL]) ** 2)
            find = float(label[keys.find_key(keys.VIRIAL)])
            loss = loss + pref_v * norm * mse * find
            metrics["rmse_v"] = float(mse.detach().sqrt()) / natoms if find else float("nan")
        metrics["rmse"] = float(loss.detach().sqrt())
        return loss, metrics
