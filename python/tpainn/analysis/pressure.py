"""Mean pressure (bar) of the production stage, at fixed volume, with a block-averaging error.

The production stage (NVT or NVE in `tpainn md water`) runs at one volume: the packed box's density
(`--density`) when the run has no NPT stage (`--npt-ps 0`), else the volume the NPT stage ended at. Its
mean pressure says how far the model is from the target pressure at that density; in a run with NPT it is
close to the barostat's target (only the final NPT volume is kept), and is shown all the same.

The pressure is LAMMPS' thermo `press` (the `Press` column of log.lammps: the virial plus the kinetic
term). Its unit is the run's `units` (summary.json): bar in `metal`, atm in `real` (converted to bar).
The whole stage is averaged (the NVT equilibration before it is the settling); the error is the
standard error of `n_blocks` consecutive block means (density.block_average), so time correlation counts.
"""

from __future__ import annotations

import numpy as np

from tpainn.analysis.density import ATM_TO_BAR, DEFAULT_BLOCKS, G_PER_CM3_PER_AMU_PER_A3, MIN_SAMPLES_PER_BLOCK, block_average
from tpainn.analysis.rundir import Run
from tpainn.analysis.thermo import stage_rows

# bar per unit of LAMMPS' thermo `press`, per unit style (https://docs.lammps.org/units.html).
BAR_PER_PRESSURE_UNIT = {"metal": 1.0, "real": ATM_TO_BAR}
# Relative spread of the logged volume above which a stage is not at fixed volume.
FIXED_VOLUME_TOLERANCE = 1e-6


def pressure(run: Run, n_blocks: int = DEFAULT_BLOCKS) -> dict:
    """Mean pressure of the production stage and its error (bar), the stage, its density and the series."""
    stage = run.production_stage()
    rows = stage_rows(run.thermo, stage.first_step, stage.last_step)
    log = run.path / "log.lammps"
    if len(rows) < n_blocks * MIN_SAMPLES_PER_BLOCK:
        raise ValueError(
            f"{log}: the production stage '{stage.name}' has {len(rows)} thermo rows; block averaging with "
            f"{n_blocks} blocks needs at least {n_blocks * MIN_SAMPLES_PER_BLOCK} (run longer or log thermo more often)"
        )
    volumes = rows["Volume"].to_numpy(dtype=float)
    if np.ptp(volumes) > FIXED_VOLUME_TOLERANCE * volumes.mean():
        raise ValueError(f"{log}: the production stage '{stage.name}' is not at fixed volume (its volume changes)")
    series_bar = rows["Press"].to_numpy(dtype=float) * BAR_PER_PRESSURE_UNIT[run.summary["units"]]
    if not np.all(np.isfinite(series_bar)):
        raise ValueError(f"{log}: the production stage '{stage.name}' logs a non-finite pressure")
    mean, error = block_average(series_bar, n_blocks)
    time_ps = (rows["Step"].to_numpy() - stage.first_step) * run.timestep_ps
    return {
        "mean_bar": mean,
        "error_bar": error,
        "n_blocks": n_blocks,
        "n_samples": len(series_bar),
        "stage": stage.name,
        "ensemble": stage.ensemble.lower(),
        "averaged_ps": float(time_ps[-1] - time_ps[0]),
        "density_g_cm3": float(run.topology.atoms.masses.sum() / volumes.mean() * G_PER_CM3_PER_AMU_PER_A3),
        "log_units": run.summary["units"],
        "time_ps": time_ps.tolist(),
        "pressure_bar": series_bar.tolist(),
    }
