"""n2p2 / RuNNer input.data files: begin..end blocks in bohr and Hartree, converted to Å and eV."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.units import Bohr, Hartree

from tpainn.data.checks import atomic_number, check_frame, existing_file
from tpainn.data.errors import DataError
from tpainn.data.labels import attach_labels


def _floats(tokens: list[str], where: str) -> list[float]:
    try:
        return [float(token) for token in tokens]
    except ValueError as err:
        raise DataError(f"{where}: cannot parse a number ({err})") from err


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
        atomic_number(fields[4], where)
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
    path = existing_file(path)
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


