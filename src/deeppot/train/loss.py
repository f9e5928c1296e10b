"""Training losses, picked by the ``loss`` section's type (:func:`build_loss`).

``ener``: DeePMD-kit's energy loss with learning-rate-scheduled prefactors (spec section 3.13).

``p = limit_pref + (start_pref - limit_pref) * lr / start_lr`` for each term, and
``L = p_e/N mean(dE^2) + p_f mean(dF^2) + p_v/N mean(dW^2)`` (1/N^2 with intensive_ener_virial);
a term is on only if both its prefactors are non-zero (PyTorch backend), and is multiplied by the
batch's ``find_<label>``. Displayed metrics: rmse_e (eV/atom), rmse_f (eV/Angstrom), rmse_v (eV/atom).

``tensor``: DeePMD-kit's ``TensorLoss`` for dipole and polar models (see :class:`TensorLoss`).

Every loss is called as ``loss(pred, label, natoms, lr) -> (scalar loss, {metric: float})`` and names its
displayed metrics in ``metric_names`` (the lcurve.out columns).
"""

from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np
import torch

from deeppot import keys
from deeppot.errors import ConfigError


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
    def from_config(cls, config, start_lr: float, model=None) -> "EnergyLoss":
        """From the validated ``loss`` section (EnerLossConfig); ``model`` is not needed."""
        names = [f for f in cls.__dataclass_fields__ if f != "start_lr"]
        return cls(start_lr, **{name: getattr(config, name) for name in names})

    @property
    def metric_names(self) -> List[str]:
        """``rmse`` and the rmse of each term that is on."""
        return ["rmse"] + [n for n, on in (("rmse_e", self.has_e), ("rmse_f", self.has_f), ("rmse_v", self.has_v)) if on]

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
        loss, mses = self.weighted(pred, label, natoms, self.prefactors(lr))
        return loss, self.metrics(loss, mses, label, natoms)

    def weighted(
        self, pred: Dict[str, torch.Tensor], label: Dict[str, torch.Tensor], natoms: int, prefactors: Tuple
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """The loss (scalar tensor) and the mean squared error of each term that is on ({label name: mse}),
        with ``prefactors`` (p_e, p_f, p_v) as from :meth:`prefactors` (floats, or 0-d tensors in a compiled
        step, deeppot.train.step); no Python number is read from a tensor here."""
        pref_e, pref_f, pref_v = prefactors
        # DeePMD-kit 3.2 computes 1/N in float32; keep it for numerical parity of the loss
        inv_n = float(np.float32(1.0) / np.float32(natoms))
        norm = inv_n * inv_n if self.intensive_ener_virial else inv_n
        loss = torch.zeros((), dtype=torch.float64, device=pred[keys.ENERGY].device)
        mses: Dict[str, torch.Tensor] = {}
        for name, on, pref, scale in ((keys.ENERGY, self.has_e, pref_e, norm), (keys.FORCE, self.has_f, pref_f, 1.0),
                                      (keys.VIRIAL, self.has_v, pref_v, norm)):
            if on:
                mses[name] = torch.mean((pred[name] - label[name]) ** 2)
                loss = loss + pref * scale * mses[name] * float(label[keys.find_key(name)])
        return loss, mses

    @staticmethod
    def metrics(loss: torch.Tensor, mses: Dict[str, torch.Tensor], label: Dict, natoms: int) -> Dict[str, float]:
        """rmse_e and rmse_v per atom, rmse_f, NaN for a label the batch lacks, and rmse = sqrt(loss)."""
        metrics: Dict[str, float] = {}
        for name, metric, per in ((keys.ENERGY, "rmse_e", natoms), (keys.FORCE, "rmse_f", 1), (keys.VIRIAL, "rmse_v", natoms)):
            if name in mses:
                find = float(label[keys.find_key(name)])
                metrics[metric] = float(mses[name].detach().sqrt()) / per if find else float("nan")
        metrics["rmse"] = float(loss.detach().sqrt())
        return metrics


@dataclass(frozen=True)
class TensorLoss:
    """DeePMD-kit's ``TensorLoss``: ``L = pref_atomic * find_atomic * mean_(frames, atoms, components)
    (T_i - T_i^label)^2 + pref * find_global * mean_(frames, components) (T - T^label)^2`` with T the model's
    atomic tensor (all N atoms; excluded types predict and are labelled 0) and T = sum_i T_i. A term is on when
    its prefactor is > 0. Metrics: ``rmse_local_<name>`` = sqrt of the atomic mean and ``rmse_global_<name>``
    = sqrt of the global mean / N, NaN for a batch without that label."""

    tensor_name: str  # the model's output name: "dipole" or "polar"
    label_name: str  # the global label: "dipole" or "polarizability" (atomic: "atom_" + label_name)
    pref: float
    pref_atomic: float

    @classmethod
    def from_config(cls, config, start_lr: float, model) -> "TensorLoss":
        """From the validated ``loss`` section (TensorLossConfig) and the tensor model it trains (its output
        and label names); ``start_lr`` is not needed."""
        if config.enable_atomic_weight:
            raise ConfigError("loss/enable_atomic_weight: not supported by deeppot yet; remove it or set it to false")
        return cls(model.output_name, model.label_name, config.pref, config.pref_atomic)

    @property
    def metric_names(self) -> List[str]:
        return ([f"rmse_global_{self.tensor_name}"] if self.pref > 0 else []) + (
            [f"rmse_local_{self.tensor_name}"] if self.pref_atomic > 0 else [])

    def __call__(
        self, pred: Dict[str, torch.Tensor], label: Dict[str, torch.Tensor], natoms: int, lr: float
    ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Loss (scalar tensor) and metrics for one batch of frames with ``natoms`` atoms each; ``lr`` unused."""
        loss = torch.zeros((), dtype=torch.float64)
        metrics: Dict[str, float] = {}
        terms = ((self.pref_atomic, "atom_" + self.label_name, self.tensor_name, "rmse_local_", 1.0),
                 (self.pref, self.label_name, "global_" + self.tensor_name, "rmse_global_", 1.0 / natoms))
        for pref, label_key, pred_key, metric, norm in terms:
            if pref <= 0:
                continue
            find = float(label.get(keys.find_key(label_key), 0.0))
            if not find or label_key not in label:  # weight 0, as DeePMD-kit's find = 0 (the graph is kept)
                loss = loss + 0.0 * pred[pred_key].sum()
                metrics[metric + self.tensor_name] = float("nan")
                continue
            mse = torch.mean((pred[pred_key] - label[label_key].reshape(pred[pred_key].shape)) ** 2)
            loss = loss + pref * mse
            metrics[metric + self.tensor_name] = float(mse.detach().sqrt()) * norm
        return loss, metrics


LOSSES = {"ener": EnergyLoss, "tensor": TensorLoss}
"""Loss type (the ``loss`` section's ``type``) -> loss class."""


def build_loss(config, start_lr: float, model):
    """The loss of the validated ``loss`` section for ``model``."""
    return LOSSES[config.type].from_config(config, start_lr, model)
