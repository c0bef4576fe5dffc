"""Radial basis functions and the cosine cutoff (Schütt et al. 2021, Eqs. 8-9 and SchNet)."""

import math

import torch
from torch import nn


class CosineCutoff(nn.Module):
    """f(r) = ½ (cos(π r / r_c) + 1) for r < r_c, else 0: smooth, so forces stay continuous at r_c."""

    def __init__(self, cutoff: float):
        super().__init__()
        self.cutoff = cutoff

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        inside = (distances < self.cutoff).to(distances.dtype)
        return 0.5 * (torch.cos(distances * (math.pi / self.cutoff)) + 1.0) * inside


class GaussianRBF(nn.Module):
    """exp(-(r - μ_k)² / 2σ²) with n_rbf centres evenly spaced on [0, r_c], σ = spacing."""

    def __init__(self, n_rbf: int, cutoff: float):
        super().__init__()
        centres = torch.linspace(0.0, cutoff, n_rbf, dtype=torch.float64)
        self.register_buffer("centres", centres)
        self.gamma = 0.5 / float(centres[1] - centres[0]) ** 2

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        diff = distances.unsqueeze(-1) - self.centres.to(distances.dtype)
        return torch.exp(-self.gamma * diff * diff)


class BesselRBF(nn.Module):
    """sin(k π r / r_c) / r, k = 1..n_rbf: the basis used in the PaiNN paper (after DimeNet)."""

    def __init__(self, n_rbf: int, cutoff: float):
        super().__init__()
        frequencies = torch.arange(1, n_rbf + 1, dtype=torch.float64) * math.pi / cutoff
        self.register_buffer("frequencies", frequencies)

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        d = distances.unsqueeze(-1)
        return torch.sin(d * self.frequencies.to(distances.dtype)) / d


def radial_basis(kind: str, n_rbf: int, cutoff: float) -> nn.Module:
    if kind == "gaussian":
        return GaussianRBF(n_rbf, cutoff)
    if kind == "bessel":
        return BesselRBF(n_rbf, cutoff)
    raise ValueError(f"unknown radial basis {kind!r}: expected 'gaussian' or 'bessel'")
