"""Open a run directory (see the package docstring for its contract): summary, stages, topology, trajectory."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import MDAnalysis as mda
import numpy as np
import pandas as pd
from ase.data import atomic_masses, chemical_symbols
from MDAnalysis.lib.distances import distance_array

from tpainn.analysis.integrity import check_trajectory
from tpainn.analysis.thermo import read_thermo, stage_rows
from tpainn.md.lammps_input import LOG, SUMMARY, last_error
from tpainn.md.settings import MDSettings, plan_stages

TOPOLOGY = "system.data"
TRAJECTORIES = ("trajectory.dcd", "trajectory.lammpstrj")
SUMMARY_KEYS = ("units", "timestep_fs", "stages", "n_molecules", "temperature_K", "model")
STAGE_KEYS = ("name", "ensemble", "first_step", "last_step", "thermo_every", "dump_every")
# Columns of the Atoms section of a data file, per atom_style (LAMMPS names the style in `Atoms # STYLE`).
ATOM_STYLE_COLUMNS = {"full": "id resid type charge x y z", "atomic": "id type x y z"}
# A type's mass must be this close (amu) to an element's standard atomic weight to be named by it.
MASS_TOLERANCE_AMU = 0.1


@dataclass
class Stage:
    """One part of the run (`minimize`, `nvt`, `npt`, `nve`, ...); steps are global (never reset)."""

    name: str
    ensemble: str
    first_step: int
    last_step: int
    thermo_every: int
    dump_every: int | None
    complete: bool = True  # False: the run stopped within this stage, at last_step


@dataclass
class Run:
    """A run directory; files are read when first needed, so a missing file fails only the analysis using it."""

    path: Path
    summary: dict = field(repr=False)

    @property
    def stages(self) -> list[Stage]:
        """The finished stages, and the stage the run stopped in if part of it is logged (stage_cut_short)."""
        finished = [Stage(**{key: stage[key] for key in STAGE_KEYS}) for stage in self.summary["stages"]]
        cut_short = self.stage_cut_short(finished)
        return finished + ([cut_short] if cut_short else [])

    def stage_cut_short(self, finished: list[Stage]) -> Stage | None:
        """The part of the first unfinished stage that complete thermo blocks hold, when `tpainn md water` was
        stopped within it (summary.json: `stages_remaining` and the `settings` that plan the stages): a killed
        40 ps NPT run still has a density from the chunks it finished. Only undumped stages: a trajectory is
        analysed whole."""
        remaining, settings = self.summary.get("stages_remaining"), self.summary.get("settings")
        if not remaining or not isinstance(settings, dict) or not finished:
            return None
        try:
            planned = {stage.name: stage for stage in plan_stages(MDSettings(**settings))}
            blocks = self.thermo
        except (TypeError, ValueError, FileNotFoundError):  # not a plan of this version, or no log: finished only
            return None
        stage, first_step = planned.get(remaining[0]), finished[-1].last_step
        last_logged = max((int(b["Step"].iloc[-1]) for b in blocks if b["Step"].iloc[0] >= first_step), default=first_step)
        if stage is None or stage.dump_every or last_logged <= first_step:
            return None
        return Stage(stage.name, stage.ensemble, first_step, last_logged, stage.thermo_every, None, complete=False)

    @property
    def timestep_ps(self) -> float:
        return self.summary["timestep_fs"] / 1000.0

    @property
    def label(self) -> str:
        return self.summary["model"]

    def has_stage(self, ensembles: tuple[str, ...]) -> bool:
        return any(stage.ensemble.lower() in ensembles for stage in self.stages)

    def last_stage(self, ensembles: tuple[str, ...], purpose: str) -> Stage:
        """The last stage run in one of `ensembles`; ValueError naming the summary if there is none."""
        matching = [stage for stage in self.stages if stage.ensemble.lower() in ensembles]
        if not matching:
            found = ", ".join(f"{s.name} ({s.ensemble})" for s in self.stages) or "none"
            raise ValueError(
                f"{self.path / SUMMARY}: {purpose} needs a stage in {'/'.join(e.upper() for e in ensembles)}, "
                f"but the run's stages are: {found}"
            )
        return matching[-1]

    def production_stage(self) -> Stage:
        """The one stage whose frames are in the trajectory (the only one with `dump_every` set)."""
        dumped = [stage for stage in self.stages if stage.dump_every]
        if len(dumped) != 1:
            raise ValueError(
                f"{self.path / SUMMARY}: exactly one stage must have `dump_every` set (the stage the trajectory "
                f"holds), found {len(dumped)}"
            )
        return dumped[0]

    @cached_property
    def thermo(self) -> list[pd.DataFrame]:
        return read_thermo(self.path / LOG)

    @cached_property
    def topology(self) -> mda.Universe:
        """system.data alone (types, masses, molecules): enough for the density, no trajectory needed."""
        return load_universe(self.path, self.summary.get("type_elements"))

    @cached_property
    def universe(self) -> mda.Universe:
        """system.data with the production trajectory; MDAnalysis' frame times are those of the summary."""
        stage = self.production_stage()
        self.check_trajectory(stage)
        frame_ps = stage.dump_every * self.timestep_ps
        return load_universe(self.path, self.summary.get("type_elements"), with_trajectory=True, frame_ps=frame_ps)

    def check_trajectory(self, stage: Stage) -> None:
        """ValueError naming the damage if the trajectory is empty, cut short or not the production stage's, or the
        log stops before the stage's end (analysis/integrity.py); a missing trajectory is left to load_universe."""
        found = [self.path / name for name in TRAJECTORIES if (self.path / name).is_file()]
        if not found:
            return
        try:
            rows = stage_rows(self.thermo, stage.first_step, stage.last_step)
            logged = int(rows["Step"].max()) if len(rows) else stage.first_step - 1
        except (FileNotFoundError, ValueError):  # no usable log: the properties that need it say so
            logged = None
        check_trajectory(found[0], stage.first_step, stage.last_step, stage.dump_every, logged)

    @property
    def trajectory_path(self) -> Path:
        return Path(self.universe.trajectory.filename)


def open_run(run_dir: str | Path) -> Run:
    """The run in `run_dir` with its summary read and checked; FileNotFoundError/ValueError name the problem."""
    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: run directory does not exist")
    summary_path = path / SUMMARY
    if not summary_path.is_file():
        raise FileNotFoundError(f"{summary_path}: missing (the run's units, timestep and stages are read from it)")
    try:
        summary = json.loads(summary_path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{summary_path}: not valid JSON ({err}): the file is damaged") from None
    if not isinstance(summary, dict):
        raise ValueError(f"{summary_path}: expected a JSON object, found {type(summary).__name__}")
    missing = [key for key in SUMMARY_KEYS if key not in summary]
    missing += [f"stages[{i}].{key}" for i, s in enumerate(summary.get("stages", [])) for key in STAGE_KEYS if key not in s]
    if missing:
        raise ValueError(f"{summary_path}: missing keys: {', '.join(missing)}")
    if summary["units"] not in ("metal", "real"):
        raise ValueError(f"{summary_path}: units must be 'metal' or 'real', not {summary['units']!r}")
    # A crashed run is not analysed at all: the frames before a crash are seldom the physics one wants.
    error = last_error(path / LOG)
    if error:
        raise ValueError(f"{path / LOG}: the LAMMPS run failed: {error}")
    return Run(path, summary)


def load_universe(run_dir: Path, type_elements: list[str] | None = None, with_trajectory: bool = False,
                  frame_ps: float | None = None) -> mda.Universe:  # fmt: skip
    """`system.data` (with the run's unwrapped trajectory if asked), elements set on the atoms."""
    topology = run_dir / TOPOLOGY
    if not topology.is_file():
        raise FileNotFoundError(f"{topology}: missing (the topology: atom types, masses, molecules)")
    files, kwargs = [str(topology)], {"topology_format": "DATA", "atom_style": _atom_style(topology)}
    if with_trajectory:
        trajectories = [run_dir / name for name in TRAJECTORIES if (run_dir / name).is_file()]
        if not trajectories:
            raise FileNotFoundError(f"{run_dir}: no trajectory found (expected one of {', '.join(TRAJECTORIES)})")
        files.append(str(trajectories[0]))
        kwargs |= _dump_reader_options(trajectories[0]) if trajectories[0].suffix == ".lammpstrj" else {"format": "DCD"}
        kwargs["dt"] = frame_ps
    universe = mda.Universe(*files, **kwargs)
    universe.add_TopologyAttr("elements", _elements(universe, topology, type_elements))
    return universe


def _atom_style(topology: Path) -> str:
    """MDAnalysis' column description for the style named in the `Atoms # STYLE` line (as write_data writes it)."""
    with open(topology) as f:
        header = next((line for line in f if line.split()[:1] == ["Atoms"]), "")
    style = header.partition("#")[2].strip() or "full"
    if style not in ATOM_STYLE_COLUMNS:
        raise ValueError(f"{topology}: atom_style {style!r} is not supported; use {' or '.join(ATOM_STYLE_COLUMNS)}")
    return ATOM_STYLE_COLUMNS[style]


def _dump_reader_options(trajectory: Path) -> dict:
    """MDAnalysis' reader options for a LAMMPS dump: unwrapped `xu yu zu`, or `x y z` with image flags."""
    with open(trajectory) as f:
        header = next((line for line in f if line.startswith("ITEM: ATOMS")), "")
    columns = set(header.split()[2:])
    if {"xu", "yu", "zu"} <= columns:
        return {"format": "LAMMPSDUMP", "lammps_coordinate_convention": "unwrapped"}
    if {"x", "y", "z", "ix", "iy", "iz"} <= columns:
        return {"format": "LAMMPSDUMP", "lammps_coordinate_convention": "unscaled", "unwrap_images": True}
    raise ValueError(
        f"{trajectory}: needs unwrapped coordinates (columns xu yu zu) or x y z with image flags ix iy iz "
        f"for diffusion; its columns are: {header.strip() or 'no ITEM: ATOMS line'}"
    )


def _elements(universe: mda.Universe, topology: Path, type_elements: list[str] | None) -> np.ndarray:
    """Element symbol per atom: from summary.json `type_elements` (type 1 first), or from the type masses."""
    types = universe.atoms.types.astype(int)
    if type_elements is not None:
        if types.max() > len(type_elements):
            raise ValueError(f"summary.json: type_elements has {len(type_elements)} entries, {topology} has type {types.max()}")
        return np.array([type_elements[t - 1] for t in types])
    if not hasattr(universe.atoms, "masses") or np.any(universe.atoms.masses <= 0):
        raise ValueError(f"{topology}: no Masses section; give `type_elements` in summary.json")
    standard = np.asarray(atomic_masses[1:])
    closest = np.abs(universe.atoms.masses[:, None] - standard[None, :]).argmin(axis=1)
    unknown = np.abs(standard[closest] - universe.atoms.masses) > MASS_TOLERANCE_AMU
    if unknown.any():
        raise ValueError(
            f"{topology}: mass {universe.atoms.masses[unknown][0]:.4f} is no element's standard atomic weight "
            "(e.g. deuterium); give `type_elements` in summary.json"
        )
    return np.array([chemical_symbols[1 + i] for i in closest])


def water_atoms(universe: mda.Universe, source: Path) -> tuple[mda.AtomGroup, mda.AtomGroup]:
    """Oxygens, and hydrogens ordered as their molecules (H of O[i] at 2i, 2i+1).

    Molecules are the data file's molecule IDs (atom_style full) or, without them (atom_style atomic),
    each hydrogen's nearest oxygen (minimum image) in the first frame. The ordering lets InterRDF's
    `exclusion_block` drop intramolecular pairs whatever the atom order of the files.
    """
    oxygens = universe.select_atoms("element O")
    hydrogens = universe.select_atoms("element H")
    if len(oxygens) == 0 or len(hydrogens) != 2 * len(oxygens) or len(universe.atoms) != 3 * len(oxygens):
        raise ValueError(f"{source}: not pure water ({len(oxygens)} O, {len(hydrogens)} H, {len(universe.atoms)} atoms)")
    if len(universe.residues) == len(oxygens):
        molecule_of = np.full(len(universe.residues), -1)
        molecule_of[oxygens.resindices] = np.arange(len(oxygens))
        owner = molecule_of[hydrogens.resindices]
    else:
        universe.trajectory[0]
        owner = distance_array(hydrogens.positions, oxygens.positions, box=universe.dimensions).argmin(axis=1)
    counts = np.bincount(owner[owner >= 0], minlength=len(oxygens))
    if np.any(owner < 0) or np.any(counts != 2):
        raise ValueError(f"{source}: {np.sum(counts != 2)} oxygens do not have exactly two hydrogens in their molecule")
    return oxygens, hydrogens[np.argsort(owner, kind="stable")]
