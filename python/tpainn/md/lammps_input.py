"""The LAMMPS input of a `tpainn md water` run: in.lammps from the data file, in.resume.lammps from a restart.

One input runs every stage that is left, in one LAMMPS process: minimisation (conjugate gradient), then
MD with velocity Verlet and Nosé–Hoover chains (LAMMPS `fix nvt` / `fix npt`, chains of 3): NVT
equilibration from Gaussian velocities at T, NPT at T and P (isotropic), production in NVT or NVE at
the final NPT volume, dumped to DCD with unwrapped coordinates. Steps are global (no reset_timestep).
Each MD stage runs in chunks of `restart_every` steps, each followed by a restart file and a checkpoint
(tpainn.md.checkpoints); each `run` lies within one stage, as the analysis expects.

Fix and dump IDs are the stage names, so a fix redefined after read_restart gets its thermostat and
barostat state back from the restart file (LAMMPS matches global fix state by ID and style).
"""

from __future__ import annotations

from pathlib import Path

from tpainn.md.checkpoints import CHUNK_RESTART, STAGE_RESTART, StartPoint, checkpoint_command
from tpainn.md.potentials import Potential, UnitStyle
from tpainn.md.settings import MDSettings, Stage, derived_seeds
from tpainn.md.trajectory import SEGMENT

LOG = "log.lammps"
# Starts the part of the log a continuation appends: ERROR lines above it belong to an attempt since replaced.
CONTINUATION_MARKER = "# tpainn md: continued"
DATA = "system.data"
# The run's record (settings, stages, potential), written by tpainn.md.water and read by tpainn.analysis.
SUMMARY = "summary.json"
# The analysis needs Step Temp PotEng Press Volume; the rest is for people reading the log.
THERMO_STYLE = "thermo_style custom step temp pe ke etotal press vol density"
# All digits of a double in the log (energies are compared with other codes); flush: the log is the progress.
THERMO_MODIFY = "thermo_modify norm no flush yes format float %20.15g"
MINIMIZE_ETOL = 1.0e-6  # relative energy change
MINIMIZE_FTOL = 1.0e-3  # force units (eV/Å or kcal/mol/Å)
MINIMIZE_EVALUATIONS_PER_ITERATION = 10  # maxeval = this × maxiter (line searches take several)


def input_script(potential: Potential, settings: MDSettings, stages: list[Stage], start: StartPoint,
                 restart_every: int, label: str) -> str:  # fmt: skip
    """The whole input, from `start` to the end of the last stage."""
    origin = f"read_restart {start.restart_file}" if start.restart_file else f"read_data {DATA}"
    lines = [
        f"# tpainn md water: {label}, {settings.n_molecules} H2O, {settings.temperature_K:g} K, "
        f"{settings.pressure_bar:g} bar, timestep {settings.timestep_fs:g} fs",
        f"log {LOG} append",
        *potential.system_commands,
        origin,
        *potential.style_commands,
        *potential.coefficient_commands,
        THERMO_STYLE,
        THERMO_MODIFY,
        f"timestep {_number(settings.timestep_fs / potential.units.fs_per_time_unit)}",
    ]
    for index in range(start.stage_index, len(stages)):
        steps_done = start.steps_done if index == start.stage_index else 0
        lines += stage_commands(stages[index], settings, potential.units, steps_done, restart_every)
    return "\n".join(lines) + "\n"


def stage_commands(stage: Stage, settings: MDSettings, units: UnitStyle, steps_done: int, restart_every: int) -> list[str]:
    """The commands of one stage, from `steps_done` steps into it (a multiple of restart_every) to its end."""
    lines = ["", f"# stage {stage.name}: {describe(stage, settings)}", f"thermo {stage.thermo_every}"]
    end = [f"write_restart {STAGE_RESTART.format(stage=stage.name)}",
           checkpoint_command("done", stage.name, STAGE_RESTART.format(stage=stage.name))]  # fmt: skip
    if stage.ensemble == "minimize":
        iterations = settings.minimize_iterations
        maxeval = MINIMIZE_EVALUATIONS_PER_ITERATION * iterations
        return [*lines, "min_style cg", f"minimize {MINIMIZE_ETOL} {MINIMIZE_FTOL} {iterations} {maxeval}", *end]
    if stage.name == "equilibration" and steps_done == 0:
        _, velocity_seed = derived_seeds(settings.seed)
        # loop geom: the same velocities whatever the number of MPI ranks.
        temperature = _number(settings.temperature_K)
        lines.append(f"velocity all create {temperature} {velocity_seed} mom yes rot no dist gaussian loop geom")
    lines.append(f"fix {stage.name} all {_integrator(stage.ensemble, settings, units)}")
    remaining = stage.n_steps - steps_done
    dumped = stage.dump_every is not None and remaining > 0
    if dumped:
        lines += [f"dump {stage.name} all dcd {stage.dump_every} {SEGMENT}", f"dump_modify {stage.name} unwrap yes"]
    chunks = [restart_every] * (remaining // restart_every) + ([remaining % restart_every] if remaining % restart_every else [])
    for k, n_steps in enumerate(chunks):
        lines.append(f"run {n_steps}")
        if k < len(chunks) - 1:  # the stage's own restart follows the last chunk
            lines += [f"write_restart {CHUNK_RESTART}", checkpoint_command("chunk", stage.name, CHUNK_RESTART)]
    return [*lines, *end, f"unfix {stage.name}", *([f"undump {stage.name}"] if dumped else [])]


def describe(stage: Stage, settings: MDSettings) -> str:
    """One line for people: what the stage does, in fs/ps, K and bar."""
    if stage.ensemble == "minimize":
        return f"conjugate gradient, at most {settings.minimize_iterations} iterations"
    length = f"{stage.n_steps} steps = {stage.n_steps * settings.timestep_fs / 1000:g} ps"
    thermostat = f"Nose-Hoover chains, Tdamp {settings.tdamp_fs:g} fs"
    text = {
        "nvt": f"NVT at {settings.temperature_K:g} K, {thermostat}",
        "npt": f"NPT at {settings.temperature_K:g} K and {settings.pressure_bar:g} bar, {thermostat}, Pdamp {settings.pdamp_fs:g} fs",
        "nve": "NVE",
    }[stage.ensemble]
    dump = f", DCD frame every {stage.dump_every} steps" if stage.dump_every else ""
    return f"{text}, {length}{dump}"


def _integrator(ensemble: str, settings: MDSettings, units: UnitStyle) -> str:
    temperature = _number(settings.temperature_K)
    thermostat = f"temp {temperature} {temperature} {_number(settings.tdamp_fs / units.fs_per_time_unit)}"
    if ensemble == "nvt":
        return f"nvt {thermostat}"
    if ensemble == "npt":
        pressure = _number(settings.pressure_bar / units.bar_per_pressure_unit)
        return f"npt {thermostat} iso {pressure} {pressure} {_number(settings.pdamp_fs / units.fs_per_time_unit)}"
    return "nve"


def _number(value: float) -> str:
    """12 significant digits: exact for the values people type, and no float noise (0.1 not 0.10000000000000001)."""
    return f"{value:.12g}"


def last_error(log: Path) -> str | None:
    """The last ERROR line of the log's final attempt (after the last continuation marker); None if none."""
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    starts = [i for i, line in enumerate(lines) if line.startswith(CONTINUATION_MARKER)]
    errors = [line.strip() for line in lines[starts[-1] if starts else 0 :] if "ERROR" in line]
    return errors[-1] if errors else None
