"""Readers for the dataset formats tpainn trains on.

Every reader returns list[ase.Atoms] in eV, Å, eV/Å and eV/Å³ whatever the file's own units, with the
reference energy, forces and (where the format has it) stress attached as a SinglePointCalculator (see
tpainn.data.labels). Malformed input raises DataError naming the file and the line or frame: counts in a
header are checked against the file's size before anything is allocated for them, and every frame's
positions, cell and labels are checked to be finite (tpainn.data.checks).
"""

from __future__ import annotations

import os
from pathlib import Path

from ase import Atoms

from tpainn.data.errors import DataError
from tpainn.data.formats.ase_db import read_ase_db
from tpainn.data.formats.deepmd import read_deepmd
from tpainn.data.formats.extxyz import read_extxyz
from tpainn.data.formats.n2p2 import read_n2p2
from tpainn.data.hdf5 import H5_SUFFIXES, H5Frames

FORMATS = ("extxyz", "n2p2", "deepmd", "h5", "ase-db")
# Formats whose label keys the user may choose (energy_key, forces_key, stress_key).
KEYED_FORMATS = ("extxyz", "ase-db")


def detect_format(path: str | os.PathLike) -> str:
    """The format name of a path: a folder is DeePMD, otherwise the file name decides."""
    path = Path(path)
    if path.is_dir():
        return "deepmd"
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix in H5_SUFFIXES:
        return "h5"
    if suffix in (".xyz", ".extxyz"):
        return "extxyz"
    if path.name == "input.data" or suffix == ".data":
        return "n2p2"
    if suffix == ".db":
        return "ase-db"
    raise DataError(f"{path}: cannot tell the format from the name; pass one of {', '.join(FORMATS)}")


def read_h5(path: str | os.PathLike) -> list[Atoms]:
    """Every frame of an HDF5 frame file, read at once (H5Frames reads them lazily instead)."""
    frames = H5Frames(path)
    try:
        return list(frames)
    finally:
        # HDF5 will not open a file for writing while this process holds it open for reading.
        frames.close()


def read(path: str | os.PathLike, format: str | None = None, **keys: str | None) -> list[Atoms]:
    """All frames of `path` as a list, in the named format or the one detect_format() finds. `keys`
    (energy_key, forces_key, stress_key) name the label keys of formats that let the user choose them."""
    format = format or detect_format(path)
    readers = {"extxyz": read_extxyz, "n2p2": read_n2p2, "deepmd": read_deepmd, "h5": read_h5, "ase-db": read_ase_db}
    if format not in readers:
        raise DataError(f"{path}: unknown format {format!r}; known formats: {', '.join(FORMATS)}")
    keys = {key: value for key, value in keys.items() if value is not None}
    if keys and format not in KEYED_FORMATS:
        raise DataError(f"{path}: {', '.join(keys)} apply to {' and '.join(KEYED_FORMATS)} files, not to {format}")
    return readers[format](path, **keys)
