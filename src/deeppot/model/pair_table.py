"""Tabulated pair energies (DeePMD-kit's ``use_srtab`` table, ``PairTab`` / ``PairTabAtomicModel``).

The table file holds r (Angstrom, a uniform grid) and one pair-energy column (eV) per unordered type pair
(0-0, 0-1, ..., 0-(n-1), 1-1, ...: ntypes * (ntypes + 1) / 2 columns). As DeePMD-kit 3.2 does, the table is
padded with zeros (or extrapolated by a cubic that decays to zero) up to rcut when it ends before rcut, and
each column becomes a clamped cubic spline, stored as per-interval coefficients (a3, a2, a1, a0) in the
variable u = (r - rmin) / hh - floor: E(r) = ((a3 u + a2) u + a1) u + a0. The atomic energy of atom i is
E_i = 1/2 sum_j E_{t_i t_j}(r_ij) over its neighbor slots, zero at r >= rcut and beyond the table.

:class:`PairTableEnergy` is a model component with the slot interface of the descriptors (pair vectors,
slot mask, center and neighbor types), so the same neighbor slots feed it and the DP part.
"""

from __future__ import annotations

import logging
from pathlib import Path
import numpy as np
import torch
from torch import nn

from deeppot.errors import ConfigError

log = logging.getLogger("deeppot")

TABLE_GRID_RTOL = 1e-6  # how far (relative to the first step) a grid step may differ from it


def _read_columns(path: Path, where: str, ntypes: int) -> np.ndarray:
    """The table file as rows x (1 + ntypes (ntypes + 1) / 2) float64, checked; ConfigError naming ``where``."""
    if not path.is_file():
        raise ConfigError(f"{where}: table file {path} not found; give the path of the pair table (relative "
                          "to input.json's folder)")
    try:
        data = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise ConfigError(f"{where}: {path} is not a table of numbers ({exc}); give r and one energy column "
                          "per type pair on each line") from None
    npair = ntypes * (ntypes + 1) // 2
    if data.shape[1] != npair + 1:
        raise ConfigError(f"{where}: {path} has {data.shape[1]} columns, but {ntypes} types need {npair + 1}: r, "
                          f"then one energy column per type pair (0-0, 0-1, ..., 1-1, ...); fix the table or "
                          "model/type_map")
    if data.shape[0] < 3:
        raise ConfigError(f"{where}: {path} has {data.shape[0]} rows; a spline needs at least 3 grid points")
    steps = np.diff(data[:, 0])
    if steps[0] <= 0 or np.max(np.abs(steps - steps[0])) > TABLE_GRID_RTOL * steps[0]:
        raise ConfigError(f"{where}: {path}: the r column is not a uniform increasing grid (first step "
                          f"{steps[0]:g}, steps range {steps.min():g}..{steps.max():g}); DeePMD-kit's table "
                          "lookup needs equal steps")
    return data


def _extend_to_rcut(vdata: np.ndarray, rcut: float) -> np.ndarray:
    """DeePMD-kit's ``PairTab._check_table_upper_boundary``: rows appended up to the grid point after rcut,
    zeros if the table already decays to zero, else a cubic from the last row (slope = last difference per
    step, as DeePMD-kit takes it) to zero with zero slope."""
    rmin, rmax, hh = vdata[0, 0], vdata[-1, 0], vdata[1, 0] - vdata[0, 0]
    last = vdata.shape[0] - 1
    rcut_idx = int(np.ceil(rcut / hh - rmin / hh))
    if rcut <= rmax:
        if np.any(vdata[min(rcut_idx, last) - 1, 1:] != 0) or np.any(vdata[-1, 1:] != 0):
            log.warning("the pair table does not decay to 0 at rcut %g", rcut)
        return vdata
    npad = rcut_idx - last
    pad = np.zeros((npad, vdata.shape[1]))
    pad[:, 0] = np.linspace(rmax + hh, rmax + hh * npad, npad)
    if np.all(vdata[-1, 1:] == 0):
        return np.concatenate((vdata, pad))
    log.warning("rcut %g goes beyond the pair table's last r %g: extrapolating the table to zero", rcut, rmax)
    short_of_end = pad[-1, 0] / hh - rmax / hh >= 2  # then decay to zero one grid point before the last
    end = pad[-2, 0] if short_of_end else pad[-1, 0]
    slope = vdata[-1, 1:] - vdata[-2, 1:]
    width = end - rmax
    t = (pad[:, :1] - rmax) / width  # Hermite cubic from (rmax, value, slope) to (end, 0, 0)
    h00, h10 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t
    pad[:, 1:] = h00 * vdata[-1, 1:] + h10 * width * slope
    return np.concatenate((vdata, pad[:-1] if short_of_end else pad))


def _clamped_spline_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dy/dx at the knots of the cubic spline through (x, y) with zero slope at both ends (scipy's
    ``CubicSpline(bc_type="clamped")``): the tridiagonal system solved by the Thomas algorithm."""
    n = x.shape[0]
    dx = np.diff(x)
    secant = np.diff(y) / dx
    lower, diag, upper, rhs = np.zeros(n), np.ones(n), np.zeros(n), np.zeros(n)
    lower[1:-1], diag[1:-1], upper[1:-1] = dx[1:], 2 * (dx[:-1] + dx[1:]), dx[:-1]
    rhs[1:-1] = 3 * (dx[1:] * secant[:-1] + dx[:-1] * secant[1:])
    for i in range(1, n):  # forward elimination
        factor = lower[i] / diag[i - 1]
        diag[i] -= factor * upper[i - 1]
        rhs[i] -= factor * rhs[i - 1]
    slope = np.zeros(n)
    slope[-1] = rhs[-1] / diag[-1]
    for i in range(n - 2, -1, -1):
        slope[i] = (rhs[i] - upper[i] * slope[i + 1]) / diag[i]
    return slope


def spline_coefficients(vdata: np.ndarray, ntypes: int) -> np.ndarray:
    """Per-interval cubic coefficients ntypes x ntypes x nspline x 4 (a3, a2, a1, a0; eV) of each pair column
    of the (extended) table vdata (rows x (1 + npair)), symmetric in the two types."""
    x, hh = vdata[:, 0], vdata[1, 0] - vdata[0, 0]
    nspline = vdata.shape[0] - 1
    coef = np.zeros((ntypes, ntypes, nspline, 4))
    column = 1
    for t0 in range(ntypes):
        for t1 in range(t0, ntypes):
            v = vdata[:, column]
            d = _clamped_spline_slopes(x, v) * hh
            block = np.stack([2 * v[:-1] - 2 * v[1:] + d[:-1] + d[1:],
                              -3 * v[:-1] + 3 * v[1:] - 2 * d[:-1] - d[1:], d[:-1], v[:-1]], axis=-1)
            coef[t0, t1] = coef[t1, t0] = block
            column += 1
    return coef


def pair_distance(rij: torch.Tensor, nei_mask: torch.Tensor) -> torch.Tensor:
    """|rij| (nf x nloc x nnei, Angstrom) with a finite gradient everywhere: padded slots read 1."""
    r2 = (rij * rij).sum(dim=-1)
    return torch.sqrt(torch.where(nei_mask, r2, torch.ones_like(r2)))


class PairTableEnergy(nn.Module):
    """Atomic energies (eV) of a tabulated pair potential on neighbor slots; DeePMD-kit's ``pairtab`` model.

    Buffers: ``tab_data`` ntypes x ntypes x nspline x 4 (spline coefficients), ``vdata`` the extended table
    (rows x (1 + npair), kept for DeePMD-kit's dict). Both are persistent, so checkpoints and frozen files
    carry the table; loading a state dict takes the stored table's size.
    """

    def __init__(self, vdata: np.ndarray, tab_data: np.ndarray, rcut: float, sel: int, rmax: float):
        super().__init__()
        self.rcut = float(rcut)
        self.sel = int(sel)
        self.rmax = float(rmax)  # Angstrom, the last r of the file's table (before extension)
        self.register_buffer("vdata", torch.as_tensor(np.asarray(vdata, dtype=np.float64)))
        self.register_buffer("tab_data", torch.as_tensor(np.asarray(tab_data, dtype=np.float64)))
        self._set_grid()

    def _set_grid(self) -> None:
        vdata = self.vdata.detach().cpu().numpy()
        self.ntypes = int(self.tab_data.shape[0])
        self.nspline = int(self.tab_data.shape[2])
        self.rmin = float(vdata[0, 0]) if vdata.shape[0] else 0.0
        self.hh = float(vdata[1, 0] - vdata[0, 0]) if vdata.shape[0] > 1 else 1.0

    @classmethod
    @torch.jit.unused
    def from_file(cls, path: Path, ntypes: int, rcut: float, sel: int, where: str) -> "PairTableEnergy":
        """The table of file ``path`` for ``ntypes`` types, extended to rcut (Angstrom); ``where`` names the
        input.json key in errors."""
        raw = _read_columns(Path(path), where, ntypes)
        vdata = _extend_to_rcut(raw, rcut)
        return cls(vdata, spline_coefficients(vdata, ntypes), rcut, sel, float(raw[-1, 0]))

    @classmethod
    @torch.jit.unused
    def placeholder(cls, ntypes: int, rcut: float, sel: int) -> "PairTableEnergy":
        """An empty table, filled by ``load_state_dict`` (a checkpoint carries the table, not its file)."""
        return cls(np.zeros((0, 1 + ntypes * (ntypes + 1) // 2)), np.zeros((ntypes, ntypes, 0, 4)), rcut, sel, 0.0)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        for name in ("vdata", "tab_data"):
            stored = state_dict.get(prefix + name)
            if stored is not None and stored.shape != getattr(self, name).shape:
                setattr(self, name, torch.empty_like(stored, dtype=torch.float64))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        self._set_grid()

    def forward(self, r: torch.Tensor, nei_mask: torch.Tensor, atype: torch.Tensor,
                nei_type: torch.Tensor) -> torch.Tensor:
        """Atomic energies nf x nloc (eV) from distances r (nf x nloc x nnei, Angstrom), slot mask, center types
        atype (nf x nloc, >= 0) and neighbor types nei_type (nf x nloc x nnei, -1 for padding)."""
        if self.nspline == 0:
            raise RuntimeError("the pair table is empty: load the model's state (a checkpoint) into it first")
        uu = (r - self.rmin) / self.hh
        uu = torch.where(nei_mask, uu, torch.full_like(uu, float(self.nspline + 1)))
        idx = uu.detach().to(torch.int64)  # truncation towards zero, as DeePMD-kit's astype
        uu = uu - idx.to(uu.dtype)
        tj = nei_type.clamp(min=0)
        flat = (atype.unsqueeze(-1) * self.ntypes + tj) * self.nspline + idx.clamp(0, self.nspline - 1)
        coef = self.tab_data.reshape(-1, 4)[flat.reshape(-1)].reshape(r.shape[0], r.shape[1], r.shape[2], 4)
        energy = ((coef[..., 0] * uu + coef[..., 1]) * uu + coef[..., 2]) * uu + coef[..., 3]
        outside = (idx > self.nspline) | (r >= self.rcut) | (r >= self.rmin + self.nspline * self.hh) | ~nei_mask
        return 0.5 * torch.where(outside, torch.zeros_like(energy), energy).sum(dim=-1)

    @torch.jit.unused
    def serialize(self, type_map) -> dict:
        """DeePMD-kit's ``pairtab`` atomic-model dict (its ``PairTab`` under ``tab``); no output statistics of
        its own (a DP/ZBL model applies one bias to the blend)."""
        ntypes = self.ntypes
        zeros = np.zeros((1, ntypes, 1))
        return {
            "@class": "Model", "type": "pairtab", "@version": 2,
            "type_map": list(type_map), "atom_exclude_types": [], "pair_exclude_types": [], "rcond": None,
            "preset_out_bias": None, "rcut": self.rcut, "sel": self.sel,
            "@variables": {"out_bias": zeros, "out_std": np.ones_like(zeros)},
            "tab": {
                "@class": "PairTab", "@version": 1, "rmin": self.rmin, "rmax": self.rmax, "hh": self.hh,
                "ntypes": ntypes, "rcut": self.rcut, "nspline": self.nspline,
                "@variables": {
                    "vdata": self.vdata.detach().cpu().numpy().copy(),
                    "tab_info": np.array([self.rmin, self.hh, float(self.nspline), float(ntypes)]),
                    "tab_data": self.tab_data.detach().cpu().numpy().reshape(-1).copy(),
                },
            },
        }

    @classmethod
    @torch.jit.unused
    def deserialize(cls, data: dict) -> "PairTableEnergy":
        """From DeePMD-kit's ``pairtab`` atomic-model dict."""
        tab = data["tab"]
        ntypes, nspline = int(tab["ntypes"]), int(tab["nspline"])
        tab_data = np.asarray(tab["@variables"]["tab_data"], dtype=np.float64).reshape(ntypes, ntypes, nspline, 4)
        return cls(np.asarray(tab["@variables"]["vdata"]), tab_data, float(data["rcut"]), int(data["sel"]),
                   float(tab["rmax"]))


def softmin_switch(r: torch.Tensor, nei_mask: torch.Tensor, alpha: float, rmin: float,
                   rmax: float) -> torch.Tensor:
    """DeePMD-kit's DP/ZBL weight of the table, nf x nloc: the soft-min neighbor distance
    sigma = sum_j r_j exp(-r_j/alpha) / sum_j exp(-r_j/alpha) (Angstrom) switched by
    s = 1 (sigma < rmin), 1 - 10u^3 + 15u^4 - 6u^5 with u = (sigma - rmin)/(rmax - rmin), 0 (sigma >= rmax);
    0 for an atom without neighbors."""
    weight = torch.where(nei_mask, torch.exp(-r / alpha), torch.zeros_like(r))
    denominator = weight.sum(dim=-1)
    lonely = denominator == 0
    sigma = (r * weight).sum(dim=-1) / torch.where(lonely, torch.ones_like(denominator), denominator)
    u = ((sigma - rmin) / (rmax - rmin)).clamp(0.0, 1.0)
    smooth = 1 - 10 * u**3 + 15 * u**4 - 6 * u**5
    return torch.where(lonely, torch.zeros_like(smooth), smooth)



def resolve_table_file(model_config, folder: Path) -> None:
    """Make model/use_srtab absolute against ``folder`` (input.json's), in place, and check the file (exists,
    one column per type pair, uniform grid) before any work starts; ConfigError otherwise."""
    if model_config.use_srtab is None:
        return
    path = Path(model_config.use_srtab)
    path = (path if path.is_absolute() else Path(folder) / path).resolve()
    _read_columns(path, f"model/use_srtab ({model_config.use_srtab!r})", len(model_config.type_map))
    model_config.use_srtab = str(path)
