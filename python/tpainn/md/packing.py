"""The initial liquid box: N water molecules packed by Packmol (Martínez et al., J. Comput. Chem. 30, 2157
(2009)) in a periodic cube, at random positions and orientations, every two atoms of different molecules
at least `TOLERANCE_A` apart across the periodic boundaries.

Packmol rather than tpainn.classical.water_sampling.initial_positions: that one puts the molecules on the sites
of a simple cubic lattice and only tries (200 random orientations) to keep them 1.8 Å apart, which is
enough for the pretraining data (each state is minimised and equilibrated at fixed density, and only
decorrelated frames are kept); the production run's NVT equilibration is short (1 ps at the quick scale),
and a start at random positions needs no lattice to melt first. Packmol places the molecules at random in
the whole box and guarantees the distance (it fails rather than returning clashes), seeded.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tpainn.classical.water_model import WaterModel, molecule_geometry
from tpainn.md.programs import ExternalProgramError, find_program

# Packmol's recommended tolerance for water: minimisation then removes the remaining strain quickly.
TOLERANCE_A = 2.0


def pack_water_box(model: WaterModel, n_molecules: int, length_A: float, seed: int) -> np.ndarray:
    """(3N, 3) positions (Å) O, H, H per molecule in the periodic cube [0, length)³, molecules whole.

    Atoms may lie slightly outside the cube (molecules are not split at the boundary); LAMMPS wraps them
    into the box with image flags when it reads the data file.
    """
    geometry = molecule_geometry(model)
    with tempfile.TemporaryDirectory(prefix="tpainn-packmol-") as tmp:
        tmp = Path(tmp)
        lines = [f"{len(geometry)}", "water (O, H, H)"]
        lines += [f"{symbol} {x:.10f} {y:.10f} {z:.10f}" for symbol, (x, y, z) in zip("OHH", geometry)]
        (tmp / "molecule.xyz").write_text("\n".join(lines) + "\n")
        (tmp / "pack.inp").write_text(
            "\n".join([
                f"tolerance {TOLERANCE_A}", "filetype xyz", "output box.xyz", f"seed {seed}",
                f"pbc 0.0 0.0 0.0 {length_A:.10f} {length_A:.10f} {length_A:.10f}",
                "structure molecule.xyz", f"  number {n_molecules}", "end structure", "",
            ])
        )  # fmt: skip
        with open(tmp / "pack.inp") as stdin:
            packmol = find_program("packmol", "`pip install packmol` (a dependency of tpainn)")
            done = subprocess.run([str(packmol)], stdin=stdin, cwd=tmp, capture_output=True, text=True)
        output = tmp / "box.xyz"
        if done.returncode != 0 or not output.is_file() or "Success!" not in done.stdout:
            raise ExternalProgramError(f"packmol could not pack {n_molecules} molecules in a {length_A:.3f} Å box "
                                       f"(exit {done.returncode}): {(done.stdout + done.stderr)[-1500:]}")  # fmt: skip
        rows = output.read_text().splitlines()[2 : 2 + 3 * n_molecules]
    symbols = [row.split()[0] for row in rows]
    if symbols != ["O", "H", "H"] * n_molecules:
        raise ExternalProgramError("packmol's output is not O, H, H per molecule")
    return np.array([[float(v) for v in row.split()[1:4]] for row in rows], dtype=np.float64)
