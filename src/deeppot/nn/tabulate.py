"""Tabulated one-dimensional embedding nets: piecewise fifth-order polynomials (spec section 6).

A net ``G: R -> R^M`` of a scalar input x is replaced on a uniform grid by quintic Hermite pieces: on the
interval ``[x_l, x_l + h]`` with ``t = x - x_l``,
``G(x) = c0 + c1 t + c2 t^2 + c3 t^3 + c4 t^4 + c5 t^5``, where the six coefficients match the value,
first and second derivative of G at both ends (``dy = y(x_l + h) - y(x_l)``):

    c0 = y0,   c1 = y0',   c2 = y0''/2,
    c3 = [20 dy - (8 y1' + 12 y0') h - (3 y0'' - y1'') h^2] / (2 h^3)
    c4 = [-30 dy + (14 y1' + 16 y0') h + (3 y0'' - 2 y1'') h^2] / (2 h^4)
    c5 = [12 dy - 6 (y1' + y0') h + (y1'' - y0'') h^2] / (2 h^5)

Two grids, as DeePMD-kit: ``[lower, upper]`` with stride ``stride0`` and ``[upper, extrapolate * upper]``
with stride ``stride1`` (10 x stride0 by default). A two-sided table (se_e3, whose input is a signed angle
product) also has ``[-max, lower]`` with stride ``stride1`` in front, as DeePMD-kit's se_t tables. Outside
``[bottom, max]`` the table continues linearly with the slope at its end (C1, as DeePMD-kit 3.2's reference
implementation). Every evaluation is a polynomial in torch operations, so autograd gives its exact
derivative (forces of a compressed model).

Tables are stored as DeePMD-kit stores them: per net an array ``nspline x (6 M)`` interleaved
``[m * 6 + k]`` and a table info ``[lower, upper, max, stride0, stride1, check_frequency]``.
"""

import math
import warnings
from typing import Callable, List, Tuple

import numpy as np
import torch
from torch import nn

from deeppot.geometry.env_mat import smooth_weight

# first / second derivatives are taken with forward-mode AD, so any activation of the net works
NetFunction = Callable[[torch.Tensor], torch.Tensor]


def _values_and_derivatives(net: NetFunction, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """G, dG/dx, d2G/dx2 of a net mapping N x 1 -> N x M at the N points x (each row independent)."""
    ones = torch.ones_like(x)

    def first(points: torch.Tensor) -> torch.Tensor:
        return torch.func.jvp(net, (points,), (ones,))[1]

    with torch.no_grad():
        value = net(x)
        slope, curvature = torch.func.jvp(first, (x,), (ones,))
    return value, slope, curvature


def grid(
    lower: float, upper: float, extrapolate: float, stride0: float, stride1: float, two_sided: bool = False
) -> Tuple[np.ndarray, int, int]:
    """Grid points (nspline + 1) of the tables, the number of first-table intervals and of intervals below it.

    The first table has ``ceil((upper - lower)/stride0)`` intervals from ``lower`` (at least one; it ends at
    upper when the stride divides the range, as for the default 0.01 and integer bounds), the second enough
    intervals of ``stride1`` from the first table's end to reach ``extrapolate * upper`` (at least one), ending
    at ``max``. ``two_sided``: as many intervals of ``stride1`` again below ``lower``, from ``-max`` (the
    se_e3 tables; the range is symmetric there, lower = -upper). Without, none below.
    """
    n_first = max(1, int(math.ceil((upper - lower) / stride0 - 1e-6)))
    first_end = lower + n_first * stride0
    n_second = max(1, int(math.ceil((extrapolate * upper - first_end) / stride1 - 1e-6)))
    top = first_end + stride1 * n_second
    bottom, n_below = table_bottom(lower, top, stride1, two_sided)
    points = np.concatenate([bottom + stride1 * np.arange(n_below), lower + stride0 * np.arange(n_first),
                             first_end + stride1 * np.arange(n_second + 1)])
    return points, n_first, n_below


def table_bottom(lower: float, top: float, stride1: float, two_sided: bool) -> Tuple[float, int]:
    """(first grid point, intervals below ``lower``): (-top, round((lower + top)/stride1)) for a two-sided
    table, (lower, 0) otherwise. The last interval below ``lower`` ends exactly at ``lower``."""
    if not two_sided:
        return lower, 0
    return -top, max(1, int(round((lower + top) / stride1)))


def quintic_coefficients(
    y: np.ndarray, dy: np.ndarray, d2y: np.ndarray, steps: np.ndarray
) -> np.ndarray:
    """Coefficients (nspline x 6 x M) of the Hermite quintics between consecutive grid points.

    y, dy, d2y: (nspline + 1) x M values and derivatives at the grid points; steps: nspline interval widths.
    """
    h = steps[:, None]
    y0, y1, d0, d1, s0, s1 = y[:-1], y[1:], dy[:-1], dy[1:], d2y[:-1], d2y[1:]
    rise = y1 - y0
    c3 = (20 * rise - (8 * d1 + 12 * d0) * h - (3 * s0 - s1) * h**2) / (2 * h**3)
    c4 = (-30 * rise + (14 * d1 + 16 * d0) * h + (3 * s0 - 2 * s1) * h**2) / (2 * h**4)
    c5 = (12 * rise - 6 * (d1 + d0) * h + (s1 - s0) * h**2) / (2 * h**5)
    return np.stack([y0, d0, 0.5 * s0, c3, c4, c5], axis=1)


def tabulate_net(
    net: NetFunction,
    lower: float,
    upper: float,
    extrapolate: float,
    stride0: float,
    stride1: float,
    check_frequency: int,
    dtype: torch.dtype,
    two_sided: bool = False,
) -> Tuple[np.ndarray, np.ndarray]:
    """DeePMD-kit's (table data ``nspline x 6M``, table info ``6``) of a one-input net."""
    points, n_first, n_below = grid(lower, upper, extrapolate, stride0, stride1, two_sided)
    steps = np.diff(points)
    value, slope, curvature = _values_and_derivatives(net, torch.as_tensor(points, dtype=dtype).reshape(-1, 1))
    coefficients = quintic_coefficients(
        value.double().numpy(), slope.double().numpy(), curvature.double().numpy(), steps
    )  # nspline x 6 x M
    data = coefficients.transpose(0, 2, 1).reshape(len(steps), -1)  # interleaved [m * 6 + k]
    first_end = points[n_below + n_first]
    info = np.array([lower, first_end, points[-1], stride0, stride1, check_frequency], dtype=np.float64)
    return data, info


def radial_input_bounds(
    davg_r: np.ndarray, dstd_r: np.ndarray, min_nbor_dist: float, rcut_smth: float, rcut: float
) -> Tuple[np.ndarray, np.ndarray]:
    """Table bounds per center type for nets fed the normalised radial column s = (w(r)/r - davg_r)/dstd_r.

    lower = floor(-davg_r/dstd_r) (a padded slot, r -> infinity), upper = ceil((w(d)/d - davg_r)/dstd_r) with
    d = min_nbor_dist (Angstrom), the largest s the training data reach (spec section 6).
    davg_r, dstd_r: ntypes (the statistics are the same for every slot of a center type).
    """
    switch = float(smooth_weight(torch.tensor(float(min_nbor_dist), dtype=torch.float64), rcut_smth, rcut))
    lower = np.floor(-davg_r / dstd_r)
    upper = np.ceil((switch / min_nbor_dist - davg_r) / dstd_r)
    return lower, upper


def angle_product_bound(dstd_a: np.ndarray, min_nbor_dist: float, rcut_smth: float, rcut: float) -> float:
    """Table bound of se_e3's input theta = a_j . a_k, the product of two normalised angular parts
    a = (w(r)/r) r_hat / dstd_a (davg_a = 0): |theta| <= (w(d)/(d dstd_a))^2 with d = min_nbor_dist (Angstrom),
    w(r)/r being largest there. Returns ceil of the largest over center types (the table is [-bound, bound],
    spec section 6). dstd_a: ntypes (the smallest angular dstd of each center type)."""
    switch = float(smooth_weight(torch.tensor(float(min_nbor_dist), dtype=torch.float64), rcut_smth, rcut))
    return float(np.ceil(np.max((switch / (min_nbor_dist * np.asarray(dstd_a))) ** 2)))


class EmbeddingTables(nn.Module):
    """The tables of several nets of one descriptor, evaluated by net index. TorchScript-compatible.

    ``coefficients``: all tables stacked, rows x 6 x M; net k owns rows ``offsets[k] .. offsets[k] + rows[k]``:
    ``n_below[k]`` intervals of stride1 from ``bottom[k]`` (two-sided tables only), ``n_first[k]`` of stride0
    from lower, then stride1 from upper. No nets (empty lists): an uncompressed descriptor's placeholder.
    """

    rows: List[int]  # table rows (intervals) of each net
    offsets: List[int]  # first row of each net in ``coefficients``
    info: List[List[float]]  # DeePMD-kit's table info of each net
    n_first: List[int]  # first-table intervals of each net
    n_below: List[int]  # intervals below lower of each net (0 unless two-sided)
    bottom: List[float]  # first grid point of each net (lower unless two-sided)

    def __init__(
        self, data: List[np.ndarray], info: List[np.ndarray], width: int, dtype: torch.dtype, two_sided: bool = False
    ):
        super().__init__()
        blocks = [np.asarray(d, dtype=np.float64).reshape(d.shape[0], width, 6).transpose(0, 2, 1) for d in data]
        table = np.concatenate(blocks) if blocks else np.zeros((0, 6, width))
        # not in state_dict: checkpoints and uncompressed models do not carry tables
        self.register_buffer("coefficients", torch.as_tensor(table).to(dtype).contiguous(), persistent=False)
        self.width = width
        self.two_sided = two_sided
        self.rows = [int(d.shape[0]) for d in data]
        self.offsets = [int(x) for x in np.cumsum([0] + self.rows[:-1])]
        self.info = [[float(v) for v in i] for i in info]
        self.n_first = [int(round((i[1] - i[0]) / i[3])) for i in self.info]  # first table's width / stride0
        below = [table_bottom(i[0], i[2], i[4], two_sided) for i in self.info]
        self.bottom = [float(b) for b, _ in below]
        self.n_below = [int(n) for _, n in below]
        self.check_frequency = int(self.info[0][5]) if self.info else -1
        self.calls = 0

    @torch.jit.unused
    def serialize(self) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """(table data, table info) per net, DeePMD-kit's layout."""
        table = self.coefficients.detach().double().cpu().numpy()
        data = [
            table[o : o + r].transpose(0, 2, 1).reshape(r, 6 * self.width) for o, r in zip(self.offsets, self.rows)
        ]
        return data, [np.asarray(i, dtype=np.float64) for i in self.info]

    def _locate(self, k: int, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Global table rows (long, shape of x) and polynomial basis (x.shape + (6,)) of inputs x to net k.

        Basis = [1, t, t^2, t^3, t^4, t^5] + d [0, 1, 2t, 3t^2, 4t^3, 5t^4], t the offset in the interval and
        d the distance beyond the table's ends (0 inside), which continues the table linearly.
        """
        lower, upper, top, stride0, stride1 = self.info[k][0], self.info[k][1], self.info[k][2], self.info[k][3], \
            self.info[k][4]
        bottom, n_below, n_first = self.bottom[k], self.n_below[k], self.n_first[k]
        inside = x.clamp(bottom, top).detach()
        below = ((inside - bottom) / stride1).floor().clamp(max=max(n_below - 1, 0))
        first = n_below + ((inside - lower) / stride0).floor()
        second = (n_below + n_first) + ((inside - upper) / stride1).floor()
        position = torch.where(inside < lower, below, torch.where(inside < upper, first, second))
        row = position.clamp(0, self.rows[k] - 1)
        start = torch.where(row < n_below, bottom + row * stride1, torch.where(
            row < n_below + n_first, lower + (row - n_below) * stride0, upper + (row - n_below - n_first) * stride1))
        inside = x.clamp(bottom, top)
        t = inside - start
        beyond = x - inside
        t2 = t * t
        t3 = t2 * t
        t4 = t3 * t
        basis = torch.stack(
            [torch.ones_like(t), t + beyond, t2 + 2.0 * t * beyond, t3 + 3.0 * t2 * beyond,
             t4 + 4.0 * t3 * beyond, t4 * t + 5.0 * t4 * beyond],
            dim=-1,
        )
        if self.check_frequency > 0:
            self._check_range(k, x)
        return row.long() + self.offsets[k], basis

    def _check_range(self, k: int, x: torch.Tensor) -> None:
        """Every ``check_frequency`` evaluations, warn if inputs left the table (DeePMD-kit's ``-f``)."""
        self.calls += 1
        if self.calls % self.check_frequency == 0 and x.numel() > 0:
            low, high = float(x.min()), float(x.max())
            if low < self.bottom[k] or high > self.info[k][2]:
                warnings.warn(f"compressed embedding net {k}: input range [{low}, {high}] leaves the table "
                              f"[{self.bottom[k]}, {self.info[k][2]}]; it is continued linearly")

    def forward(self, k: int, x: torch.Tensor) -> torch.Tensor:
        """G_k(x): x of any shape -> x.shape + (M,).

        One gather-and-sum over the table (``embedding_bag``, which does not materialise the gathered
        coefficients): G = sum_k basis_k * coefficients[row, k].
        """
        rows, basis = self._locate(k, x)
        entries = rows.reshape(-1, 1) * 6 + torch.arange(6, device=rows.device)  # n x 6 rows of the flat table
        values = torch.nn.functional.embedding_bag(
            entries, self.coefficients.reshape(-1, self.width), mode="sum", per_sample_weights=basis.reshape(-1, 6)
        )
        return values.reshape(x.shape + (self.width,))

    @torch.jit.export
    def contract(self, k: int, x: torch.Tensor, env: torch.Tensor) -> torch.Tensor:
        """``sum_j env_j^T G_k(x_j)``: x n x w, env n x w x c -> n x c x M."""
        return torch.bmm(env.transpose(1, 2), self.forward(k, x))
