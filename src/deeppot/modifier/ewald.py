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


def reciprocal_energy(
    coord: torch.Tensor, charge: torch.Tensor, box: torch.Tensor, grids: List[Tuple[int, int, int]], beta: float
) -> torch.Tensor:
    """E_recip (nf, eV) of charges ``charge`` (nf x M, e) at ``coord`` (nf x M x 3, Angstrom, any image) in cells
    ``box`` (nf x 3 x 3), on the grid of each frame (``ewald_grid``) with splitting parameter ``beta``
    (Angstrom^-1). Differentiable in coord, charge and box.

    The structure factor factorises over the three cell axes, exp(2 pi i m.s) = prod_d exp(2 pi i m_d s_d)
    (s = r H^-1, fractional), so S(m) is a contraction of per-axis phases (M x (K_d + 1) each) instead of
    M x (number of k vectors) sines and cosines."""
    energies = []
    for frame, grid in enumerate(grids):
        cell = box[frame]
        inverse = torch.linalg.inv(cell)
        axes = [torch.arange(-(k // 2), k // 2 + 1, dtype=coord.dtype, device=coord.device) for k in grid]
        m = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # n0 x n1 x n2 x 3
        k = m @ inverse.T  # Angstrom^-1
        k2 = (k * k).sum(dim=-1)
        nonzero = (m != 0).any(dim=-1)
        kernel = torch.where(nonzero, torch.exp(-(np.pi**2) * k2 / beta**2) / torch.where(nonzero, k2, 1.0), 0.0)
        fractional = coord[frame] @ inverse  # M x 3
        phases = [torch.exp(2j * np.pi * fractional[:, d : d + 1] * axes[d]) for d in range(3)]  # M x n_d
        structure = torch.zeros(kernel.shape, dtype=phases[0].dtype, device=coord.device)
        for rows in _atom_chunks(coord.shape[1], len(axes[0]) * len(axes[1])):
            plane = charge[frame, rows, None, None] * phases[0][rows, :, None] * phases[1][rows, None, :]
            structure = structure + torch.einsum("iab,ic->abc", plane, phases[2][rows])
        power = structure.real**2 + structure.imag**2
        volume = torch.abs(torch.linalg.det(cell))
        energies.append((kernel * power).sum() * ELECTROSTATIC_CONVERSION / (2 * np.pi * volume))
    return torch.stack(energies)


def _atom_chunks(natoms: int, plane: int, budget: int = 1 << 22) -> List[slice]:
    """Atom ranges whose per-atom phase planes (``plane`` complex numbers each) stay within ``budget`` numbers."""
    size = max(1, budget // max(plane, 1))
    return [slice(start, min(start + size, natoms)) for start in range(0, natoms, size)]
