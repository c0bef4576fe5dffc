"""Checks every reader applies at the edge, so that nothing malformed gets past it: each frame's positions,
cell and labels finite and of the right shape, and a count read from a file's header plausible against the
bytes left in the file before anything is allocated or looped over for it.

Every failure is a DataError whose message starts with `where` (the file, and the line or frame).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from tpainn.data.errors import DataError
from tpainn.data.labels import stress_of

# A cell vector shorter than this (Å) in a periodic direction is no cell: the neighbour list would loop forever
# or divide by zero. Real cells are Ångströms to nanometres.
MIN_CELL_LENGTH_A = 1e-3
MAX_ATOMIC_NUMBER = len(chemical_symbols) - 1
# ase.data.chemical_symbols[0] is the dummy element "X", which no dataset should contain.
_ELEMENT_SYMBOLS = frozenset(chemical_symbols[1:])


def _not_finite(array: np.ndarray) -> str:
    """'NaN' / 'inf' with the first offending row, for a message."""
    bad = ~np.isfinite(array)
    row = int(np.argwhere(bad)[0][0]) if array.ndim > 1 else int(np.argmax(bad))
    value = array.reshape(len(array), -1)[row] if array.ndim > 1 else array[row]
    kind = "NaN" if np.isnan(array).any() else "inf"
    return f"{kind} (row {row}: {np.array2string(np.asarray(value), precision=4)})"


def _is_finite_number(value) -> bool:
    try:
        return np.ndim(value) == 0 and bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False


def check_geometry(atoms: Atoms, where: str) -> Atoms:
    """`atoms` unchanged if it has atoms, each an element, finite positions and a finite cell whose periodic vectors
    are not degenerate (a 3D-periodic cell has a volume); else DataError naming `where`."""
    if len(atoms) == 0:
        raise DataError(f"{where}: the frame has no atoms")
    unknown = np.flatnonzero(atoms.numbers <= 0)
    if unknown.size:
        raise DataError(f"{where}: atom {unknown[0]} has no element (symbol X, atomic number 0)")
    beyond = np.flatnonzero(atoms.numbers > MAX_ATOMIC_NUMBER)
    if beyond.size:
        raise DataError(f"{where}: atom {beyond[0]} has atomic number {atoms.numbers[beyond[0]]}, which is no element")
    positions = np.asarray(atoms.positions, dtype=np.float64)
    if not np.isfinite(positions).all():
        raise DataError(f"{where}: positions are not finite: {_not_finite(positions)}")
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    if not np.isfinite(cell).all():
        raise DataError(f"{where}: the cell is not finite: {_not_finite(cell)}")
    lengths = np.linalg.norm(cell, axis=1)
    for axis in np.flatnonzero(atoms.pbc):
        if lengths[axis] < MIN_CELL_LENGTH_A:
            raise DataError(
                f"{where}: periodic in direction {'abc'[axis]} but cell vector {'abc'[axis]} has length "
                f"{lengths[axis]:.3g} Å"
            )
    if atoms.pbc.all() and abs(np.linalg.det(cell)) < MIN_CELL_LENGTH_A**3:
        raise DataError(f"{where}: periodic in all directions but the cell has no volume (its vectors are coplanar)")
    return atoms


def check_frame(atoms: Atoms, where: str, require_energy: bool = True) -> Atoms:
    """`atoms` unchanged if it is a usable training frame, else DataError naming `where` and what is wrong.

    Checked: the geometry (check_geometry); the energy present (unless `require_energy` is False) and finite;
    forces, if any, finite and one row per atom; stress, if any, finite and 3×3 (or Voigt 6).
    """
    check_geometry(atoms, where)
    results = getattr(atoms.calc, "results", None) or {}
    energy = results.get("energy")
    if energy is None:
        if require_energy:
            raise DataError(f"{where}: the frame has no energy label")
    elif not _is_finite_number(energy):
        raise DataError(f"{where}: the energy is not a finite number ({energy!r})")
    forces = results.get("forces")
    if forces is not None:
        forces = np.asarray(forces, dtype=np.float64)
        if forces.shape != (len(atoms), 3):
            raise DataError(f"{where}: forces have shape {forces.shape}, expected ({len(atoms)}, 3)")
        if not np.isfinite(forces).all():
            raise DataError(f"{where}: forces are not finite: {_not_finite(forces)}")
    stress_of(atoms, where)  # DataError naming `where` if its shape or values are wrong
    return atoms


def check_count(count: int, what: str, bytes_left: int, min_bytes_each: int, where: str) -> int:
    """`count` (read from a header) if the `bytes_left` in the file can hold that many items of at least
    `min_bytes_each` bytes; else DataError, so that a corrupt count never drives an allocation or a loop."""
    if count < 0:
        raise DataError(f"{where}: negative {what} count {count}")
    if count * min_bytes_each > bytes_left:
        raise DataError(
            f"{where}: the header says {count} {what}, but only {bytes_left} bytes follow "
            f"(at least {min_bytes_each} bytes each): the count is wrong or the file is truncated"
        )
    return count


def existing_file(path: str | os.PathLike) -> Path:
    """`path` as a Path if it is a file; DataError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    return path


def atomic_number(symbol: str, where: str) -> int:
    """The atomic number of an element symbol; DataError for anything that is not one."""
    if symbol not in _ELEMENT_SYMBOLS:
        raise DataError(f"{where}: unknown element symbol {symbol!r}")
    return atomic_numbers[symbol]
