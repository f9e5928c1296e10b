"""Reciprocal-space part of the Ewald sum, as DeePMD-kit's ``ewald_recp`` (source/lib/src/ewald.cc).

For point charges q_i at r_i in a periodic cell H (rows a, b, c; volume V), with the reciprocal vectors
k(m) = m H^-T (no 2 pi; m an integer triple, Angstrom^-1) and the structure factor
S(m) = sum_i q_i exp(2 pi i k(m).r_i):

    E_recip = C / (2 pi V) * sum_{m != 0, |m_d| <= K_d / 2} exp(-pi^2 |k|^2 / beta^2) / |k|^2 * |S(m)|^2

C = 14.3996... eV Angstrom (e^2 / (4 pi eps0)); beta (Angstrom^-1) splits the Coulomb sum; the grid
K_d = ceil(|box row d| / h), made even, from the spacing h (Angstrom). Only this term is computed: the
short-range real-space and self terms are what the short-range model learns (DeePMD-kit's DPLR).
Forces and virials come from autograd through this energy (float64).
"""

from typing import List, Tuple

import numpy as np
import torch

ELECTROSTATIC_CONVERSION = 14.39964535475696995031
"""e^2 / (4 pi eps0) in eV Angstrom, DeePMD-kit's ElectrostaticConvertion."""


def ewald_grid(box: np.ndarray, spacing: float) -> Tuple[int, int, int]:
    """Reciprocal grid (K_a, K_b, K_c) of one cell (3 x 3 rows a, b, c, Angstrom) for spacing h (Angstrom):
    K_d = ceil(|row d| / h), plus one if odd (DeePMD-kit's ``cmpt_k``)."""
    sizes = []
    for row in np.asarray(box, dtype=np.float64).reshape(3, 3):
        size = int(np.ceil(np.linalg.norm(row) / spacing))
        sizes.append(size + size % 2)
    return sizes[0], sizes[1], sizes[2]


def half_grid(grid: Tuple[int, int, int]) -> np.ndarray:
    """The integer triples m (n x 3) with |m_d| <= K_d / 2 in one half space (m and -m give the same term,
    so each is taken once with weight 2); m = 0 excluded."""
    axes = [np.arange(-(k // 2), k // 2 + 1) for k in grid]
    m = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    upper = (m[:, 0] > 0) | ((m[:, 0] == 0) & ((m[:, 1] > 0) | ((m[:, 1] == 0) & (m[:, 2] > 0))))
    return m[upper]


def reciprocal_energy(
    coord: torch.Tensor, charge: torch.Tensor, box: torch.Tensor, grids: List[Tuple[int, int, int]], beta: float
) -> torch.Tensor:
    """E_recip (nf, eV) of charges ``charge`` (nf x M, e) at ``coord`` (nf x M x 3, Angstrom, any image) in cells
    ``box`` (nf x 3 x 3), on the grid of each frame (``ewald_grid``) with splitting parameter ``beta``
    (Angstrom^-1). Differentiable in coord, charge and box."""
    energies = []
    for frame, grid in enumerate(grids):
        m = torch.as_tensor(half_grid(grid), dtype=coord.dtype, device=coord.device)  # nk x 3
        cell = box[frame]
        inverse = torch.linalg.inv(cell)
        k = m @ inverse.T  # nk x 3, Angstrom^-1
        k2 = (k * k).sum(dim=-1)
        kernel = torch.exp(-(np.pi**2) * k2 / beta**2) / k2  # nk
        phase = (2 * np.pi) * (coord[frame] @ inverse) @ m.T  # M x nk
        s_re = charge[frame] @ torch.cos(phase)
        s_im = charge[frame] @ torch.sin(phase)
        volume = torch.abs(torch.linalg.det(cell))
        total = 2.0 * (kernel * (s_re * s_re + s_im * s_im)).sum()
        energies.append(total * ELECTROSTATIC_CONVERSION / (2 * np.pi * volume))
    return torch.stack(energies)
