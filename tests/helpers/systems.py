"""Water geometries the engine must get right: periodic, triclinic, molecular, boxes smaller than the cutoff, slabs."""

import numpy as np

from conftest import water_box


def triclinic(atoms, tilt):
    atoms.set_cell(atoms.cell.array + np.array([[0, 0, 0], [tilt, 0, 0], [0.3 * tilt, -0.5 * tilt, 0]]), scale_atoms=False)
    return atoms


SYSTEMS = {
    "periodic water": lambda: water_box(16, 8.5, seed=11),
    "triclinic water": lambda: triclinic(water_box(12, 8.0, seed=12), 1.3),
    "molecule": lambda: water_box(5, 5.0, seed=13, pbc=False),
    "box < 2 cutoffs": lambda: triclinic(water_box(4, 6.5, seed=14), 0.7),
    "box < cutoff": lambda: water_box(1, 3.2, seed=15),
    "slab (pbc x, y)": lambda: _slab(),
}


def _slab():
    atoms = water_box(6, 6.0, seed=16)
    atoms.pbc = [True, True, False]
    return atoms
