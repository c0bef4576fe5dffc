"""Checks of a run's production trajectory before it is analysed: the file is whole (a header, whole frames) and
holds the frames the production stage wrote (from its steps in summary.json, which the log must reach).

MDAnalysis reads a DCD or dump cut short without a word (it counts the whole frames) and an empty one with a raw
OSError; here either is a ValueError naming the file and the damage, which `tpainn analyze` reports as the run's
row while it still reports the other runs.
"""

from __future__ import annotations

import struct
from pathlib import Path

# A DCD file is Fortran records: a 4-byte length before and after each. Header: the 84-byte control record
# ("CORD" + 20 int32), the title record, the atom-count record. A frame: the unit cell record (6 float64, if
# the control flag says so) and one record of n float32 per coordinate.
_DCD_CONTROL_BYTES = 84
_DUMP_LINES_PER_FRAME_HEADER = 9  # ITEM: TIMESTEP, step, ITEM: NUMBER OF ATOMS, n, ITEM: BOX BOUNDS, 3 lines, ITEM: ATOMS


def _record(data: bytes, offset: int, endian: str, path: Path) -> tuple[bytes, int]:
    """The payload of the Fortran record at `offset` and the offset after it."""
    if offset + 4 > len(data):
        raise ValueError(f"{path}: the DCD header is cut short (at byte {offset}): the file is truncated")
    (length,) = struct.unpack(endian + "i", data[offset : offset + 4])
    end = offset + 4 + length
    if length < 0 or end + 4 > len(data) or data[end : end + 4] != data[offset : offset + 4]:
        raise ValueError(f"{path}: the DCD header is damaged or cut short (record at byte {offset}): the file is truncated")
    return data[offset + 4 : end], end + 4


def dcd_frames(path: Path) -> int:
    """Whole frames in a DCD file, from its header and size; ValueError if it is empty, not DCD or ends in a
    partial frame."""
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{path}: the trajectory is empty (0 bytes): the production stage wrote no frame")
    with open(path, "rb") as f:
        head = f.read(min(size, 64 * 1024))
    endian = "<" if head[:4] == struct.pack("<i", _DCD_CONTROL_BYTES) else ">"
    if head[:4] != struct.pack(endian + "i", _DCD_CONTROL_BYTES) or head[4:8] != b"CORD":
        raise ValueError(f"{path}: not a DCD file (no CORD header)")
    control, offset = _record(head, 0, endian, path)
    icntrl = struct.unpack(endian + "20i", control[4:84])
    _, offset = _record(head, offset, endian, path)  # titles
    natoms_record, offset = _record(head, offset, endian, path)
    (n_atoms,) = struct.unpack(endian + "i", natoms_record[:4])
    n_fixed, has_cell, has_4d = icntrl[8], icntrl[10], icntrl[11]
    if n_fixed:
        _, offset = _record(head, offset, endian, path)  # free atom indices
    if n_atoms <= 0:
        raise ValueError(f"{path}: the DCD header says {n_atoms} atoms")
    frame_bytes = (56 if has_cell else 0) + (4 if has_4d else 3) * (4 * n_atoms + 8)
    body = size - offset
    if body == 0:
        raise ValueError(f"{path}: the trajectory holds a header but no frame: the production stage wrote no frame")
    if n_fixed:
        raise ValueError(f"{path}: DCD files with fixed atoms are not supported")
    if body % frame_bytes:
        raise ValueError(
            f"{path}: ends in a partial frame ({body % frame_bytes} of {frame_bytes} bytes after {body // frame_bytes} "
            "whole frames): the file is truncated"
        )
    return body // frame_bytes


def dump_frames(path: Path) -> int:
    """Whole frames in a LAMMPS text dump (every frame the same atom count); ValueError if it is empty or cut short."""
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the trajectory is empty (0 bytes): the production stage wrote no frame")
    with open(path, "rb") as f:
        head = [f.readline() for _ in range(4)]
    if not head[0].startswith(b"ITEM: TIMESTEP") or not head[2].startswith(b"ITEM: NUMBER OF ATOMS"):
        raise ValueError(f"{path}: not a LAMMPS dump (it does not start with ITEM: TIMESTEP, ITEM: NUMBER OF ATOMS)")
    try:
        n_atoms = int(head[3])
    except ValueError:
        raise ValueError(f"{path}: the atom count of the first frame is not a number ({head[3][:40]!r})") from None
    lines = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block
    if not last.endswith(b"\n"):
        lines += 1
    per_frame = _DUMP_LINES_PER_FRAME_HEADER + n_atoms
    if lines % per_frame:
        raise ValueError(
            f"{path}: ends in a partial frame ({lines % per_frame} of {per_frame} lines after {lines // per_frame} "
            "whole frames): the file is truncated"
        )
    return lines // per_frame


def expected_frames(first_step: int, last_step: int, dump_every: int) -> tuple[int, int]:
    """The fewest and most frames a stage of steps first..last dumping every `dump_every` steps writes: LAMMPS
    writes at the multiples of dump_every, and the first step of the stage may be one more."""
    multiples = last_step // dump_every - (-(-first_step // dump_every)) + 1
    return multiples, (last_step - first_step) // dump_every + 1


def check_trajectory(path: Path, first_step: int, last_step: int, dump_every: int, logged_last_step: int | None) -> int:
    """The number of frames of the production trajectory `path`, after checking it is whole, holds the frames of
    the production stage (steps first..last, one every dump_every) and that the log reaches the stage's end."""
    n_frames = dcd_frames(path) if path.suffix == ".dcd" else dump_frames(path)
    fewest, most = expected_frames(first_step, last_step, dump_every)
    stage = f"the production stage (steps {first_step}–{last_step}, a frame every {dump_every} steps)"
    if n_frames < fewest:
        raise ValueError(f"{path}: holds {n_frames} frames, but {stage} wrote {fewest}: the trajectory is truncated")
    if n_frames > most:
        raise ValueError(f"{path}: holds {n_frames} frames, more than the {most} of {stage}: not this run's trajectory")
    if logged_last_step is not None and logged_last_step < last_step:
        raise ValueError(
            f"{path.parent / 'log.lammps'}: the production stage's thermo output ends at step {logged_last_step}, before "
            f"its last step {last_step} in summary.json: the log is truncated"
        )
    return n_frames
