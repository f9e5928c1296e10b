"""Smooth switch and environment matrix of DeepPot-SE (spec section 3.3)."""

from typing import Tuple

import torch


def smooth_weight(r: torch.Tensor, rcut_smth: float, rcut: float) -> torch.Tensor:
    """Quintic switch ``w(u) = u^3 (-6u^2 + 15u - 10) + 1`` with ``u = (clip(r, rs, rc) - rs)/(rc - rs)``.

    w = 1 for r <= rcut_smth, 0 for r >= rcut, twice continuously differentiable. r in Angstrom.
    """
    u = (torch.clamp(r, rcut_smth, rcut) - rcut_smth) / (rcut - rcut_smth)
    return u * u * u * (-6.0 * u * u + 15.0 * u - 10.0) + 1.0


def environment_matrix(
    rij: torch.Tensor, nei_mask: torch.Tensor, rcut_smth: float, rcut: float, protection: float
) -> torch.Tensor:
    """Rows ``w(r) [1/(r+p), x/(r+p)^2, y/(r+p)^2, z/(r+p)^2]`` of each neighbor slot, unnormalised.

    rij: nf x nloc x nnei x 3, neighbor minus center (Angstrom). nei_mask: nf x nloc x nnei bool,
    False for padded slots, whose rows are 0. Returns nf x nloc x nnei x 4 (1/Angstrom).
    """
    rij, r, weight = _masked_weight(rij, nei_mask, rcut_smth, rcut)
    inv_r = 1.0 / (r + protection)
    return torch.cat([weight * inv_r, weight * rij * (inv_r * inv_r)], dim=-1)


def switch_weight(rij: torch.Tensor, nei_mask: torch.Tensor, rcut_smth: float, rcut: float) -> torch.Tensor:
    """The switch ``w(r)`` of each slot, 0 for padded slots: nf x nloc x nnei x 1 (rij, nei_mask as above)."""
    return _masked_weight(rij, nei_mask, rcut_smth, rcut)[2]


def _masked_weight(
    rij: torch.Tensor, nei_mask: torch.Tensor, rcut_smth: float, rcut: float
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rij with padded slots replaced, r, w(r) masked): padded slots get a dummy vector beyond rcut so that
    no 1/0 enters the graph."""
    dummy = torch.zeros_like(rij)
    dummy[..., 0] = rcut + 1.0
    rij = torch.where(nei_mask.unsqueeze(-1), rij, dummy)
    r = torch.linalg.vector_norm(rij, dim=-1, keepdim=True)
    weight = smooth_weight(r, rcut_smth, rcut) * nei_mask.unsqueeze(-1).to(rij.dtype)
    return rij, r, weight
