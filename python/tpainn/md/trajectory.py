"""The production trajectory: LAMMPS `dump dcd` segments joined into trajectory.dcd.

Each LAMMPS process that runs (part of) the production stage dumps into its own segment,
trajectory.STEP.dcd, STEP being the step it started at (a restart). LAMMPS writes a frame at every step
that is a multiple of `dump_every`, so a segment started at S holds the frames from the first multiple
≥ S on, and replaces the frames from S on of the segment before it (which was killed after S). A segment
opened on a file of the same name (a second start from the same restart) overwrites it.
"""

from __future__ import annotations

import os
import re
import warnings
from contextlib import contextmanager
from pathlib import Path

from tpainn.files import replacing

TRAJECTORY = "trajectory.dcd"
SEGMENT = "trajectory.$(step).dcd"  # LAMMPS substitutes the current step
_SEGMENT = re.compile(r"trajectory\.(\d+)\.dcd")


def remove_segments(run_dir: Path) -> None:
    for _, path in _segments(run_dir):
        path.unlink()


def join_segments(run_dir: Path, first_step: int, last_step: int, dump_every: int) -> Path:
    """trajectory.dcd holding the frames of steps first_step..last_step; the segments are removed after.

    Idempotent: trajectory.dcd only appears (by an atomic rename) once it is complete.
    """
    target = run_dir / TRAJECTORY
    segments = _segments(run_dir)
    if target.is_file():
        remove_segments(run_dir)
        return target
    if not segments:
        raise FileNotFoundError(f"{run_dir}: the production stage is done but no trajectory segment is left")
    starts = [start for start, _ in segments] + [last_step + 1]
    if starts[0] != first_step:
        raise RuntimeError(f"{run_dir}: the first trajectory segment starts at step {starts[0]}, the production stage "
                           f"at {first_step}")  # fmt: skip
    # Segment k keeps its frames before the start of segment k + 1.
    counts = [_frames_from(starts[k + 1], dump_every) - _frames_from(starts[k], dump_every) for k in range(len(segments))]
    if len(segments) == 1:
        _check_frame_count(segments[0][1], counts[0], exact=True)
        os.replace(segments[0][1], target)
        return target
    _write_joined(segments, counts, target)
    remove_segments(run_dir)
    return target


def _segments(run_dir: Path) -> list[tuple[int, Path]]:
    found = ((_SEGMENT.fullmatch(path.name), path) for path in run_dir.iterdir())
    return sorted((int(match[1]), path) for match, path in found if match)


def _frames_from(step: int, dump_every: int) -> int:
    """Index of the first frame at or after `step` (frames are at the multiples of dump_every)."""
    return -(-step // dump_every)


@contextmanager
def _dcd_reader(path: Path):
    from MDAnalysis.coordinates.DCD import DCDReader

    # MDAnalysis announces a change of DCDReader's timestep copying in 3.0; frames are only copied here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "DCDReader currently makes independent timesteps", DeprecationWarning)
        with DCDReader(str(path)) as reader:
            yield reader


def _check_frame_count(path: Path, count: int, exact: bool) -> None:
    with _dcd_reader(path) as reader:
        n_frames = reader.n_frames
    if n_frames < count or (exact and n_frames != count):
        raise RuntimeError(f"{path}: {n_frames} frames, expected {'' if exact else 'at least '}{count}")


def _write_joined(segments: list[tuple[int, Path]], counts: list[int], target: Path) -> None:
    """The first counts[k] frames of each segment, in order, via a temporary file renamed at the end."""
    import MDAnalysis as mda
    from MDAnalysis.coordinates.DCD import DCDWriter

    for (_, path), count in zip(segments, counts):
        _check_frame_count(path, count, exact=path == segments[-1][1])
    with _dcd_reader(segments[0][1]) as first:
        n_atoms = first.n_atoms
    universe = mda.Universe.empty(n_atoms, trajectory=True)
    with replacing(target) as partial, DCDWriter(str(partial), n_atoms) as writer:
        for (_, path), count in zip(segments, counts):
            with _dcd_reader(path) as reader:
                for ts in reader[:count]:
                    universe.atoms.positions = ts.positions
                    universe.dimensions = ts.dimensions
                    writer.write(universe)
