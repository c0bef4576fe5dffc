"""Frames of an ASE database (`.db`, read with ase.db): one row per frame, its own cell and periodicity.

The labels are the row's stored calculator results (`energy`, `forces`, `stress`: eV, eV/Å, eV/Å³ with ASE's
sign, as `db.write(atoms)` stores them), or the keys the user names: `energy_key` / `stress_key` are looked up
in the row's key-value pairs, then in its `data`; `forces_key` in its `data` (an (n_atoms, 3) array). Every
frame is checked as the other readers check theirs (tpainn.data.checks).
"""

from __future__ import annotations

import os

import numpy as np
from ase import Atoms

from tpainn.data.checks import check_frame, check_geometry, existing_file
from tpainn.data.errors import DataError
from tpainn.data.labels import attach_labels


def _row_value(row, key: str, per_atom: bool):
    """A label stored under `key`: the row's own column (energy, forces, stress), a key-value pair or `data`."""
    if key in ("energy", "forces", "stress"):
        return row.get(key)
    if not per_atom and key in row.key_value_pairs:
        return row.key_value_pairs[key]
    return (row.data or {}).get(key)


def _row_frame(row, where: str, energy_key: str, forces_key: str | None, stress_key: str | None) -> Atoms:
    atoms = row.toatoms()  # positions, numbers, cell, pbc
    atoms.calc = None
    check_geometry(atoms, where)
    energy = _row_value(row, energy_key, per_atom=False)
    if energy is None:
        pairs = ", ".join(row.key_value_pairs) or "none"
        raise DataError(f"{where}: no energy under {energy_key!r} (the row's key-value pairs: {pairs})")
    try:
        energy = float(energy)
    except (TypeError, ValueError):
        raise DataError(f"{where}: the energy {energy_key!r} is not a number ({energy!r})") from None
    forces = _row_value(row, forces_key or "forces", per_atom=True)
    if forces is None and forces_key is not None:
        raise DataError(f"{where}: no forces under {forces_key!r} (the row's data keys: {', '.join(row.data or {}) or 'none'})")
    if forces is not None and np.shape(forces) != (len(atoms), 3):
        raise DataError(f"{where}: forces have shape {np.shape(forces)}, expected ({len(atoms)}, 3)")
    stress = _row_value(row, stress_key or "stress", per_atom=False)
    if stress is None and stress_key is not None:
        raise DataError(f"{where}: no stress under {stress_key!r}")
    if stress is not None and not atoms.pbc.all():
        raise DataError(f"{where}: stress given for a frame that is not periodic in all three directions")
    return check_frame(attach_labels(atoms, energy, forces, stress), where)


def read_ase_db(path: str | os.PathLike, energy_key: str | None = None, forces_key: str | None = None,
                stress_key: str | None = None) -> list[Atoms]:  # fmt: skip
    """Every row of an ASE database, in id order, as a labelled frame (see the module docstring)."""
    import ase.db

    path = existing_file(path)
    try:
        with ase.db.connect(path, type="db") as db:
            rows = list(db.select(sort="id"))
    except DataError:
        raise
    except Exception as err:  # sqlite3 and ase raise many types on a file that is no database
        raise DataError(f"{path}: not a readable ASE database ({type(err).__name__}: {err})") from None
    if not rows:
        raise DataError(f"{path}: no rows (an empty ASE database)")
    return [_row_frame(row, f"{path}: row id {row.id}", energy_key or "energy", forces_key, stress_key) for row in rows]
