"""Readers for the dataset formats tpainn trains on.

Every reader returns list[ase.Atoms] in eV, Å, eV/Å and eV/Å³ whatever the file's own units, with the
reference energy, forces and (where the format has it) stress attached as a SinglePointCalculator (see
tpainn.data.labels). Malformed input raises DataError naming the file and the line or frame: counts in a
header are checked against the file's size before anything is allocated for them, and every frame's
positions, cell and labels are checked to be finite (tpainn.data.checks).
"""

from __future__ import annotations

import functools
import io
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols
from ase.units import Bohr, Hartree

from tpainn.data.checks import check_count, check_frame, check_geometry
from tpainn.data.errors import DataError
from tpainn.data.hdf5 import H5_SUFFIXES, H5Frames
from tpainn.data.labels import attach_labels, stress_3x3

FORMATS = ("extxyz", "n2p2", "deepmd", "h5", "ase-db")
# Formats whose label keys the user may choose (energy_key, forces_key, stress_key).
KEYED_FORMATS = ("extxyz", "ase-db")

# ase.data.chemical_symbols[0] is the dummy element "X", which no dataset should contain.
_ELEMENT_SYMBOLS = frozenset(chemical_symbols[1:])


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    return path


def _atomic_number(symbol: str, where: str) -> int:
    if symbol not in _ELEMENT_SYMBOLS:
        raise DataError(f"{where}: unknown element symbol {symbol!r}")
    return atomic_numbers[symbol]


def _floats(tokens: list[str], where: str) -> list[float]:
    try:
        return [float(token) for token in tokens]
    except ValueError as err:
        raise DataError(f"{where}: cannot parse a number ({err})") from err


# ---------------------------------------------------------------------------------------------- extxyz

# An atom line holds at least an element and three coordinates ("H 0 0 0\n"): a header count is checked against
# the bytes left in the file with this before any line of the frame is read.
_XYZ_MIN_ATOM_LINE_BYTES = 8
# Keys of the comment line that hold a virial (eV, virial = −stress × volume), as written by e.g. the GAP/MACE
# tools; ASE itself writes `stress` (eV/Å³, its own sign), which its reader puts with the labels.
_XYZ_VIRIAL_KEYS = ("virial", "virials")


@dataclass(frozen=True)
class _XyzFrameSpan:
    """Where one frame of an XYZ file lies: its first line (1-based), byte offset and byte length."""

    line: int
    offset: int
    length: int


def _xyz_frame_spans(path: Path) -> list[_XyzFrameSpan]:
    """The frames of an XYZ file, found from their atom-count lines alone.

    Each count is checked against the bytes left in the file before its lines are skipped, so that a corrupt
    count (say 999999999999) is a DataError at once rather than a loop to the end of time; a frame cut short
    is a DataError naming it. Blank lines may only end the file.
    """
    size = path.stat().st_size
    spans: list[_XyzFrameSpan] = []
    with path.open("rb") as f:
        line_number = 0
        while True:
            offset = f.tell()
            line = f.readline()
            if not line:
                return spans
            line_number += 1
            where = f"{path}:{line_number}"
            if not line.strip():
                rest = f.read(1 << 16)
                if rest.strip() or f.read(1):
                    raise DataError(f"{where}: blank line where frame {len(spans)}'s atom count should be")
                return spans
            try:
                count = int(line.strip())
            except ValueError:
                shown = line.strip()[:40].decode(errors="replace")
                raise DataError(
                    f"{where}: expected the atom count of frame {len(spans)} (an integer alone on its line), got {shown!r}"
                ) from None
            if count == 0:
                raise DataError(f"{where}: frame {len(spans)} has no atoms (its atom count is 0)")
            check_count(count, "atoms", size - f.tell(), _XYZ_MIN_ATOM_LINE_BYTES, f"{where}: frame {len(spans)}")
            for read_lines in range(count + 1):
                if not f.readline():
                    raise DataError(
                        f"{where}: frame {len(spans)} declares {count} atoms but the file ends after "
                        f"{max(read_lines - 1, 0)} of them: it is truncated"
                    )
            spans.append(_XyzFrameSpan(line_number, offset, f.tell() - offset))
            line_number += count + 1


def _select(n_frames: int, index: str | int | slice, path: Path) -> list[int]:
    """Frame numbers picked by an ase-style index (":", "1:", "-1", 3, slice(0, 10))."""
    if isinstance(index, str):
        from ase.io.formats import string2index

        try:
            index = string2index(index)
        except ValueError as err:
            raise DataError(f"{path}: bad frame index {index!r} ({err})") from err
    frames = range(n_frames)
    if isinstance(index, slice):
        return list(frames[index])
    try:
        return [frames[index]]
    except (IndexError, TypeError) as err:
        raise DataError(f"{path}: no frame {index!r} (the file has {n_frames})") from err


def _xyz_stress(atoms: Atoms, results: dict, where: str) -> np.ndarray | None:
    """The frame's stress (3×3 eV/Å³, ASE sign) from ASE's `stress` key or a virial key (eV), or None."""
    virial_keys = [key for key in atoms.info if key.lower() in _XYZ_VIRIAL_KEYS]
    stress = None if results.get("stress") is None else stress_3x3(results["stress"], where)
    if not virial_keys and stress is None:
        return None
    if not atoms.pbc.all():
        raise DataError(f"{where}: stress or virial given for a frame that is not periodic in all three directions")
    if len(virial_keys) > 1:
        raise DataError(f"{where}: more than one virial key ({', '.join(virial_keys)})")
    if virial_keys:
        virial = stress_3x3(atoms.info.pop(virial_keys[0]), f"{where}: {virial_keys[0]}")
        from_virial = -virial / atoms.get_volume()
        if stress is not None and not np.allclose(stress, from_virial, rtol=1e-3, atol=1e-6):
            raise DataError(f"{where}: stress and {virial_keys[0]} disagree (expected virial = −stress × volume)")
        stress = from_virial
    return stress


def _xyz_label(atoms: Atoms, results: dict, key: str, per_atom: bool):
    """The value of a user-chosen label key: ASE's parsed results, else the comment line (info) or a column (arrays)."""
    if results.get(key) is not None:
        return results[key]
    return (atoms.arrays if per_atom else atoms.info).get(key)


def _xyz_frame(text: str, path: Path, span: _XyzFrameSpan, number: int, keys: dict | None = None) -> Atoms:
    where = f"{path}:{span.line}: frame {number}"
    energy_key, forces_key, stress_key = ((keys or {}).get(k) for k in ("energy_key", "forces_key", "stress_key"))
    try:
        atoms = ase.io.read(io.StringIO(text), index=0, format="extxyz")
    except Exception as err:  # ase's parser raises many types (ValueError, IndexError, KeyError, ...) on bad input
        message = str(err).splitlines()[0] if str(err) else ""
        raise DataError(f"{where}: not a readable extended XYZ frame ({type(err).__name__}: {message})") from err
    results = dict(getattr(atoms.calc, "results", None) or {})
    atoms.calc = None
    # User-chosen keys (--energy-key, --forces-key, --stress-key) replace ASE's `energy`, `forces` and `stress`.
    energy = results.get("energy") if energy_key is None else _xyz_label(atoms, results, energy_key, False)
    if energy is None:
        keys_found = ", ".join([*atoms.info, *(key for key in results if key not in ("forces", "stress"))]) or "none"
        hint = "" if energy_key else "; name another with --energy-key (data.energy_key)"
        raise DataError(f"{where}: no energy (the key `{energy_key or 'energy'}=` of the comment line; its keys: {keys_found}){hint}")
    check_geometry(atoms, where)  # before the volume is used for a virial
    forces = results.get("forces") if forces_key is None else _xyz_label(atoms, results, forces_key, True)
    if forces is None and forces_key is not None:
        columns = ", ".join(key for key in [*atoms.arrays, *results] if key not in ("numbers", "positions"))
        raise DataError(f"{where}: no column {forces_key!r} for the forces (its columns: {columns or 'none'})")
    if forces is not None and np.shape(forces) != (len(atoms), 3):
        raise DataError(f"{where}: forces have shape {np.shape(forces)}, expected ({len(atoms)}, 3)")
    try:
        energy = float(energy)
    except (TypeError, ValueError):
        raise DataError(f"{where}: the energy is not a number ({energy!r})") from None
    if stress_key is not None:
        results["stress"] = _xyz_label(atoms, results, stress_key, False)
        if results["stress"] is None:
            raise DataError(f"{where}: no key {stress_key!r} for the stress on the comment line")
    stress = _xyz_stress(atoms, results, where)
    return check_frame(attach_labels(atoms, energy, forces, stress), where)


def read_extxyz(path: str | os.PathLike, index: str | int | slice = ":", energy_key: str | None = None,
                 forces_key: str | None = None, stress_key: str | None = None) -> list[Atoms]:
    """Frames of an extended XYZ file (ase's extxyz parser), labelled with the comment line's `energy` (eV),
    the `forces` column (eV/Å) and, where given, the stress: ASE's `stress` key (eV/Å³, 9 values, ASE's sign) or
    a `virial` key (eV, 9 values; stress = −virial / volume). `energy_key`, `forces_key` and `stress_key` name
    other keys for them (as MACE's `REF_energy`, `REF_forces`), same units. Each frame keeps its own cell and
    periodicity (`pbc="T T F"`).

    Every frame must have an energy and finite positions, cell and labels; a wrong atom count, a truncated or
    unparsable frame is a DataError naming the line and frame.
    """
    path = _existing_file(path)
    spans = _xyz_frame_spans(path)
    if not spans:
        raise DataError(f"{path}: no frames (the file is empty)")
    frames = []
    keys = {"energy_key": energy_key, "forces_key": forces_key, "stress_key": stress_key}
    with path.open("rb") as f:
        for number in _select(len(spans), index, path):
            span = spans[number]
            f.seek(span.offset)
            try:
                text = f.read(span.length).decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}:{span.line}: frame {number} is not UTF-8 text ({err.reason} at byte "
                                f"{span.offset + err.start})") from None  # fmt: skip
            frames.append(_xyz_frame(text, path, span, number, keys))
    return frames


# ------------------------------------------------------------------------------------------------ n2p2

_N2P2_ATOM_FIELDS = 10  # atom x y z element charge atomic_energy fx fy fz


@dataclass
class _N2p2Frame:
    """One begin..end block of an n2p2 input.data file as it is parsed, in the file's units (bohr, Ha)."""

    index: int
    start_line: int
    comment: str = ""
    lattice_bohr: list[list[float]] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    positions_bohr: list[list[float]] = field(default_factory=list)
    forces_Ha_per_bohr: list[list[float]] = field(default_factory=list)
    energy_Ha: float | None = None

    def add_line(self, keyword: str, line: str, where: str) -> None:
        fields = line.split()
        if keyword == "comment":
            self.comment = line.strip()[len("comment") :].strip()
        elif keyword == "lattice":
            if len(fields) != 4 or len(self.lattice_bohr) == 3:
                raise DataError(f"{where}: expected at most three 'lattice x y z' lines a frame, got {line.strip()!r}")
            self.lattice_bohr.append(_floats(fields[1:], where))
        elif keyword == "atom":
            self._add_atom(fields, where)
        elif keyword == "energy":
            if len(fields) != 2 or self.energy_Ha is not None:
                raise DataError(f"{where}: expected one 'energy E' line per frame, got {line.strip()!r}")
            (self.energy_Ha,) = _floats(fields[1:], where)
        elif keyword == "charge":
            # The total charge is 0 in every set we read and no model here uses it: only check the line.
            if len(fields) != 2:
                raise DataError(f"{where}: expected 'charge Q', got {line.strip()!r}")
            _floats(fields[1:], where)
        else:
            raise DataError(f"{where}: unknown keyword {keyword!r} in frame {self.index}")

    def _add_atom(self, fields: list[str], where: str) -> None:
        if len(fields) != _N2P2_ATOM_FIELDS:
            raise DataError(
                f"{where}: an atom line needs {_N2P2_ATOM_FIELDS} fields "
                f"(atom x y z element charge energy fx fy fz), got {len(fields)}"
            )
        _atomic_number(fields[4], where)
        self.symbols.append(fields[4])
        self.positions_bohr.append(_floats(fields[1:4], where))
        # fields 5 and 6 (atomic charge and energy) are unused placeholders in n2p2 training data.
        self.forces_Ha_per_bohr.append(_floats(fields[7:10], where))

    def to_atoms(self, where: str) -> Atoms:
        if not self.symbols:
            raise DataError(f"{where}: frame {self.index} has no atoms")
        if self.energy_Ha is None:
            raise DataError(f"{where}: frame {self.index} has no 'energy' line")
        if len(self.lattice_bohr) not in (0, 3):
            raise DataError(f"{where}: frame {self.index} has {len(self.lattice_bohr)} lattice lines, expected 0 or 3")
        periodic = len(self.lattice_bohr) == 3
        # Positions stay as written (unwrapped): wrapping is the neighbour list's business.
        atoms = Atoms(
            symbols=self.symbols,
            positions=np.array(self.positions_bohr) * Bohr,
            cell=np.array(self.lattice_bohr) * Bohr if periodic else None,
            pbc=periodic,
        )
        atoms.info["comment"] = self.comment
        forces = np.array(self.forces_Ha_per_bohr) * (Hartree / Bohr)
        return check_frame(attach_labels(atoms, self.energy_Ha * Hartree, forces), f"{where}: frame {self.index}")


def read_n2p2(path: str | os.PathLike) -> list[Atoms]:
    """Frames of an n2p2/RuNNer input.data file (bohr, Hartree, Hartree/bohr) converted to Å, eV, eV/Å.

    A frame is periodic when it has three lattice lines. The comment line is kept in
    atoms.info["comment"]; per-atom charges and energies (placeholders in training data) are dropped.
    """
    path = _existing_file(path)
    frames: list[Atoms] = []
    frame: _N2p2Frame | None = None
    with path.open("rb") as lines:
        for line_number, raw_line in enumerate(lines, start=1):
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}:{line_number}: not text ({err.reason}): not an n2p2 input.data file") from None
            where = f"{path}:{line_number}"
            keyword = line.split(maxsplit=1)[0] if line.strip() else None
            if keyword is None:
                continue
            if keyword == "begin":
                if frame is not None:
                    raise DataError(
                        f"{where}: 'begin' inside frame {frame.index} (line {frame.start_line}), which has no 'end'"
                    )
                frame = _N2p2Frame(index=len(frames), start_line=line_number)
            elif frame is None:
                raise DataError(f"{where}: {keyword!r} outside a begin ... end frame")
            elif keyword == "end":
                frames.append(frame.to_atoms(where))
                frame = None
            else:
                frame.add_line(keyword, line, where)
    if frame is not None:
        raise DataError(
            f"{path}: the file ends inside frame {frame.index} (begun at line {frame.start_line}) "
            "without 'end': it is truncated"
        )
    if not frames:
        raise DataError(f"{path}: no frames (no 'begin' ... 'end' block): not an n2p2 input.data file, or empty")
    return frames


# ---------------------------------------------------------------------------------------------- DeePMD


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
        _atomic_number(symbol, f"{type_map_file}:{line_number}")
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


# ------------------------------------------------------------------------------------------------- QM9

# U0 of the isolated atoms at B3LYP/6-31G(2df,p), Hartree (QM9 atomref, Ramakrishnan et al. 2014).
QM9_ATOM_U0_HARTREE = {"H": -0.500273, "C": -37.846772, "N": -54.583861, "O": -75.064579, "F": -99.718730}
_QM9_COLUMNS = ["Index", "SMILES", "N_atoms", "Elements", "XYZ_Ang", "InternalEnergy_0K_au"]


@functools.lru_cache(maxsize=1)
def _qm9_table():
    """The QM9 columns we use, indexed and sorted by QM9 id; qm9pack parses its CSVs in ~1.5 s, so once."""
    # Imported here, not at module level, so that `import tpainn.data` does not pay for pandas + CSVs.
    with warnings.catch_warnings():
        # qm9pack imports pkg_resources, which warns about its own deprecation.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import qm9pack

        table = qm9pack.get_data("qm9")
    table = table[_QM9_COLUMNS].set_index("Index").sort_index()
    if not table.index.is_unique:
        raise DataError("qm9pack: the Index column repeats QM9 ids")
    return table


def _qm9_symbols(elements_column, n_atoms_total: int) -> list[str]:
    """All atoms' symbols, molecule after molecule, from strings like "['C','H','H','H','H']"."""
    symbols = re.findall(r"'([A-Za-z]+)'", "".join(elements_column))
    if len(symbols) != n_atoms_total:
        raise DataError(f"qm9pack: the Elements column lists {len(symbols)} atoms, N_atoms sums to {n_atoms_total}")
    unknown = set(symbols) - QM9_ATOM_U0_HARTREE.keys()
    if unknown:
        raise DataError(f"qm9pack: elements {sorted(unknown)} have no QM9 atomic reference energy")
    return symbols


def _qm9_positions_A(xyz_column, n_atoms_total: int) -> np.ndarray:
    """All atoms' positions (Å) from strings like "[[x,y,z],[x,y,z]]", parsed in one pass.

    The strings are not JSON ("0." and "1." occur), but stripped of brackets and commas they are
    plain numbers for np.fromstring, which is ~10× faster than literal_eval per molecule.
    """
    text = ",".join(xyz_column).translate(str.maketrans("[],", "   "))
    values = np.fromstring(text, sep=" ")
    if values.size != 3 * n_atoms_total:
        raise DataError(f"qm9pack: the XYZ_Ang column holds {values.size} numbers, expected 3 × {n_atoms_total} atoms")
    return values.reshape(-1, 3)


def _qm9_rows(indices):
    table = _qm9_table()
    if indices is None:
        return table
    qm9_ids = np.atleast_1d(np.asarray(indices, dtype=np.int64))
    missing = qm9_ids[~np.isin(qm9_ids, table.index)]
    if missing.size:
        raise DataError(
            f"QM9 has no molecule with index {missing[:10].tolist()} "
            "(indices are the 1-based QM9 ids; 3054 of 1..133885 failed upstream and are absent)"
        )
    return table.loc[qm9_ids]


def read_qm9(indices=None) -> list[Atoms]:
    """QM9 molecules from the qm9pack package: equilibrium geometries (Å) labelled with U0 (eV), no forces.

    `indices` are QM9 ids (the 1-based 'Index' column: 1 is methane); None gives all 130,831
    molecules in id order. atoms.info holds qm9_index, smiles, U0_eV and atomization_energy_eV
    (U0 minus the free-atom references QM9_ATOM_U0_HARTREE).
    """
    rows = _qm9_rows(indices)
    n_atoms = rows["N_atoms"].to_numpy()
    offsets = np.concatenate([[0], np.cumsum(n_atoms)])
    symbols = _qm9_symbols(rows["Elements"], int(offsets[-1]))
    positions_A = _qm9_positions_A(rows["XYZ_Ang"], int(offsets[-1]))
    atom_u0_eV = np.array([QM9_ATOM_U0_HARTREE[symbol] for symbol in symbols]) * Hartree
    u0_eV = rows["InternalEnergy_0K_au"].to_numpy() * Hartree
    atomization_eV = u0_eV - np.add.reduceat(atom_u0_eV, offsets[:-1]) if len(rows) else u0_eV
    frames = []
    for i, (qm9_id, smiles) in enumerate(zip(rows.index, rows["SMILES"])):
        first, last = offsets[i], offsets[i + 1]
        atoms = Atoms(symbols=symbols[first:last], positions=positions_A[first:last])
        atoms.info.update(
            qm9_index=int(qm9_id), smiles=smiles, U0_eV=float(u0_eV[i]), atomization_energy_eV=float(atomization_eV[i])
        )
        frames.append(attach_labels(atoms, u0_eV[i]))
    return frames


# -------------------------------------------------------------------------------------------- dispatch


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
    from tpainn.data.ase_db import read_ase_db

    format = format or detect_format(path)
    readers = {"extxyz": read_extxyz, "n2p2": read_n2p2, "deepmd": read_deepmd, "h5": read_h5, "ase-db": read_ase_db}
    if format not in readers:
        raise DataError(f"{path}: unknown format {format!r}; known formats: {', '.join(FORMATS)}")
    keys = {key: value for key, value in keys.items() if value is not None}
    if keys and format not in KEYED_FORMATS:
        raise DataError(f"{path}: {', '.join(keys)} apply to {' and '.join(KEYED_FORMATS)} files, not to {format}")
    return readers[format](path, **keys)
