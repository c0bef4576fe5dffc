"""LAMMPS boxes for the plugin and dispersion tests: a cell in LAMMPS' lower-triangular shape, and the commands
creating it."""

import numpy as np
from ase import Atoms

MASSES = {"H": 1.008, "O": 15.999}


def lower_triangular(atoms: Atoms, tilt=(0.0, 0.0, 0.0)) -> Atoms:
    """`atoms` in a LAMMPS-shaped cell (rows a = (lx,0,0), b = (xy,ly,0), c = (xz,yz,lz)), wrapped into it."""
    lengths = np.diag(atoms.cell.array)
    xy, xz, yz = tilt
    atoms.set_cell([[lengths[0], 0, 0], [xy, lengths[1], 0], [xz, yz, lengths[2]]], scale_atoms=False)
    atoms.wrap()
    return atoms


def box_commands(atoms: Atoms, units: str = "metal") -> list:
    """LAMMPS commands creating `atoms` (types 1 = H, 2 = O) in the same cell and coordinates."""
    (lx, _, _), (xy, ly, _), (xz, yz, lz) = atoms.cell.array.tolist()  # floats: repr() round-trips
    return [
        f"units {units}", "atom_style atomic", "boundary p p p",
        f"region box prism 0 {lx!r} 0 {ly!r} 0 {lz!r} {xy!r} {xz!r} {yz!r} units box",
        "create_box 2 box", f"mass 1 {MASSES['H']}", f"mass 2 {MASSES['O']}",
    ]  # fmt: skip
