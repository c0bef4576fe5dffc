"""Short intermolecular contacts in the production trajectory: H–H closer than 1.6 Å, O–H closer than 1.3 Å.

Liquid water has none: its intermolecular H–H pairs start near 1.8 Å and its intermolecular O–H pairs (the
hydrogen bonds, H···O ≈ 1.8 Å) near 1.5 Å. A model whose hydrogens of different molecules collapse onto each other (a spike of the
intermolecular g_HH near 1.2 Å) or whose protons sit on a neighbour's oxygen shows them in every frame.

Per frame, the pairs of atoms of different molecules closer than the limit are counted (minimum image in
the frame's box, MDAnalysis `capped_distance`); molecules are those of the RDFs (`rundir.water_atoms`:
the data file's molecule IDs, else each hydrogen's nearest oxygen), so the covalent O–H and the H–H of one
molecule never count. Reported per pair kind: the mean count per frame, the fraction of frames with at
least one such pair, the largest count, the shortest such distance, and the count of every frame.
"""

from __future__ import annotations

import numpy as np
from MDAnalysis.lib.distances import capped_distance, self_capped_distance

from tpainn.analysis.rundir import TOPOLOGY, Run, water_atoms

# Intermolecular pairs closer than these (Å) are no liquid water.
LIMITS_A = {"H-H": 1.6, "O-H": 1.3}


def short_contacts(run: Run) -> dict:
    """{'H-H' | 'O-H': {limit_A, mean_per_frame, fraction_of_frames, max_per_frame, min_distance_A,
    per_frame}, 'n_frames'} over all frames of the trajectory."""
    run.production_stage()  # the trajectory must be the one stage with dumps
    oxygens, hydrogens = water_atoms(run.universe, run.path / TOPOLOGY)
    # Molecule of each atom: oxygen i is molecule i; hydrogens 2i and 2i + 1 are molecule i.
    hydrogen_molecule = np.arange(len(hydrogens)) // 2
    counts = {name: [] for name in LIMITS_A}
    closest = dict.fromkeys(LIMITS_A, np.inf)
    trajectory = run.universe.trajectory
    for ts in trajectory:
        if ts.dimensions is None or np.any(ts.dimensions[:3] <= 0):
            raise ValueError(f"{trajectory.filename}: frame {ts.frame} has no periodic box")
        found = {
            "H-H": _hh_pairs(hydrogens.positions, hydrogen_molecule, ts.dimensions),
            "O-H": _oh_pairs(oxygens.positions, hydrogens.positions, hydrogen_molecule, ts.dimensions),
        }
        for name, distances in found.items():
            counts[name].append(len(distances))
            if len(distances):
                closest[name] = min(closest[name], float(distances.min()))
    if not counts["H-H"]:
        raise ValueError(f"{trajectory.filename}: the trajectory has no frames")
    result: dict = {"n_frames": len(counts["H-H"])}
    for name, limit in LIMITS_A.items():
        per_frame = np.asarray(counts[name])
        result[name] = {
            "limit_A": limit,
            "mean_per_frame": float(per_frame.mean()),
            "fraction_of_frames": float(np.mean(per_frame > 0)),
            "max_per_frame": int(per_frame.max()),
            "min_distance_A": None if np.isinf(closest[name]) else closest[name],
            "per_frame": per_frame.tolist(),
        }
    return result


def _hh_pairs(hydrogens: np.ndarray, molecule: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Distances of the intermolecular H–H pairs (each once) closer than the limit."""
    pairs, distances = self_capped_distance(hydrogens, LIMITS_A["H-H"], box=box)
    keep = (molecule[pairs[:, 0]] != molecule[pairs[:, 1]]) & (distances < LIMITS_A["H-H"])
    return distances[keep]


def _oh_pairs(oxygens: np.ndarray, hydrogens: np.ndarray, hydrogen_molecule: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Distances of the intermolecular O–H pairs closer than the limit."""
    pairs, distances = capped_distance(oxygens, hydrogens, LIMITS_A["O-H"], box=box)
    keep = (pairs[:, 0] != hydrogen_molecule[pairs[:, 1]]) & (distances < LIMITS_A["O-H"])
    return distances[keep]
