"""ASE calculator over the C++ inference engine (csrc/engine.cpp), the same engine the LAMMPS pair style uses.

Units: energies eV, forces eV/Å, stress eV/Å³ (ASE Voigt order xx, yy, zz, yz, xz, xy; ASE sign, i.e.
(1/V) ∂E/∂ε, positive under tension). Inputs and outputs are float64 whatever the network's dtype.
A model trained without D3 (its metadata's `dispersion`, tpainn/dispersion.py) gets D3 added to every result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Union

import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.data import chemical_symbols
from ase.stress import full_3x3_to_voigt_6_stress

from tpainn import dispersion
from tpainn._extension import load_extension

_C = load_extension()


class TPaiNNCalculator(Calculator):
    """Runs an exported T-PaiNN model (`tpainn export`) for ASE MD, optimisation and single points.

    model: the exported file; device: "cpu", "cuda" or "cuda:K" (the neighbour list is built on the CPU);
    dtype: the network dtype to run in, "float32" or "float64" (default: the exported one); skin (Å): the
    neighbour list is built at cutoff + skin and reused while no atom moved more than skin / 2. Stress is
    available for cells periodic in all three directions.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(
        self,
        model: Union[str, Path] = "model.pt",
        device: str = "cpu",
        dtype: Optional[str] = None,
        skin: float = 0.5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file (expected a T-PaiNN model exported with `tpainn export`)")
        self.engine = _C.Engine(str(path), device=device, dtype=dtype or "", skin=float(skin))
        # Files exported before the key existed have no D3.
        self.dispersion = dispersion.parse(json.loads(self.engine.metadata_json).get("dispersion", "none"))

    @property
    def species(self) -> list:
        return list(self.engine.species)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        self._check_elements(atoms.numbers)
        periodic_3d = bool(atoms.pbc.all())
        if "stress" in properties and not periodic_3d:
            raise PropertyNotImplementedError(f"stress needs a cell periodic in all directions (pbc={atoms.pbc.tolist()})")
        # The virial costs little next to the forces: computed whenever stress is defined, so that an NPT
        # integrator asking for the stress after the forces reuses this call.
        out = self.engine.compute(atoms.positions, atoms.numbers, np.asarray(atoms.cell.array), atoms.pbc.tolist(), periodic_3d)
        self.results = {
            "energy": out["energy"],
            "free_energy": out["energy"],
            "energies": out["energies"],
            "forces": out["forces"],
        }
        if periodic_3d:
            self.results["stress"] = full_3x3_to_voigt_6_stress(-out["virial"] / atoms.get_volume())
        if self.dispersion is not None:
            self._add_dispersion(atoms, "energies" in properties)

    def _add_dispersion(self, atoms, per_atom: bool) -> None:
        """Model + D3; per-atom D3 energies cost a second dftd3 call, so they are left out unless asked for
        (ASE then calls again for them)."""
        energy, forces, stress = dispersion.compute(atoms, self.dispersion)
        self.results["energy"] = self.results["free_energy"] = self.results["energy"] + energy
        self.results["forces"] = self.results["forces"] + forces
        if "stress" in self.results:
            self.results["stress"] = self.results["stress"] + full_3x3_to_voigt_6_stress(stress)
        if per_atom:
            self.results["energies"] = self.results["energies"] + dispersion.energies(atoms, self.dispersion)
        else:
            del self.results["energies"]

    def _check_elements(self, numbers: np.ndarray) -> None:
        unknown = sorted(set(np.unique(numbers).tolist()) - set(self.engine.atomic_numbers))
        if unknown:
            names = ", ".join(chemical_symbols[z] if 0 < z < len(chemical_symbols) else f"Z={z}" for z in unknown)
            raise ValueError(f"element(s) {names} not in the model's species {self.species}")
