"""Self-diffusion of water oxygens from the MSD (MDAnalysis EinsteinMSD, FFT), with the Yeh–Hummer correction.

Fit window (the documented rule): lags from max(1 ps, 10 % of the trajectory) to 50 % of it. In liquid
water the ballistic and cage regimes of the MSD end well before 1 ps, so a window starting there is in
the linear (diffusive) regime; lags beyond half the trajectory are averaged over few time origins and
are noisy. The slope of log MSD against log lag in the window is reported as `msd_exponent`: 1 in the
diffusive regime.

Error: D is fitted for each molecule (slope/6 of its MSD in the window); D_PBC is their mean and its
error the standard error of the mean over molecules.

Finite size (Yeh & Hummer, J. Phys. Chem. B 108, 15873 (2004)): D_∞ = D_PBC + ξ k_B T / (6 π η L) with
ξ = 2.837297 for a cubic box of edge L, η the shear viscosity (default: experiment, 0.896 mPa·s at
298 K) and T the mean logged temperature of the stage. Diffusion coefficients are in 1e-9 m²/s.
"""

from __future__ import annotations

import numpy as np
from MDAnalysis.analysis.msd import EinsteinMSD
from scipy.constants import Boltzmann

from tpainn.analysis.rundir import TOPOLOGY, Run, water_atoms
from tpainn.analysis.thermo import stage_rows

YEH_HUMMER_XI = 2.837297
WATER_VISCOSITY_MPA_S = 0.896
FIT_START_MIN_PS = 1.0
FIT_START_FRACTION = 0.1
FIT_END_FRACTION = 0.5
MIN_FIT_POINTS = 5
# Å²/ps in units of 1e-9 m²/s: 1e-20 m² / 1e-12 s = 1e-8 m²/s.
A2_PER_PS_IN_1E9_M2_PER_S = 10.0
# Edges of a "cubic" box may differ by this fraction (the correction's ξ holds for cubes only).
CUBIC_TOLERANCE = 1e-3


def diffusion(run: Run, fit_window_ps: tuple[float, float] | None = None,
              viscosity_mPa_s: float = WATER_VISCOSITY_MPA_S) -> dict:  # fmt: skip
    """D_PBC, Yeh–Hummer correction and D_∞ (1e-9 m²/s) of the oxygens in the production trajectory."""
    stage = run.production_stage()
    universe = run.universe
    oxygens, _ = water_atoms(universe, run.path / TOPOLOGY)
    frame_ps = stage.dump_every * run.timestep_ps
    lag_ps = np.arange(universe.trajectory.n_frames) * frame_ps
    start_ps, end_ps = fit_window_ps or default_fit_window(lag_ps[-1])
    window = (lag_ps >= start_ps) & (lag_ps <= end_ps)
    if end_ps > lag_ps[-1] or window.sum() < MIN_FIT_POINTS:
        raise ValueError(
            f"{run.trajectory_path}: the trajectory spans {lag_ps[-1]:.2f} ps ({len(lag_ps)} frames, {frame_ps:g} ps "
            f"apart), shorter than the MSD fit window {start_ps:.2f}–{end_ps:.2f} ps needs ({MIN_FIT_POINTS} lags); "
            f"the default window starts at {FIT_START_MIN_PS} ps and ends at half the trajectory"
        )
    msd = EinsteinMSD(oxygens, select="all", msd_type="xyz", fft=True).run()
    per_molecule = msd.results.msds_by_particle
    slopes, intercepts = np.polyfit(lag_ps[window], per_molecule[window], 1)
    d_molecules = slopes / 6.0 * A2_PER_PS_IN_1E9_M2_PER_S
    d_pbc, d_error = float(d_molecules.mean()), float(d_molecules.std(ddof=1) / np.sqrt(len(d_molecules)))
    mean_msd = msd.results.timeseries
    rows = stage_rows(run.thermo, stage.first_step, stage.last_step)
    temperature = float(rows["Temp"].mean())
    box_length = _cubic_box_length(run, universe.dimensions[:3], rows["Volume"].to_numpy())
    correction = yeh_hummer_correction(temperature, box_length, viscosity_mPa_s)
    return {
        "D_pbc_1e-9_m2_s": d_pbc,
        "D_pbc_error_1e-9_m2_s": d_error,
        "correction_1e-9_m2_s": correction,
        "D_inf_1e-9_m2_s": d_pbc + correction,
        "fit_window_ps": [float(start_ps), float(end_ps)],
        "fit_intercept_A2": float(intercepts.mean()),
        "msd_exponent": float(np.polyfit(np.log(lag_ps[window]), np.log(mean_msd[window]), 1)[0]),
        "temperature_K": temperature,
        "box_length_A": box_length,
        "viscosity_mPa_s": viscosity_mPa_s,
        "n_molecules": len(oxygens),
        "lag_ps": lag_ps.tolist(),
        "msd_A2": mean_msd.tolist(),
    }


def default_fit_window(duration_ps: float) -> tuple[float, float]:
    """The documented rule: lags from max(1 ps, 10 % of the trajectory) to 50 % of it (ps)."""
    return max(FIT_START_MIN_PS, FIT_START_FRACTION * duration_ps), FIT_END_FRACTION * duration_ps


def yeh_hummer_correction(temperature_K: float, box_length_A: float, viscosity_mPa_s: float) -> float:
    """ξ k_B T / (6 π η L) for a cubic box, in 1e-9 m²/s."""
    correction_m2_s = YEH_HUMMER_XI * Boltzmann * temperature_K / (
        6 * np.pi * viscosity_mPa_s * 1e-3 * box_length_A * 1e-10
    )
    return float(correction_m2_s * 1e9)


def _cubic_box_length(run: Run, edges_A: np.ndarray, volumes_A3: np.ndarray) -> float:
    """Mean edge (Å) over the stage's logged volumes; ValueError if the trajectory's box is not a cube."""
    if np.ptp(edges_A) > CUBIC_TOLERANCE * edges_A.mean():
        raise ValueError(
            f"{run.trajectory_path}: box edges {np.round(edges_A, 3).tolist()} Å are not cubic; the Yeh–Hummer "
            "constant 2.837297 holds for cubic boxes only"
        )
    if len(volumes_A3) == 0:
        raise ValueError(f"{run.path / 'log.lammps'}: no thermo rows in the production stage (for T and the box volume)")
    return float(np.mean(volumes_A3 ** (1.0 / 3.0)))
