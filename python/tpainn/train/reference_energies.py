"""Per-element reference energies and the energy scale, fitted on the training set.

Solves min ‖C e − E‖ for e (eV per atom of each species), C the element counts of each frame.
When the compositions do not determine e (every water frame is exactly (H2O)64, so C has rank 1),
numpy's SVD least squares returns the minimum-norm solution: the energy per formula unit is still
exact, split between elements in proportion to their counts. This is finite and reproducible, and
any other split only moves energy between E_ref(O) and E_ref(H) in a way no such frame can detect.
"""

from typing import Sequence

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


def fit_reference_energies(frames: Sequence[Atoms], species: Sequence[str]) -> np.ndarray:
    """Least-squares (minimum-norm) per-element energies in eV."""
    counts = composition_matrix(frames, species)
    energies = np.array([atoms.get_potential_energy() for atoms in frames])
    solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return solution


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
