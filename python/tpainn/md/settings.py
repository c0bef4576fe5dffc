"""Settings of a `tpainn md water` run and the stages they make: lengths (ps), thermostat and barostat
damping (fs), output intervals, with the `quick` and `paper` presets of the stage lengths.

All times are given in fs or ps and converted here to whole numbers of timesteps; a time that is not a
whole number of timesteps is an error, not rounded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from tpainn.arguments import integer, number, whole_steps
from tpainn.classical.lammps_runtime import lammps_seeds

# Stage lengths (ps). quick: a first look that the analysis' defaults accept (the default MSD fit window,
# 1 ps to half the trajectory, needs more than 2 ps of production; the density's error needs ≥ 20 thermo rows
# after the detected equilibration). paper: ≥ 100 ps of NPT for the density and of production for D.
SCALES = {
    "quick": {"equilibration_ps": 1.0, "npt_ps": 5.0, "production_ps": 5.0},
    "paper": {"equilibration_ps": 10.0, "npt_ps": 100.0, "production_ps": 100.0},
}
PRODUCTION_ENSEMBLES = ("nvt", "nve")
# Flexible water: the O–H stretch has a period of ~9 fs; velocity Verlet needs ≲ 1 fs (0.5 fs is usual).
MAX_TIMESTEP_FS = 2.0
# A Nosé–Hoover damping time shorter than ~10 timesteps makes the thermostat/barostat variables
# oscillate faster than the integrator resolves (LAMMPS recommends ~100 and ~1000 timesteps).
MIN_DAMP_TIMESTEPS = 10
# Fewer molecules make no liquid: every molecule would see its own periodic images as first neighbours.
MIN_MOLECULES = 8


def _setting(default, help: str = "", unit: str | None = None, flag: str | None = None, choices=None, note: str | None = None):
    """A field of MDSettings with what `tpainn md water` says of it: its option (default --name-with-dashes), help,
    unit, choices, and a note after the default (tpainn.cli builds the option from these)."""
    metadata = {"help": help, "unit": unit, "flag": flag, "choices": choices, "note": note}
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class MDSettings:
    """What a run simulates (everything here must match when a run directory is continued).

    The fields are in the order of their options in `tpainn md water --help`; those in SCALES default to the
    preset of --scale there."""

    equilibration_ps: float = _setting(SCALES["quick"]["equilibration_ps"], "NVT equilibration", "ps")  # after minimisation
    npt_ps: float = _setting(SCALES["quick"]["npt_ps"], "NPT stage for the density", "ps",
                             note="0: none, NVT at --density throughout")  # fmt: skip
    # The packed box. With npt_ps = 0 the run stays at it: NVT at a given (say the experimental) density, for
    # transport and structure from a model whose pressure is not to be trusted (no stress in its training data).
    density_g_cm3: float = _setting(1.0, "of the packed box", "g/cm³", flag="--density")
    production_ps: float = _setting(SCALES["quick"]["production_ps"], "production stage", "ps")  # the dumped trajectory
    production_ensemble: str = _setting("nvt", "production ensemble", flag="--production", choices=PRODUCTION_ENSEMBLES)
    n_molecules: int = _setting(128)
    temperature_K: float = _setting(300.0, unit="K", flag="--temperature")
    pressure_bar: float = _setting(1.0, unit="bar", flag="--pressure")
    timestep_fs: float = _setting(0.5, unit="fs")
    tdamp_fs: float = _setting(100.0, "thermostat damping time", "fs")  # Nosé–Hoover chain
    pdamp_fs: float = _setting(1000.0, "barostat damping time", "fs")  # Nosé–Hoover chain
    thermo_every_fs: float = _setting(10.0, "log interval", "fs")
    dump_every_fs: float = _setting(20.0, "trajectory frame interval", "fs")
    restart_every_ps: float = _setting(1.0, "restart file interval", "ps")
    minimize_iterations: int = _setting(1000)
    seed: int = _setting(0, "Packmol box and initial velocities")

    @classmethod
    def for_scale(cls, scale: str, **overrides) -> MDSettings:
        """The preset stage lengths of `scale`, with any setting given (not None) in `overrides` replacing it."""
        if scale not in SCALES:
            raise ValueError(f"scale: unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
        given = {key: value for key, value in overrides.items() if value is not None}
        unknown = set(given) - {field.name for field in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(**{**SCALES[scale], **given})


@dataclass(frozen=True)
class Stage:
    """One stage of the run; `n_steps` is 0 for the minimisation, whose length LAMMPS decides."""

    name: str
    ensemble: str
    n_steps: int
    thermo_every: int
    dump_every: int | None = None


def plan_stages(settings: MDSettings) -> list[Stage]:
    """Minimisation, NVT equilibration, NPT (density), production; ValueError names a nonsensical setting."""
    check_settings(settings)
    s, dt = settings, settings.timestep_fs
    thermo = whole_steps("thermo_every_fs", s.thermo_every_fs, dt)
    dump = whole_steps("dump_every_fs", s.dump_every_fs, dt)
    stages = [
        Stage("minimize", "minimize", 0, thermo),
        Stage("equilibration", "nvt", whole_steps("equilibration_ps", 1000.0 * s.equilibration_ps, dt), thermo),
        Stage("density", "npt", whole_steps("npt_ps", 1000.0 * s.npt_ps, dt), thermo) if s.npt_ps else None,
        Stage("production", s.production_ensemble, whole_steps("production_ps", 1000.0 * s.production_ps, dt), thermo, dump),
    ]
    return [stage for stage in stages if stage]


def restart_every_steps(settings: MDSettings) -> int:
    """Steps between restart files: a multiple of the dump interval, so that every restart interval holds frames
    (a continued production's trajectory is joined from the pieces between restarts, tpainn.md.trajectory)."""
    restart = whole_steps("restart_every_ps", 1000.0 * settings.restart_every_ps, settings.timestep_fs)
    dump = whole_steps("dump_every_fs", settings.dump_every_fs, settings.timestep_fs)
    if restart % dump:
        raise ValueError(
            f"restart_every_ps ({settings.restart_every_ps} ps) must be a multiple of dump_every_fs "
            f"({settings.dump_every_fs} fs): a continued run joins its trajectory at restarts, each interval whole frames"
        )
    return restart


def check_settings(settings: MDSettings) -> None:
    """ValueError naming the first setting that makes no sense."""
    s = settings
    integer("n_molecules", s.n_molecules, MIN_MOLECULES)
    integer("minimize_iterations", s.minimize_iterations, 1)
    integer("seed", s.seed, 0)
    number("temperature_K", s.temperature_K)
    number("pressure_bar", s.pressure_bar)
    number("timestep_fs", s.timestep_fs)
    if s.timestep_fs > MAX_TIMESTEP_FS:
        raise ValueError(f"timestep_fs must be at most {MAX_TIMESTEP_FS} fs for flexible water, got {s.timestep_fs}")
    for name in ("equilibration_ps", "production_ps", "thermo_every_fs", "dump_every_fs", "restart_every_ps", "density_g_cm3"):
        number(name, getattr(s, name))
    if s.npt_ps != 0:
        number("npt_ps", s.npt_ps)
    for name in ("tdamp_fs", "pdamp_fs"):
        number(name, getattr(s, name))
        if getattr(s, name) < MIN_DAMP_TIMESTEPS * s.timestep_fs:
            raise ValueError(f"{name} ({getattr(s, name)} fs) must be at least {MIN_DAMP_TIMESTEPS} timesteps "
                             f"({MIN_DAMP_TIMESTEPS * s.timestep_fs} fs)")  # fmt: skip
    if s.production_ensemble not in PRODUCTION_ENSEMBLES:
        raise ValueError(f"production_ensemble must be one of {', '.join(PRODUCTION_ENSEMBLES)}, got {s.production_ensemble!r}")
    if s.dump_every_fs > 1000.0 * s.production_ps:
        raise ValueError(f"dump_every_fs ({s.dump_every_fs} fs) is longer than the production ({s.production_ps} ps)")
    if s.npt_ps and s.thermo_every_fs > 1000.0 * s.npt_ps:
        raise ValueError(f"thermo_every_fs ({s.thermo_every_fs} fs) is longer than the NPT stage ({s.npt_ps} ps)")
    restart_every_steps(s)


def derived_seeds(seed: int) -> tuple[int, int]:
    """Independent seeds (valid for both programs) for Packmol and for the initial velocities."""
    packmol, velocity = lammps_seeds(np.random.SeedSequence(seed), 2)
    return packmol, velocity
