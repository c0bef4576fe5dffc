"""O(N) neighbour list: input checks here, the cell-list search itself in C++ (csrc/cell_list.cpp)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from tpainn._extension import load_extension

_C = load_extension()

__all__ = ["neighbor_list", "neighbor_list_atoms"]

# A periodic system whose cutoff sphere holds more atoms than this on average is refused before the search: such a
# list (a cutoff in the wrong unit, a cell in the wrong unit) would fill the memory or run for hours. Liquid water
# has ~90 neighbours per atom within 6 Å and ~1,400 within 15 Å.
MAX_MEAN_NEIGHBOURS = 5000


def _as_float64(x, name: str) -> torch.Tensor:
    try:
        x = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of numbers ({err})") from err
    return x.detach().to(device="cpu", dtype=torch.float64).contiguous()


def neighbor_list(
    positions: np.ndarray | torch.Tensor,
    cell: np.ndarray | torch.Tensor,
    pbc: bool | Sequence[bool],
    cutoff: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All pairs closer than ``cutoff``, periodic images included, in O(N).

    positions [N, 3] Å; cell [3, 3] Å with the lattice vectors as rows (ignored, and may be zero, when no
    direction is periodic; must be full rank otherwise); pbc: one bool or one per lattice vector.

    Returns ``(edge_index, cell_shifts, distances)``: edge_index int64 [2, E] (row 0 the centre atom i, row 1
    the neighbour j), cell_shifts int64 [E, 3] and distances float64 [E], such that for edge e
    ``r_ij = positions[j] - positions[i] + cell_shifts[e] @ cell`` and ``distances[e] = |r_ij| < cutoff``.
    Both directions of every pair are listed, edges are sorted by i, and an atom's own periodic images are
    neighbours when the cell is thinner than the cutoff. Positions need not be wrapped into the cell.
    """
    positions = _as_float64(positions, "positions")
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"positions must have shape (N, 3), got {tuple(positions.shape)}")
    finite = torch.isfinite(positions).all(dim=1)
    if not bool(finite.all()):
        atom = int(torch.nonzero(~finite)[0, 0])
        raise ValueError(f"positions of atom {atom} are not finite: {positions[atom].tolist()}")
    cell = _as_float64(cell, "cell")
    if cell.shape != (3, 3):
        raise ValueError(f"cell must have shape (3, 3), got {tuple(cell.shape)}")
    if not bool(torch.isfinite(cell).all()):
        raise ValueError("cell contains non-finite values")
    pbc_arr = np.asarray(pbc, dtype=bool).reshape(-1)
    if pbc_arr.size == 1:
        pbc_arr = np.repeat(pbc_arr, 3)
    if pbc_arr.size != 3:
        raise ValueError(f"pbc must be a bool or a sequence of 3 bools, got {pbc_arr.size} values")
    cutoff = float(cutoff)
    if not (np.isfinite(cutoff) and cutoff > 0):
        raise ValueError(f"cutoff must be positive and finite, got {cutoff}")
    if pbc_arr.any():
        # Relative volume |det| / (|a| |b| |c|): 1 for orthogonal vectors, 0 for a flat or degenerate cell.
        lengths = torch.linalg.vector_norm(cell, dim=1).prod()
        if not bool(lengths > 0) or abs(float(torch.linalg.det(cell))) <= 1e-10 * float(lengths):
            raise ValueError(
                f"cell is singular (its lattice vectors are not linearly independent) but pbc={pbc_arr.tolist()}: "
                "a full-rank cell is required whenever any direction is periodic"
            )
    if pbc_arr.all():
        volume = abs(float(torch.linalg.det(cell)))
        mean_neighbours = len(positions) / volume * 4 / 3 * np.pi * cutoff**3
        if mean_neighbours > MAX_MEAN_NEIGHBOURS:
            raise ValueError(
                f"cutoff {cutoff:g} Å: about {mean_neighbours:,.0f} neighbours per atom at this density ({len(positions)} "
                f"atoms in {volume:,.1f} Å³), more than the {MAX_MEAN_NEIGHBOURS:,} a neighbour list is built for: "
                "is the cutoff (or the cell) in Å?"
            )
    return _C.cell_list(positions, cell, [bool(p) for p in pbc_arr], cutoff)


def neighbor_list_atoms(atoms, cutoff: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``neighbor_list`` for an ``ase.Atoms``."""
    return neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
