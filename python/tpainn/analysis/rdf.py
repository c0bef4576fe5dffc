"""O–O, O–H and H–H radial distribution functions (MDAnalysis InterRDF) of the production trajectory.

Only intermolecular pairs are counted (InterRDF `exclusion_block` over molecules), so O–H and H–H show
the hydrogen-bond structure, not the covalent geometry. The range ends at half the shortest box edge
(beyond it the minimum image is not unique).

First peak (the documented rule): the smallest-r maximum of g(r) (scipy.signal.find_peaks) whose
prominence (its height above the higher of its two bases, within ±`PEAK_WINDOW_A`) is at least
`PEAK_PROMINENCE` and at least `PEAK_NOISE_FACTOR` times the counting noise of that difference (g/√n in
a bin of n pairs, for the peak and the base), so that shoulders and noise (large at small r, where few
pairs fall in a bin) are not taken for peaks; None where there is none (an ideal gas).
"""

from __future__ import annotations

import numpy as np
from MDAnalysis.analysis.rdf import InterRDF
from scipy.signal import find_peaks

from tpainn.analysis.rundir import TOPOLOGY, Run, water_atoms

BIN_WIDTH_A = 0.05
PEAK_PROMINENCE = 0.2
PEAK_NOISE_FACTOR = 5.0
# Half-width of the window of the prominence: wider than a liquid's first peak, narrower than the range of
# r, so a noise maximum is not measured against the empty region at small r.
PEAK_WINDOW_A = 0.5
# Liquid water has no intermolecular H–H pair closer than this (Å); the H–H RDF reports its largest g below it.
SHORT_HH_A = 1.6


def rdfs(run: Run) -> dict:
    """{'O-O' | 'O-H' | 'H-H': {r_A, g, first_peak_A, first_peak_height}} over all frames of the trajectory;
    H-H also has `max_g_below_1.6_A`, its largest g below SHORT_HH_A (liquid water: 0)."""
    run.production_stage()  # the trajectory must be the one stage with dumps
    oxygens, hydrogens = water_atoms(run.universe, run.path / TOPOLOGY)
    r_max = _half_shortest_edge(run)
    n_bins = int(r_max / BIN_WIDTH_A)
    pairs = {"O-O": (oxygens, oxygens, (1, 1)), "O-H": (oxygens, hydrogens, (1, 2)), "H-H": (hydrogens, hydrogens, (2, 2))}
    results = {}
    for name, (first, second, per_molecule) in pairs.items():
        rdf = InterRDF(first, second, nbins=n_bins, range=(0.0, n_bins * BIN_WIDTH_A), exclusion_block=per_molecule).run()
        # InterRDF counts each pair of a group with itself twice (A–B and B–A).
        pair_counts = rdf.results.count / (2 if first is second else 1)
        peak = first_peak(rdf.results.bins, rdf.results.rdf, pair_counts)
        results[name] = {"r_A": rdf.results.bins.tolist(), "g": rdf.results.rdf.tolist(), **peak}
    results["H-H"]["max_g_below_1.6_A"] = max_g_below(results["H-H"]["r_A"], results["H-H"]["g"], SHORT_HH_A)
    return results


def max_g_below(r_A, g, limit_A: float) -> float:
    """The largest g(r) over the bins that lie wholly below `limit_A` (bin centre + half a bin ≤ limit)."""
    r_A, g = np.asarray(r_A), np.asarray(g)
    inside = r_A + (r_A[1] - r_A[0]) / 2 <= limit_A + 1e-9
    return float(g[inside].max()) if inside.any() else 0.0


def first_peak(r_A: np.ndarray, g: np.ndarray, pair_counts: np.ndarray) -> dict:
    """Position (Å) and height of the first maximum of g(r) that stands out of shoulders and noise, or None."""
    g = np.asarray(g)
    window_bins = 2 * int(round(PEAK_WINDOW_A / (r_A[1] - r_A[0]))) + 1
    peaks, properties = find_peaks(g, prominence=PEAK_PROMINENCE, wlen=window_bins)
    bases = np.where(g[properties["left_bases"]] > g[properties["right_bases"]], properties["left_bases"], properties["right_bases"])
    variance = g**2 / np.maximum(np.asarray(pair_counts), 1)
    noise = np.sqrt(variance[peaks] + variance[bases])
    significant = peaks[properties["prominences"] >= PEAK_NOISE_FACTOR * noise]
    if len(significant) == 0:
        return {"first_peak_A": None, "first_peak_height": None}
    return {"first_peak_A": float(r_A[significant[0]]), "first_peak_height": float(g[significant[0]])}


def _half_shortest_edge(run: Run) -> float:
    """Half the shortest box edge over the trajectory (Å); NPT boxes shrink and grow."""
    trajectory = run.universe.trajectory
    return float(min(ts.dimensions[:3].min() for ts in trajectory)) / 2.0
