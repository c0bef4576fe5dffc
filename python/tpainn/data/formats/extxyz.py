"""Extended XYZ files (ASE's extxyz reader, one frame at a time): labels under the keys the user names (default
`energy`, `forces`, `stress`), or a virial (GAP/MACE tools) converted to the stress."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from tpainn.data.checks import check_count, check_frame, check_geometry, existing_file
from tpainn.data.errors import DataError
from tpainn.data.labels import attach_labels, stress_3x3

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
    path = existing_file(path)
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


