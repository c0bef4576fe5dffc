"""Attach reference labels (energy, forces, stress) to ase.Atoms and read them back.

Every reader and the HDF5 store go through these functions, so labels always live in one place: a
SinglePointCalculator, in eV, eV/Å and eV/Å³, where `atoms.get_potential_energy()` and
`atoms.get_stress(voigt=False)` find them. Stress follows ASE's sign convention, σ = (1/V) ∂E/∂ε
(positive under tension; the pressure is −trace(σ)/3), and is the configurational (virial) part only:
the derivative of the labelled potential energy, with no kinetic term.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import full_3x3_to_voigt_6_stress, voigt_6_to_full_3x3_stress

from tpainn.data.errors import DataError


def attach_labels(
    atoms: Atoms, energy_eV: float, forces_eV_per_A: np.ndarray | None = None, stress_eV_per_A3: np.ndarray | None = None
) -> Atoms:
    """Attach the reference energy (eV) and, if given, forces (eV/Å, (n_atoms, 3)) and stress (eV/Å³, 3×3 or
    Voigt 6, ASE sign); returns `atoms`. The stress must be finite and (for 3×3) symmetric to round-off."""
    results = {"energy": float(energy_eV)}
    if forces_eV_per_A is not None:
        results["forces"] = np.asarray(forces_eV_per_A, dtype=np.float64)
    if stress_eV_per_A3 is not None:
        results["stress"] = full_3x3_to_voigt_6_stress(stress_3x3(stress_eV_per_A3, "stress to attach"))
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def stress_3x3(stress, where: str) -> np.ndarray:
    """A 3×3 float64 stress from a 3×3, 9-vector or Voigt 6-vector; DataError naming `where` if it is none of
    these or not finite."""
    array = np.asarray(stress, dtype=np.float64)
    if array.shape == (6,):
        array = voigt_6_to_full_3x3_stress(array)
    elif array.shape in ((9,), (3, 3)):
        array = array.reshape(3, 3)
    else:
        raise DataError(f"{where}: stress has shape {array.shape}, expected (3, 3), (9,) or Voigt (6,)")
    if not np.isfinite(array).all():
        raise DataError(f"{where}: stress is not finite")
    return array


def labels_of(atoms: Atoms, where: str) -> tuple[float, np.ndarray | None]:
    """The stored (energy in eV, forces in eV/Å or None) of a labelled frame.

    Reads the calculator's stored results rather than calling get_potential_energy(), which would
    run a live calculator instead of failing on an unlabelled frame.
    """
    results = getattr(atoms.calc, "results", {})
    if "energy" not in results:
        raise DataError(f"{where}: frame has no reference energy (attach one with a SinglePointCalculator)")
    forces = results.get("forces")
    if forces is not None and np.shape(forces) != (len(atoms), 3):
        raise DataError(f"{where}: forces have shape {np.shape(forces)}, expected ({len(atoms)}, 3)")
    return float(results["energy"]), forces


def stress_of(atoms: Atoms, where: str) -> np.ndarray | None:
    """The stored stress (3×3, eV/Å³, ASE sign) of a labelled frame, or None when it has none."""
    stress = getattr(atoms.calc, "results", {}).get("stress")
    return None if stress is None else stress_3x3(stress, where)
