"""Where a run stands: the checkpoints LAMMPS records after each restart file, and where to continue.

Each MD stage runs in chunks of `restart_every` steps (one `run` command each). After a chunk LAMMPS
writes a restart file and only then appends `chunk STAGE STEP FILE` to checkpoints.txt; after the
minimisation and the last chunk of each stage it writes restart.STAGE.lammps and appends
`done STAGE STEP FILE`. So every recorded restart file is complete, and the last line is where a killed
run continues. Steps are global: a stage starts at the step where the one before it ended.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tpainn.md.settings import Stage

CHECKPOINTS = "checkpoints.txt"
# Restart files: one per stage end (kept), and one per chunk (named by its step; superseded by the next).
STAGE_RESTART = "restart.{stage}.lammps"
CHUNK_RESTART = "restart.$(step).lammps"  # LAMMPS substitutes the current step
_LINE = re.compile(r"(chunk|done) (\w+) (\d+) (restart\.\w+\.lammps)")
_CHUNK_FILE = re.compile(r"restart\.(\d+)\.lammps")


@dataclass(frozen=True)
class Checkpoint:
    kind: str  # "chunk" | "done"
    stage: str
    step: int
    restart_file: str


@dataclass(frozen=True)
class StartPoint:
    """Where LAMMPS starts: the data file (restart_file None) or a restart file, within stage `stage_index`."""

    restart_file: str | None
    stage_index: int
    stage_first_step: int
    steps_done: int  # steps of that stage already run


def checkpoint_command(kind: str, stage: str, restart_file: str) -> str:
    """The LAMMPS command that records a checkpoint (run it right after `write_restart restart_file`)."""
    return f'print "{kind} {stage} $(step) {restart_file}" append {CHECKPOINTS} screen no'


def read_checkpoints(run_dir: Path) -> list[Checkpoint]:
    """The recorded checkpoints, oldest first; a line cut short by a kill (no newline yet) is not one."""
    path = run_dir / CHECKPOINTS
    if not path.is_file():
        return []
    checkpoints = []
    for line in path.read_text().splitlines(keepends=True):
        match = _LINE.fullmatch(line.strip())
        if line.endswith("\n") and match:
            checkpoints.append(Checkpoint(match[1], match[2], int(match[3]), match[4]))
    return checkpoints


def finished_stages(checkpoints: list[Checkpoint]) -> dict[str, tuple[int, int]]:
    """(first_step, last_step) of each finished stage, in run order."""
    ranges, first = {}, 0
    for checkpoint in checkpoints:
        if checkpoint.kind == "done":
            ranges[checkpoint.stage] = (first, checkpoint.step)
            first = checkpoint.step
    return ranges


def start_point(run_dir: Path, stages: list[Stage], checkpoints: list[Checkpoint]) -> StartPoint | None:
    """Where to continue (the last checkpoint; the data file if there is none), or None when all stages are done."""
    if not checkpoints:
        return StartPoint(None, 0, 0, 0)
    last = checkpoints[-1]
    if not (run_dir / last.restart_file).is_file():
        raise FileNotFoundError(
            f"{run_dir / CHECKPOINTS}: its last checkpoint names {last.restart_file}, which is missing (the run "
            "directory was changed by hand); start a new run directory"
        )
    names = [stage.name for stage in stages]
    finished = finished_stages(checkpoints)
    index = names.index(last.stage) + (last.kind == "done")
    if index == len(stages):
        return None
    first = finished[names[index - 1]][1] if index > 0 else 0
    return StartPoint(last.restart_file, index, first, last.step - first)


def remove_superseded_restarts(run_dir: Path, checkpoints: list[Checkpoint]) -> None:
    """Delete the chunk restart files older than the last checkpoint (stage-end files are kept).

    Only older ones: a newer file may be the one LAMMPS is writing before it records it.
    """
    if not checkpoints:
        return
    for path in run_dir.iterdir():
        match = _CHUNK_FILE.fullmatch(path.name)
        if match and int(match[1]) < checkpoints[-1].step:
            path.unlink(missing_ok=True)
