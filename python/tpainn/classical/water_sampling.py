"""Classical liquid-water frames for pretraining: flexible SPC/Fw or q-TIP4P/F water (tpainn.classical.water_model)
run in LAMMPS.

`generate_water()` samples a grid of temperatures × densities. Each state (T, ρ) is generated on its
own, from a seed derived from (seed, T, ρ):

1. N molecules at the model's equilibrium geometry are put on the sites of a simple cubic lattice
   (k³ ≥ N sites, N of them chosen at random) in a cubic box whose edge gives the target density
   exactly (ASE atomic masses), each with a random orientation that keeps it ≥ 1.8 Å from the
   molecules placed before it;
2. LAMMPS minimises the energy (removing clashes), draws Gaussian velocities at T and runs NVT
   (velocity Verlet + the stochastic velocity-rescaling thermostat of Bussi et al., `fix temp/csvr`,
   seeded; it rescales velocities and never touches the forces) for `equilibration_ps`;
3. it goes on in NVT and keeps one frame every `sample_interval_fs`.

A frame holds the positions (Å, wrapped into the cell [0, L)³), the cubic cell, pbc, the total
potential energy (eV), the forces (eV/Å) and the virial stress (eV/Å³, ASE sign: σ = (1/V) ∂E/∂ε, the
configurational part of −P with no kinetic term, from LAMMPS `compute pressure NULL virial`), atoms in LAMMPS atom-ID order: O, H, H per molecule,
symbols O/H. With q-TIP4P/F the massless M site is not an atom: LAMMPS has already moved its force onto
the O and H atoms of its molecule. LAMMPS works in `units real` (kcal/mol, Å, fs); the labels
(tpainn.classical.water_lammps) are converted to eV before they are stored.

Labels: the stored energy is LAMMPS' `pe` (pair + bond + angle + PPPM) of exactly the configuration
whose forces are stored, with PPPM at a relative accuracy of 1e-6 (an RMS force error of ~1.4e-5 eV/Å),
so the forces are −∇E to that accuracy, and the stress is the strain derivative of that same energy: no
tail correction in either (`pair_modify tail no`), the LJ shift does not depend on strain
(tpainn.classical.verification checks all three, the stress against central differences of E under ±h strain).

File and resumption (tpainn.classical.frame_store): frames go to an HDF5 frame file in chunks of at most
`FLUSH_FRAMES` frames (and at the end of every state), so a run that is killed keeps what it wrote.
States are stored one after another, temperatures outer and densities inner, `frames_per_state`
frames each: frame i belongs to state i // frames_per_state (`frame_states()` gives the mapping,
metadata `states`/`state_counts` spell it out). Re-running `generate_water()` with the same arguments
on an existing file keeps its frames and continues: complete states are skipped; a partly written
state is re-run from its start (same seed, so the same trajectory on the same LAMMPS build and rank
count) and only its missing frames are appended — the already stored last frame is compared with its
regenerated twin and a warning is issued if they differ. Different settings raise ValueError naming
every parameter that differs.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from tpainn.arguments import integer, number, positive_numbers, whole_steps
from tpainn.classical.frame_store import (
    check_output,
    check_settings,
    create,
    read_frame,
    require_generator,
    stored_run,
)
from tpainn.classical.lammps_runtime import lammps_seeds, lammps_version
from tpainn.classical.units import KCAL_MOL_TO_EV
from tpainn.classical.water_lammps import atom_arrays, labels, open_water_lammps
from tpainn.classical.water_model import (
    KSPACE_ACCURACY,
    MASS_H,
    MASS_O,
    MD_KSPACE_ACCURACY,
    WaterModel,
    box_length,
    force_field_commands,
    minimum_image,
    molecule_geometry,
    random_rotation,
    real_space_cutoff,
    water_model,
    wrap,
    write_data_file,
)
from tpainn.data.hdf5 import H5Frames, write_frames
from tpainn.data.labels import attach_labels

# The name every water file carries as its generator (that of the module it was first written by).
GENERATOR = "tpainn.classical.water.generate_water"

THERMOSTAT_DAMP_FS = 100.0
MIN_INTERMOLECULAR_DISTANCE = 1.8  # Å, when placing molecules
PLACEMENT_TRIES = 200
MINIMIZE = {"etol": 1.0e-6, "ftol": 1.0e-3, "maxiter": 1000, "maxeval": 10000}
FLUSH_FRAMES = 10
# Frames closer than this are correlated; a shorter interval is allowed but warned about.
DECORRELATION_FS = 100.0


def initial_positions(model: WaterModel, n_molecules: int, length: float, rng: np.random.Generator) -> np.ndarray:
    """(3N, 3) positions O,H,H per molecule: random lattice sites, random orientations, no clashes."""
    k = 1
    while k**3 < n_molecules:
        k += 1
    spacing = length / k
    sites = (np.stack(np.meshgrid(*[np.arange(k)] * 3, indexing="ij"), -1).reshape(-1, 3) + 0.5) * spacing
    sites = sites[rng.permutation(k**3)[:n_molecules]]
    local = molecule_geometry(model)
    local -= local.mean(axis=0)  # rotate about the molecule's centre
    placed = np.empty((0, 3))
    for site in sites:
        best_distance, best = -1.0, None
        for _ in range(PLACEMENT_TRIES):
            molecule = site + local @ random_rotation(rng).T
            if len(placed):
                delta = minimum_image(molecule[:, None, :] - placed[None, :, :], length)
                distance = float(np.sqrt((delta**2).sum(-1)).min())
            else:
                distance = math.inf
            if distance > best_distance:
                best_distance, best = distance, molecule
            if distance >= MIN_INTERMOLECULAR_DISTANCE:
                break
        placed = np.concatenate([placed, best])
    return placed


def state_seeds(seed: int, temperature: float, density: float) -> tuple[np.random.Generator, int, int]:
    """The placement RNG, the velocity seed and the thermostat seed of one state (a function of its values)."""
    entropy = [seed, round(temperature * 1000), round(density * 1_000_000)]
    sequence = np.random.SeedSequence(entropy)
    velocity_seed, thermostat_seed = lammps_seeds(sequence, 2)
    return np.random.default_rng(sequence.spawn(1)[0]), velocity_seed, thermostat_seed


def _sample_state(
    model: WaterModel,
    n_molecules: int,
    temperature: float,
    density: float,
    cutoff: float,
    run: dict,
    seed: int,
    n_frames: int,
    keep_from: int,
) -> Iterator[tuple[int, Atoms]]:
    """(index within the state, frame) for frames keep_from-1 (if ≥ 0, for the resume check) .. n_frames-1."""
    length = box_length(n_molecules, density)
    lengths = np.full(3, length)
    rng, velocity_seed, thermostat_seed = state_seeds(seed, temperature, density)
    positions = initial_positions(model, n_molecules, length, rng)
    symbols = "OHH" * n_molecules
    lmp = label_lmp = None
    try:
        with tempfile.TemporaryDirectory(prefix="tpainn-water-") as tmp:
            data_file = Path(tmp) / "water.data"
            write_data_file(data_file, model, positions, lengths)
            lmp = open_water_lammps(model, data_file, cutoff, MD_KSPACE_ACCURACY, smooth=False)
            label_lmp = open_water_lammps(model, data_file, cutoff, KSPACE_ACCURACY)
        if lmp.get_natoms() != 3 * n_molecules:  # the M site of q-TIP4P/F is no atom
            raise RuntimeError(f"LAMMPS holds {lmp.get_natoms()} atoms, expected {3 * n_molecules}")
        m = MINIMIZE
        lmp.commands_list(
            [
                f"minimize {m['etol']} {m['ftol']} {m['maxiter']} {m['maxeval']}",
                "reset_timestep 0",
                f"timestep {run['timestep_fs']}",
                f"velocity all create {temperature} {velocity_seed} mom yes rot no dist gaussian loop geom",
                "fix integrate all nve",
                f"fix thermostat all temp/csvr {temperature} {temperature} {THERMOSTAT_DAMP_FS} {thermostat_seed}",
            ]
        )
        first = True
        if run["equilibration_steps"]:
            lmp.command(f"run {run['equilibration_steps']}")
            first = False
        for j in range(n_frames):
            lmp.command(f"run {run['sample_interval_steps']}" + ("" if first else " pre no post no"))
            first = False
            if j < keep_from - 1:
                continue
            (x,) = atom_arrays(lmp, ["x"])
            x = wrap(x, lengths)
            atoms = Atoms(symbols, positions=x, cell=np.diag(lengths), pbc=True)
            yield j, attach_labels(atoms, *labels(label_lmp, x))
    finally:
        for instance in (lmp, label_lmp):
            if instance is not None:
                instance.close()


# The units of every file this sampler writes (stored in its metadata).
UNITS = {
    "positions": "Angstrom",
    "cell": "Angstrom",
    "energy": "eV",
    "forces": "eV/Angstrom",
    "stress": "eV/Angstrom^3, ASE sign (1/V dE/d(strain)), configurational (virial) part, no kinetic term",
    "temperature": "K",
    "density": "g/cm^3",
    "kcal_mol_to_eV": KCAL_MOL_TO_EV,
}


def _metadata(model, n_molecules, temperatures, densities, frames_per_state, equilibration_ps,
              sample_interval_fs, timestep_fs, seed, cutoff, run) -> dict:  # fmt: skip
    before, after = force_field_commands(model, cutoff, KSPACE_ACCURACY)
    states = [[t, d] for t in temperatures for d in densities]
    return {
        "generator": GENERATOR,
        "settings": {
            "model": model.name,
            "n_molecules": n_molecules,
            "temperatures_K": temperatures,
            "densities_g_cm3": densities,
            "frames_per_state": frames_per_state,
            "equilibration_ps": equilibration_ps,
            "sample_interval_fs": sample_interval_fs,
            "timestep_fs": timestep_fs,
            "seed": seed,
            "lammps_version": lammps_version(),
        },
        "force_field": {
            "model": model.title,
            "parameters": model.parameters(),
            "lammps_units": "real (kcal/mol, Angstrom, fs, e, degrees)",
            "masses_amu": {"O": MASS_O, "H": MASS_H},
            "cutoff_A": cutoff,
            "kspace_accuracy": KSPACE_ACCURACY,
            "md_kspace_accuracy": MD_KSPACE_ACCURACY,
            "md_ewald_alpha": "LAMMPS default (labels: kspace_modify gewald in lammps_commands)",
            "lj_energy_shifted_at_cutoff": True,
            "tail_correction": False,
            "intramolecular_exclusions": "special_bonds lj/coul 0 0 0",
            "lammps_commands": [*before, "read_data <file>", *after],
        },
        "md": {
            "ensemble": "NVT",
            "integrator": "fix nve (velocity Verlet)",
            "thermostat": f"fix temp/csvr (Bussi stochastic velocity rescaling), damping {THERMOSTAT_DAMP_FS} fs",
            "initial_structure": (
                f"random simple-cubic lattice sites, random orientations (>= {MIN_INTERMOLECULAR_DISTANCE} A apart), "
                f"then minimize {MINIMIZE['etol']} {MINIMIZE['ftol']} {MINIMIZE['maxiter']} {MINIMIZE['maxeval']}"
            ),
            "velocities": "velocity create T seed mom yes rot no dist gaussian loop geom",
            "equilibration_steps": run["equilibration_steps"],
            "sample_interval_steps": run["sample_interval_steps"],
            "state_seeds": "numpy SeedSequence([seed, round(T*1000), round(density*1e6)])",
        },
        "units": UNITS,
        "atom_order": "O, H, H per molecule, in LAMMPS atom-ID order; positions wrapped into [0, L)",
        "energy": "total potential energy: LJ + real-space Coulomb + PPPM + bonds + angles",
        "state_order": "temperatures outer, densities inner; frame i is state i // frames_per_state",
        "states": states,
        "state_counts": [0] * len(states),
    }


def _state_counts(n_frames: int, n_states: int, frames_per_state: int) -> list[int]:
    return [min(frames_per_state, max(0, n_frames - s * frames_per_state)) for s in range(n_states)]


def _frames_to_keep(path: Path, stored: dict, n_stored: int, metadata: dict) -> int:
    """The frames of an existing file to continue from; ValueError if it was made with other settings."""
    sections = ("settings", "force_field", "md")
    # Settings by their argument names, the force field's and the MD's as section.key.
    flat = lambda meta: {(key if section == "settings" else f"{section}.{key}"): value  # noqa: E731
                         for section in sections for key, value in meta.get(section, {}).items()}  # fmt: skip
    wanted = flat(metadata)
    check_settings(path, {key: flat(stored).get(key) for key in wanted}, wanted)
    n_total = len(metadata["states"]) * metadata["settings"]["frames_per_state"]
    if n_stored > n_total:
        raise ValueError(f"output {path}: holds {n_stored} frames, more than the {n_total} of these settings")
    return n_stored


def generate_water(
    output,
    model: str = "spcfw",
    n_molecules: int = 64,
    temperatures: Sequence[float] = (250, 300, 350, 400, 450),
    densities: Sequence[float] = (0.90, 0.95, 1.00, 1.05, 1.10),
    frames_per_state: int = 200,
    equilibration_ps: float = 5.0,
    sample_interval_fs: float = 100.0,
    timestep_fs: float = 0.5,
    seed: int = 0,
    progress: bool = True,
) -> int:
    """Sample classical water frames over temperatures (K) × densities (g/cm³) into the HDF5 file `output`.

    Resumes an existing file made with the same arguments (see the module docstring). Returns the
    number of frames in the file afterwards (len(temperatures) * len(densities) * frames_per_state
    when it completes). ValueError, naming the argument, for invalid input or mismatched settings.
    """
    water = water_model(model)
    n_molecules = integer("n_molecules", n_molecules, 1)
    temperatures = positive_numbers("temperatures", temperatures)
    densities = positive_numbers("densities", densities)
    frames_per_state = integer("frames_per_state", frames_per_state, 1)
    timestep_fs = number("timestep_fs", timestep_fs)
    equilibration_ps = number("equilibration_ps", equilibration_ps, allow_zero=True)
    sample_interval_fs = number("sample_interval_fs", sample_interval_fs)
    seed = integer("seed", seed, 0)
    path = check_output(output)
    run = {
        "timestep_fs": timestep_fs,
        "equilibration_steps": whole_steps("equilibration_ps", equilibration_ps * 1000.0, timestep_fs, minimum=0),
        # A positive interval is > 0 steps already: one shorter than a timestep is not a whole number of them.
        "sample_interval_steps": whole_steps("sample_interval_fs", sample_interval_fs, timestep_fs, minimum=0),
    }
    if sample_interval_fs < DECORRELATION_FS:
        warnings.warn(
            f"sample_interval_fs={sample_interval_fs}: frames closer than {DECORRELATION_FS} fs are correlated",
            stacklevel=2,
        )
    cutoff = real_space_cutoff(n_molecules, densities)
    metadata = _metadata(water, n_molecules, temperatures, densities, frames_per_state, equilibration_ps,
                         sample_interval_fs, timestep_fs, seed, cutoff, run)  # fmt: skip
    states = metadata["states"]
    n_total = len(states) * frames_per_state

    stored = stored_run(path, GENERATOR)
    if stored is None:
        create(path, metadata)
    n_done = 0 if stored is None else _frames_to_keep(path, *stored, metadata)
    if n_done < n_total:
        n_done = _sample_states(path, water, n_molecules, cutoff, run, seed, metadata, n_done, progress)
    return n_done


def _sample_states(path: Path, water: WaterModel, n_molecules: int, cutoff: float, run: dict, seed: int,
                   metadata: dict, n_done: int, progress: bool) -> int:  # fmt: skip
    """Appends the frames of the states from frame n_done on, FLUSH_FRAMES at a time; the frames in the file after."""
    states, frames_per_state = metadata["states"], metadata["settings"]["frames_per_state"]
    # A partly written state is re-run from its start; its last stored frame is kept in memory to be
    # compared with its regenerated twin (the file itself must be closed before appending to it).
    last_stored = read_frame(path, n_done - 1) if n_done % frames_per_state else None

    from tqdm.auto import tqdm

    bar = tqdm(total=len(states) * frames_per_state, initial=n_done, unit="frame", desc=f"{water.title} water",
               disable=not progress)  # fmt: skip
    buffer: list[Atoms] = []

    def flush() -> None:
        nonlocal n_done
        if buffer:
            counts = _state_counts(n_done + len(buffer), len(states), frames_per_state)
            n_done = write_frames(path, buffer, metadata={"state_counts": counts}, append=True)
            buffer.clear()

    try:
        for s in range(n_done // frames_per_state, len(states)):
            temperature, density = states[s]
            keep_from = n_done - s * frames_per_state  # frames of this state already stored
            bar.set_postfix_str(f"T={temperature:g} K, rho={density:g} g/cm3")
            frames = _sample_state(
                water, n_molecules, temperature, density, cutoff, run, seed, frames_per_state, keep_from
            )
            for j, atoms in frames:
                if j < keep_from:
                    _compare_regenerated(path, n_done - 1, last_stored, atoms)
                    continue
                buffer.append(atoms)
                bar.update(1)
                if len(buffer) >= FLUSH_FRAMES:
                    flush()
            flush()
    finally:
        flush()  # keep what was sampled if anything above fails or is interrupted
        bar.close()
    return n_done


def _compare_regenerated(path: Path, index: int, stored: Atoms, regenerated: Atoms) -> None:
    """Warn where the regenerated twin of the last stored frame of a partial state is not identical."""
    difference = float(np.abs(stored.positions - regenerated.positions).max())
    if difference != 0.0:
        warnings.warn(
            f"resuming {path}: frame {index} regenerated from its state's seed differs from the stored "
            f"one (max position difference {difference:.3g} A; another LAMMPS build or rank count?); the "
            "stored frames are kept and the state's remaining frames come from the regenerated trajectory",
            stacklevel=3,
        )


def frame_states(path) -> tuple[np.ndarray, np.ndarray]:
    """(temperature in K, density in g/cm³) of every frame of a file written by generate_water()."""
    frames = H5Frames(path)
    metadata = frames.metadata
    require_generator(path, metadata, GENERATOR, "classical water")
    per_state = metadata["settings"]["frames_per_state"]
    states = np.array(metadata["states"], dtype=np.float64).reshape(-1, 2)
    index = np.arange(len(frames)) // per_state
    return states[index, 0], states[index, 1]
