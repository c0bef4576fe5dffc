"""Attach reference labels (energy, forces) to ase.Atoms and read them back.

Every reader and the HDF5 store go through these two functions, so labels always live in one
place: a SinglePointCalculator, in eV and eV/Å, where `atoms.get_potential_energy()` finds them.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from tpainn.data.errors import DataError


def attach_labels(atoms: Atoms, energy_eV: float, forces_eV_per_A: np.ndarray | None = None) -> Atoms:
    """Attach the reference energy (eV) and, if given, forces (eV/Å, shape (n_atoms, 3)); returns `atoms`."""
    results = {"energy": float(energy_eV)}
    if forces_eV_per_A is not None:
        results["forces"] = np.asarray(forces_eV_per_A, dtype=np.float64)
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


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
