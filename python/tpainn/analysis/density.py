"""Mean density (g/cm³) of the NPT stage, with equilibration discarded and a block-averaging error.

Density is computed from the logged `Volume` (Å³) and the total mass of `system.data` (g/mol), so it
needs no `Density` thermo column and means the same in `metal` and `real` units.

Equilibration: unless `equilibration_ps` is given, the start of the NPT stage is discarded by pymbar's
`detect_equilibration` (Chodera, JCTC 12, 1799 (2016)): the cut that maximises the number of
uncorrelated samples left, but at most the first half of the stage. A series that pymbar would cut later is
not stationary (a box still moving, or a stage too short): its second half is averaged and flagged (Drift).

Error: the rest is cut into `n_blocks` equal consecutive blocks; the error is the standard error of the
block means, std(block means)/sqrt(n_blocks). Blocks much longer than the correlation time make the
block means independent, so the error includes the time correlation of the series.

Drift: a mean and error assume a stationary series. A box that keeps expanding or shrinking (a model with no
liquid at this pressure) is flagged: the least-squares slope of the block means against time, with its
standard error from the same (independent) block means, differs from zero by more than DRIFT_T_LIMIT of them.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.constants import atomic_mass
from scipy.stats import linregress

from tpainn.analysis.rundir import TOPOLOGY, Run
from tpainn.analysis.thermo import stage_rows
from tpainn.classical.units import ATM_TO_BAR

# g/cm³ of one amu (g/mol per atom) in one Å³.
G_PER_CM3_PER_AMU_PER_A3 = atomic_mass * 1e3 / 1e-24
DEFAULT_BLOCKS = 10
# Fewer samples than this per block give no usable spread of the block means.
MIN_SAMPLES_PER_BLOCK = 2
# |slope| / standard error of the block means' trend above which the density drifts (t test with n_blocks − 2
# degrees of freedom: a stationary series exceeds 4 with probability 0.4 % for 10 blocks).
DRIFT_T_LIMIT = 4.0


def density(run: Run, equilibration_ps: float | None = None, n_blocks: int = DEFAULT_BLOCKS) -> dict:
    """Density of the run's last NPT stage: mean and error (g/cm³), the discarded time, the series."""
    stage = run.last_stage(("npt",), purpose="a density")
    rows = stage_rows(run.thermo, stage.first_step, stage.last_step)
    mass_amu = float(run.topology.atoms.masses.sum())
    time_ps = (rows["Step"].to_numpy() - stage.first_step) * run.timestep_ps
    series = mass_amu / rows["Volume"].to_numpy() * G_PER_CM3_PER_AMU_PER_A3
    _require_samples(run, stage.name, len(series), "in all", n_blocks)
    start = _equilibration_index(series, time_ps, equilibration_ps)
    _require_samples(run, stage.name, len(series) - start, f"after {time_ps[start]:.2f} ps of equilibration", n_blocks)
    mean, error = block_average(series[start:], n_blocks)
    drift, drift_error = block_trend(time_ps[start:], series[start:], n_blocks)
    pressure_bar = rows["Press"].to_numpy()[start:] * (ATM_TO_BAR if run.summary["units"] == "real" else 1.0)
    return {
        "mean_g_cm3": mean,
        "error_g_cm3": error,
        "n_blocks": n_blocks,
        "equilibration_ps": float(time_ps[start]),
        "averaged_ps": float(time_ps[-1] - time_ps[start]),
        "drift_g_cm3_per_ps": drift,
        "drift_error_g_cm3_per_ps": drift_error,
        "drifting": bool(abs(drift) > DRIFT_T_LIMIT * drift_error),
        "mass_source": TOPOLOGY,
        "mean_temperature_K": float(rows["Temp"].to_numpy()[start:].mean()),
        "mean_pressure_bar": float(pressure_bar.mean()),
        "stage_complete": stage.complete,
        "time_ps": time_ps.tolist(),
        "density_g_cm3": series.tolist(),
    }


def fixed_density(run: Run) -> float:
    """Density (g/cm³) of a run without an NPT stage: its mass over the constant volume of its production."""
    stage = run.production_stage()
    volumes = stage_rows(run.thermo, stage.first_step, stage.last_step)["Volume"].to_numpy()
    if len(volumes) == 0 or np.ptp(volumes) > 1e-6 * volumes.mean():
        raise ValueError(f"{run.path / 'log.lammps'}: the production stage '{stage.name}' has no constant volume")
    return float(run.topology.atoms.masses.sum() / volumes.mean() * G_PER_CM3_PER_AMU_PER_A3)


def block_average(series: np.ndarray, n_blocks: int = DEFAULT_BLOCKS) -> tuple[float, float]:
    """Mean of `series` and its standard error from `n_blocks` equal consecutive blocks (the tail left over
    by an uneven split is dropped from the error estimate only)."""
    series = np.asarray(series, dtype=float)
    if n_blocks < 2 or len(series) < n_blocks:
        raise ValueError(f"block averaging needs at least 2 blocks of one sample; got {len(series)} samples, {n_blocks} blocks")
    means = block_means(series, n_blocks)
    return float(series.mean()), float(means.std(ddof=1) / np.sqrt(n_blocks))


def block_means(series: np.ndarray, n_blocks: int) -> np.ndarray:
    """Means of `n_blocks` equal consecutive blocks of `series` (the tail of an uneven split left out)."""
    block_length = len(series) // n_blocks
    return np.asarray(series, dtype=float)[: block_length * n_blocks].reshape(n_blocks, block_length).mean(axis=1)


def block_trend(time: np.ndarray, series: np.ndarray, n_blocks: int = DEFAULT_BLOCKS) -> tuple[float, float]:
    """Slope of `series` against `time` and its standard error, from the means of `n_blocks` consecutive blocks."""
    fit = linregress(block_means(time, n_blocks), block_means(series, n_blocks))
    return float(fit.slope), float(fit.stderr)


def _require_samples(run: Run, stage_name: str, n_samples: int, when: str, n_blocks: int) -> None:
    if n_samples < n_blocks * MIN_SAMPLES_PER_BLOCK:
        raise ValueError(
            f"{run.path / 'log.lammps'}: the NPT stage '{stage_name}' has {n_samples} thermo rows {when}; block "
            f"averaging with {n_blocks} blocks needs at least {n_blocks * MIN_SAMPLES_PER_BLOCK} "
            "(run longer or log thermo more often)"
        )


def _equilibration_index(series: np.ndarray, time_ps: np.ndarray, equilibration_ps: float | None) -> int:
    """First sample after equilibration: configured (ps from the stage start) or detected by pymbar."""
    if equilibration_ps is not None:
        return int(np.searchsorted(time_ps, equilibration_ps))
    # pymbar logs a banner about the optional JAX on import; it is irrelevant for detect_equilibration.
    logging.getLogger("pymbar").setLevel(logging.ERROR)
    from pymbar.timeseries import detect_equilibration

    start, _, _ = detect_equilibration(series)
    return min(int(start), len(series) // 2)
