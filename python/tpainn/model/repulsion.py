"""Short-range repulsion below the shortest distances of the training data (a prior where there are no data).

A network trained on liquid configurations has never seen two atoms closer than those configurations bring
them (in the revPBE0-D3 water set: O–H 0.89 Å, H–H 1.33 Å, O–O 2.39 Å). Below that its energy is an
extrapolation, often attractive, and MD that strays there collapses (atoms merge within a few hundred
steps). This term adds the Ziegler–Biersack–Littmark universal screened nuclear repulsion (ZBL, the short-range
potential of LAMMPS `pair_style zbl`, DeePMD's `use_srtab` and NequIP's ZBL), switched off smoothly between
onset − WIDTH and the onset, where the onset of each element pair is the shortest distance of that pair in the
training frames. It is zero on every training frame (to rounding: the closest pair sits at its onset), so
training and the fit to the data are unchanged; it only replaces the extrapolation below the data.

Units: distances Å, energies eV. An element pair never closer than SEARCH_RADIUS in the data has no repulsion
(onset 0): with no data on it there is no distance to guard.
"""

from typing import Sequence

import numpy as np
import torch
from ase.data import atomic_numbers
from ase.neighborlist import neighbor_list
from torch import nn

KINDS = ("none", "zbl")
# Width (Å) of the switch from the full ZBL energy (below onset − WIDTH) to zero (at the onset).
WIDTH = 0.5
# Pairs are searched up to this distance (Å) for the onsets: beyond it no data are needed to rule out a collapse.
SEARCH_RADIUS = 3.0


def zbl_energy(r: torch.Tensor, z_i: torch.Tensor, z_j: torch.Tensor) -> torch.Tensor:
    """The ZBL pair energy (eV) at distances r (Å) of nuclei with charges z_i, z_j: Z_i Z_j e² / (4πε₀ r) φ(r / a)
    with the universal screening function φ and length a = 0.46850 Å / (Z_i^0.23 + Z_j^0.23)."""
    coulomb = 14.399645  # e²/(4πε₀), eV·Å (constants are local: TorchScript functions cannot read globals)
    x = r * (z_i.pow(0.23) + z_j.pow(0.23)) / 0.46850  # 0.8854 a₀ in Å, rounded as in ZBL's and LAMMPS' tables
    phi = (0.18175 * torch.exp(-3.19980 * x) + 0.50986 * torch.exp(-0.94229 * x)
           + 0.28022 * torch.exp(-0.40290 * x) + 0.02817 * torch.exp(-0.20162 * x))
    return coulomb * z_i * z_j / r * phi


def switch_off(r: torch.Tensor, onset: torch.Tensor, width: float) -> torch.Tensor:
    """1 below onset − width, 0 above onset, smooth in between (1 − smootherstep: C² continuous)."""
    t = ((r - (onset - width)) / width).clamp(0.0, 1.0)
    return 1.0 - t * t * t * (t * (6.0 * t - 15.0) + 10.0)


class ShortRangeRepulsion(nn.Module):
    """Σ over pairs of ZBL(r) · switch(r) with per-element-pair onsets (Å) fitted to the training frames."""

    def __init__(self, numbers: Sequence[int], kind: str = "none"):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"model repulsion: unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
        self.enabled = kind == "zbl"
        self.width = WIDTH
        self.register_buffer("charges", torch.tensor(numbers, dtype=torch.float64))
        # Onsets 0: no pair is ever closer, so the term is zero until fit_onsets sets them.
        self.register_buffer("onsets", torch.zeros(len(numbers), len(numbers), dtype=torch.float64))

    def forward(self, vectors: torch.Tensor, species: torch.Tensor, centres: torch.Tensor, neighbours: torch.Tensor,
                n_atoms: int) -> torch.Tensor:
        """Energies [n_atoms] (eV, float64) of atoms 0..n_atoms-1: half of each pair's energy to each directed edge's
        centre (every edge centre must be < n_atoms; both directions of a pair are edges)."""
        energies = torch.zeros(n_atoms, dtype=torch.float64, device=vectors.device)
        if not self.enabled:
            return energies
        onset = self.onsets[species[centres], species[neighbours]]
        # Only the few edges below their onset are differentiated (a bare norm has a NaN gradient at r = 0).
        close = torch.nonzero(torch.linalg.norm(vectors.detach(), dim=-1) < onset).squeeze(-1)
        if close.numel() == 0:
            return energies
        i, j = centres[close], neighbours[close]
        r = torch.linalg.norm(vectors[close].to(torch.float64), dim=-1)
        pair = zbl_energy(r, self.charges[species[i]], self.charges[species[j]]) * switch_off(r, onset[close], self.width)
        return energies.index_add(0, i, 0.5 * pair)

    def fit_onsets(self, frames: Sequence, species: Sequence[str]) -> None:
        """Onset of each element pair = its shortest distance in `frames` (ASE Atoms); 0 (off) where it is never
        closer than SEARCH_RADIUS. Onsets already set only decrease: after a refit on new frames (autotuning) the
        term is still zero on the earlier ones."""
        index = {atomic_numbers[s]: k for k, s in enumerate(species)}
        present = self.onsets.cpu().numpy()
        onsets = np.where(present > 0, present, np.inf)
        for atoms in frames:
            i, j, d = neighbor_list("ijd", atoms, SEARCH_RADIUS)
            kinds = np.array([index[z] for z in atoms.numbers])
            np.minimum.at(onsets, (kinds[i], kinds[j]), d)
        onsets = np.minimum(onsets, onsets.T)
        self.onsets.copy_(torch.as_tensor(np.where(np.isfinite(onsets), onsets, 0.0)))

    def describe(self, species: Sequence[str]) -> str:
        if not self.enabled:
            return "none"
        pairs = [f"{species[a]}–{species[b]} {float(self.onsets[a, b]):.3f} Å"
                 for a in range(len(species)) for b in range(a, len(species))]
        return f"ZBL below the training data's shortest distances ({', '.join(pairs)})"

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Models saved before this term existed have no onsets: they load with the term off.
        if not self.enabled:
            state_dict.setdefault(prefix + "onsets", self.onsets.clone())
            state_dict.setdefault(prefix + "charges", self.charges.clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
