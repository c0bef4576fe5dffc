"""Synthetic LAMMPS run directories with known answers, in the run-directory contract's own formats (LAMMPS
data, log and dump text, DCD via MDAnalysis): for the tests of `tpainn analyze` and of its bad inputs."""

import json
from pathlib import Path

import MDAnalysis as mda
import numpy as np

MASS_O, MASS_H = 15.9994, 1.008
# Rigid water geometry (Å): O at the origin, H at 0.9572 Å, H–O–H 104.52°.
WATER = np.array([[0.0, 0.0, 0.0], [0.9572, 0.0, 0.0], [-0.2400, 0.9266, 0.0]])
N_MOLECULES = 64
BOX_A = 12.42  # 64 H2O at ≈ 0.997 g/cm³
TIMESTEP_FS = 0.5
DUMP_EVERY = 200  # 0.1 ps between frames
THERMO_EVERY = 100
TEMPERATURE_K = 300.0


# --- writers of the contract's files ---------------------------------------------------------------

def molecules(rng, n_molecules: int, box: float) -> np.ndarray:
    """(n_molecules * 3, 3) positions O, H, H per molecule at uniform random places (overlaps allowed)."""
    centers = rng.uniform(0, box, (n_molecules, 1, 3))
    return (centers + WATER[None]).reshape(-1, 3)


def lattice_molecules(n_per_edge: int, box: float) -> np.ndarray:
    """Molecules on a cubic grid: no hydrogen is nearer to another molecule's oxygen than to its own."""
    grid = np.stack(np.meshgrid(*[np.arange(n_per_edge)] * 3, indexing="ij"), axis=-1).reshape(-1, 1, 3)
    return (grid * box / n_per_edge + WATER[None]).reshape(-1, 3)


def write_data(path: Path, positions: np.ndarray, box: float, style: str, types: np.ndarray, molecule_ids: np.ndarray) -> None:
    """LAMMPS data file; atom ids are 1, 2, ... in the order of `positions`."""
    lines = ["LAMMPS data file (synthetic)", "", f"{len(positions)} atoms", "2 atom types", ""]
    lines += [f"0.0 {box} {axis}lo {axis}hi" for axis in "xyz"]
    lines += ["", "Masses", "", f"1 {MASS_O}", f"2 {MASS_H}", "", f"Atoms # {style}", ""]
    for i, ((x, y, z), atom_type, molecule) in enumerate(zip(positions, types, molecule_ids)):
        charge = -0.82 if atom_type == 1 else 0.41
        fields = f"{i + 1} {molecule} {atom_type} {charge}" if style == "full" else f"{i + 1} {atom_type}"
        lines.append(f"{fields} {x:.6f} {y:.6f} {z:.6f}")
    path.write_text("\n".join(lines) + "\n")


def write_dump(path: Path, frames: np.ndarray, box: float, types: np.ndarray, first_step: int, columns: str) -> None:
    """LAMMPS custom dump: `xu` (unwrapped) or `images` (wrapped x y z with image flags ix iy iz)."""
    ids = np.arange(1, frames.shape[1] + 1)
    with open(path, "w") as f:
        for k, positions in enumerate(frames):
            f.write(f"ITEM: TIMESTEP\n{first_step + k * DUMP_EVERY}\nITEM: NUMBER OF ATOMS\n{len(ids)}\n")
            f.write("ITEM: BOX BOUNDS pp pp pp\n" + f"0.0 {box}\n" * 3)
            if columns == "xu":
                f.write("ITEM: ATOMS id type xu yu zu\n")
                np.savetxt(f, np.column_stack([ids, types, positions]), fmt="%d %d %.5f %.5f %.5f")
            else:
                images = np.floor(positions / box)
                f.write("ITEM: ATOMS id type x y z ix iy iz\n")
                np.savetxt(f, np.column_stack([ids, types, positions - images * box, images]),
                           fmt="%d %d %.5f %.5f %.5f %d %d %d")  # fmt: skip


def write_dcd(path: Path, frames: np.ndarray, box: float) -> None:
    universe = mda.Universe.empty(frames.shape[1], trajectory=True)
    universe.dimensions = [box, box, box, 90, 90, 90]
    with mda.Writer(str(path), frames.shape[1]) as writer:
        for positions in frames:
            universe.atoms.positions = positions
            writer.write(universe)


def thermo_block(steps: np.ndarray, volumes: np.ndarray, rng) -> str:
    """A LAMMPS `thermo_style custom step temp pe press vol` block, as `run` prints it."""
    rows = [f"Per MPI rank memory allocation (min/avg/max) = 9.5 | 9.5 | 9.5 Mbytes",
            "   Step          Temp          PotEng         Press          Volume    "]  # fmt: skip
    for step, volume in zip(steps, volumes):
        temp = TEMPERATURE_K + rng.normal(0, 5)
        rows.append(f"{step:10d}   {temp:12.6f}  {-3000 + rng.normal(0, 3):14.6f}  {rng.normal(1, 300):12.6f}  {volume:14.6f}")
    rows.append(f"Loop time of 1.234 on 1 procs for {steps[-1] - steps[0]} steps with 192 atoms\n")
    return "\n".join(rows)


def write_run(path: Path, frames: np.ndarray, box: float, *, model: str = "synthetic", trajectory: str = "dcd",
              npt_volumes: np.ndarray | None = None, style: str = "full", order: np.ndarray | None = None,
              seed: int = 0) -> Path:  # fmt: skip
    """A run directory: NVT equilibration, NPT (if `npt_volumes`), then NVT production holding `frames`."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    stages, log, step = [], ["LAMMPS (22 Jul 2025 - Update 4)", "units metal"], 0
    parts = [("equilibration", "nvt", np.full(11, box**3), None)]
    if npt_volumes is not None:
        parts.append(("density", "npt", npt_volumes, None))
    n_production_rows = (len(frames) - 1) * DUMP_EVERY // THERMO_EVERY + 1
    parts.append(("production", "nvt", np.full(n_production_rows, box**3), DUMP_EVERY))
    for name, ensemble, volumes, dump_every in parts:
        steps = step + THERMO_EVERY * np.arange(len(volumes))
        stages.append({"name": name, "ensemble": ensemble, "first_step": int(steps[0]), "last_step": int(steps[-1]),
                       "thermo_every": THERMO_EVERY, "dump_every": dump_every})  # fmt: skip
        log.append(f"run {steps[-1] - steps[0]}")
        log.append(thermo_block(steps, volumes, rng))
        step = int(steps[-1])
    (path / "log.lammps").write_text("\n".join(log))
    summary = {"units": "metal", "timestep_fs": TIMESTEP_FS, "stages": stages, "n_molecules": len(frames[0]) // 3,
               "temperature_K": TEMPERATURE_K, "model": model}  # fmt: skip
    (path / "summary.json").write_text(json.dumps(summary))
    # `frames` hold O, H, H per molecule; the atom with id k + 1 is original atom order[k].
    order = np.arange(frames.shape[1]) if order is None else order
    frames, types, molecule_ids = frames[:, order], np.tile([1, 2, 2], frames.shape[1] // 3)[order], order // 3 + 1
    write_data(path / "system.data", frames[0] % box, box, style, types, molecule_ids)
    if trajectory == "dcd":
        write_dcd(path / "trajectory.dcd", frames, box)
    elif trajectory is not None:
        write_dump(path / "trajectory.lammpstrj", frames, box, types, stages[-1]["first_step"], trajectory)
    return path


def brownian_frames(d_A2_per_ps: float, n_frames: int, seed: int) -> np.ndarray:
    """Rigid water molecules whose centres random-walk with diffusion coefficient D (unwrapped coordinates)."""
    rng = np.random.default_rng(seed)
    frame_ps = DUMP_EVERY * TIMESTEP_FS / 1000
    steps = rng.normal(0, np.sqrt(2 * d_A2_per_ps * frame_ps), (n_frames - 1, N_MOLECULES, 1, 3))
    walk = np.concatenate([np.zeros((1, N_MOLECULES, 1, 3)), np.cumsum(steps, axis=0)])
    start = lattice_molecules(4, BOX_A).reshape(1, N_MOLECULES, 3, 3)
    return (start + walk).reshape(n_frames, -1, 3)
