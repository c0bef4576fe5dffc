"""Per-element reference energies and the energy scale, fitted on the training set.

Solves min ‖C e − E‖ for e (eV per atom of each species), C the element counts of each frame, as a
minimum-norm correction to a prior e₀ (the dataset's free-atom energies where it defines them, else 0):
e = e₀ + argmin ‖C δ − (E − C e₀)‖, smallest δ.
- When the compositions do not determine e (every water frame is exactly (H2O)64, so C has rank 1),
  the energy per formula unit is still exact, split between elements in proportion to their counts.
  Any other split only moves energy between E_ref(O) and E_ref(H) in a way no such frame can detect.
- An element that none of the training frames contains (fluorine in 100 random QM9 molecules) keeps its
  prior exactly, so a test molecule with that element is still predicted on the right energy scale.
"""

import warnings
from typing import Mapping, Optional, Sequence

import numpy as np
from ase import Atoms


def composition_matrix(frames: Sequence[Atoms], species: Sequence[str]) -> np.ndarray:
    index = {s: k for k, s in enumerate(species)}
    counts = np.zeros((len(frames), len(species)))
    for row, atoms in enumerate(frames):
        for symbol in atoms.get_chemical_symbols():
            if symbol not in index:
                raise ValueError(f"frame {row} contains element {symbol}, which is not in the model species {list(species)}")
            counts[row, index[symbol]] += 1
    return counts


def prior_references(counts: np.ndarray, species: Sequence[str], prior: Mapping[str, float]) -> np.ndarray:
    """The prior e₀ (eV) per species; warns about elements that no training frame contains and no prior covers."""
    unseen = [s for s, n in zip(species, counts.sum(axis=0)) if n == 0 and s not in prior]
    if unseen:
        warnings.warn(
            f"element(s) {', '.join(unseen)} occur in none of the {len(counts)} training frames and the dataset "
            "defines no free-atom energy for them: their reference energy is 0 eV, so energies of structures "
            "containing them are not meaningful"
        )
    return np.array([prior.get(s, 0.0) for s in species])


def solve_references(counts: np.ndarray, energies: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """e₀ + the minimum-norm least-squares δ of C δ ≈ E − C e₀."""
    correction, *_ = np.linalg.lstsq(counts, energies - counts @ prior, rcond=None)
    return prior + correction


def fit_reference_energies(
    frames: Sequence[Atoms], species: Sequence[str], prior: Optional[Mapping[str, float]] = None
) -> np.ndarray:
    """Per-element energies in eV (see the module docstring); `prior` maps symbols to free-atom energies."""
    counts = composition_matrix(frames, species)
    energies = np.array([atoms.get_potential_energy() for atoms in frames])
    return solve_references(counts, energies, prior_references(counts, species, prior or {}))


def fit_energy_scale(frames: Sequence[Atoms], species: Sequence[str], reference_energies: np.ndarray) -> float:
    """RMS force component (eV/Å) when frames have forces, else the std of the per-atom residual energy.

    The network's output is multiplied by this scale, so its targets are of order one.
    """
    forces = [atoms.calc.results["forces"] for atoms in frames if "forces" in atoms.calc.results]
    if forces:
        scale = float(np.sqrt(np.mean(np.concatenate(forces) ** 2)))
    else:
        counts = composition_matrix(frames, species)
        energies = np.array([atoms.get_potential_energy() for atoms in frames])
        scale = float(np.std((energies - counts @ reference_energies) / counts.sum(axis=1)))
    return scale if np.isfinite(scale) and scale > 0 else 1.0
