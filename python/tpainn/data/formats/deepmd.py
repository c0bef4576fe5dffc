"""DeePMD-kit data folders: one system (type.raw, type_map.raw, set.*/ of .npy arrays) or a folder of systems."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
from ase import Atoms

from tpainn.data.checks import atomic_number, check_frame, check_geometry
from tpainn.data.errors import DataError
from tpainn.data.labels import attach_labels


def _natural_key(path: Path) -> list:
    """Sort key that puts data_2 before data_10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _text(file: Path) -> str:
    if not file.is_file():
        raise DataError(f"{file}: missing")
    try:
        return file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{file}: not text ({err.reason} at byte {err.start})") from None


def _deepmd_atomic_numbers(system: Path) -> np.ndarray:
    type_map_file = system / "type_map.raw"
    if not type_map_file.is_file():
        raise DataError(f"{type_map_file}: missing; without it the DeePMD atom types have no element")
    type_map = [
        atomic_number(symbol, f"{type_map_file}:{line_number}")
        for line_number, symbol in enumerate(_text(type_map_file).split(), start=1)
    ]
    type_file = system / "type.raw"
    try:
        types = np.array([int(token) for token in _text(type_file).split()], dtype=np.int64)
    except (ValueError, OverflowError) as err:
        raise DataError(f"{type_file}: not a list of integer atom types ({err})") from None
    if types.size == 0 or types.min() < 0 or types.max() >= len(type_map):
        raise DataError(f"{type_file}: atom types must lie in 0..{len(type_map) - 1}, the types of type_map.raw")
    return np.array(type_map)[types]


def _npy_header(file: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a .npy header, checked against the file's size before anything is allocated."""
    try:
        with file.open("rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            data_bytes = file.stat().st_size - f.tell()
    except Exception as err:  # numpy's header parser raises many types (ValueError, SyntaxError, TokenError, ...)
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{file}: not a readable .npy file ({reason})") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise DataError(f"{file}: holds {dtype} values, expected numbers")
    needed = math.prod(shape) * dtype.itemsize
    if needed > data_bytes:
        raise DataError(
            f"{file}: the header says shape {shape} ({needed} bytes) but {data_bytes} bytes follow: the file is truncated"
        )
    return shape, dtype


def _load_npy(file: Path, n_frames: int | None, values_per_frame: int, what: str) -> np.ndarray:
    """A (n_frames, values_per_frame) float64 array from a DeePMD .npy file, with its shape and values checked:
    a row (frame) that is not finite is a DataError naming the file and the frame."""
    if not file.is_file():
        raise DataError(f"{file}: missing")
    shape, _ = _npy_header(file)
    if len(shape) == 1 and values_per_frame == 1:
        shape = (*shape, 1)
    if len(shape) != 2 or shape[1] != values_per_frame or (n_frames is not None and shape[0] != n_frames):
        expected_frames = "n_frames" if n_frames is None else n_frames
        raise DataError(f"{file}: shape {tuple(shape)}, expected ({expected_frames}, {values_per_frame}) for {what}")
    try:
        array = np.load(file, allow_pickle=False).reshape(shape).astype(np.float64)
    except Exception as err:  # the header was checked: what is left is a damaged file
        raise DataError(f"{file}: not a readable .npy file ({type(err).__name__}: {err})") from err
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if bad.size:
        kind = "NaN" if np.isnan(array[bad[0]]).any() else "inf"
        raise DataError(f"{file}: frame {bad[0]} holds {kind} ({bad.size} frame(s) not finite: {bad[:10].tolist()})")
    return array


def _read_deepmd_set(set_dir: Path, numbers: np.ndarray, periodic: bool) -> list[Atoms]:
    n_atoms = len(numbers)
    per_atom = f"3 × {n_atoms} atoms of type.raw"
    coords_A = _load_npy(set_dir / "coord.npy", None, 3 * n_atoms, f"positions of {per_atom}")
    n_frames = len(coords_A)
    box_file = set_dir / "box.npy"
    boxes_A = _load_npy(box_file, n_frames, 9, "one 3×3 cell per frame") if periodic or box_file.exists() else None
    energies_eV = _load_npy(set_dir / "energy.npy", n_frames, 1, "one energy per frame")
    force_file = set_dir / "force.npy"
    forces_eV_per_A = (
        _load_npy(force_file, n_frames, 3 * n_atoms, f"forces of {per_atom}") if force_file.exists() else None
    )
    virial_file = set_dir / "virial.npy"
    virials_eV = _load_npy(virial_file, n_frames, 9, "one 3×3 virial per frame") if virial_file.exists() else None
    if virials_eV is not None and not periodic:
        raise DataError(f"{virial_file}: a virial needs a periodic cell, but the system has a `nopbc` file")
    frames = []
    for i in range(n_frames):
        where = f"{set_dir}: frame {i}"
        # DeePMD stores the lattice vectors as rows, like ase.
        cell = boxes_A[i].reshape(3, 3) if boxes_A is not None and periodic else None
        atoms = check_geometry(Atoms(numbers=numbers, positions=coords_A[i].reshape(-1, 3), cell=cell, pbc=periodic), where)
        forces = None if forces_eV_per_A is None else forces_eV_per_A[i].reshape(-1, 3)
        # DeePMD's virial (eV) is W = −∂E/∂ε, so ASE's stress is −W / V (as dpdata converts it).
        stress = None if virials_eV is None else -virials_eV[i].reshape(3, 3) / atoms.get_volume()
        frames.append(check_frame(attach_labels(atoms, energies_eV[i, 0], forces, stress), where))
    return frames


def _read_deepmd_system(system: Path) -> list[Atoms]:
    numbers = _deepmd_atomic_numbers(system)
    set_dirs = sorted((p for p in system.glob("set.*") if p.is_dir()), key=_natural_key)
    if not set_dirs:
        raise DataError(f"{system}: DeePMD system without set.* folders")
    # A `nopbc` file marks a system without periodic boundaries (molecules); box.npy is then optional.
    periodic = not (system / "nopbc").is_file()
    return [atoms for set_dir in set_dirs for atoms in _read_deepmd_set(set_dir, numbers, periodic)]


def read_deepmd(path: str | os.PathLike) -> list[Atoms]:
    """Frames of a DeePMD system folder (type.raw, type_map.raw, set.*/*.npy; eV, Å, eV/Å).

    `path` is one system, or a folder of systems (subfolders with a type.raw), read in natural name
    order (data_0, data_1, ..., data_10), each system's sets in order. float32 values become float64.
    A set's optional virial.npy (n_frames × 9, eV, DeePMD's W = −∂E/∂ε) becomes the stress −W / V (eV/Å³,
    ASE's sign). Every .npy header is checked against its file's size, and every frame for finite values.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such folder (a DeePMD system is a folder)")
    if (path / "type.raw").is_file():
        frames = _read_deepmd_system(path)
    else:
        systems = sorted((p for p in path.iterdir() if (p / "type.raw").is_file()), key=_natural_key)
        if not systems:
            raise DataError(f"{path}: neither a DeePMD system (no type.raw) nor a folder of systems")
        frames = [atoms for system in systems for atoms in _read_deepmd_system(system)]
    if not frames:
        raise DataError(f"{path}: no frames (every coord.npy is empty)")
    return frames


