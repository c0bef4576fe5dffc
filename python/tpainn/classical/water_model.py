"""The flexible water force fields, SPC/Fw and q-TIP4P/F, as LAMMPS sets them up: the models' parameters,
the molecule and box geometry, LAMMPS data files and the force-field commands. The water sampler
(water_sampling), the short contacts (contacts), the checks (verification) and `tpainn md water` (md/) all
build their LAMMPS instances from here.

LAMMPS works in `units real` (kcal/mol, Å, fs); tpainn.classical.units converts to eV.
The labels' settings: PPPM at a relative accuracy of KSPACE_ACCURACY (an RMS force error of ~1.4e-5 eV/Å),
no tail correction (`pair_modify tail no`), the LJ energy shifted to zero at the cutoff (independent of strain),
Ewald splitting α·r_c = EWALD_ALPHA_CUTOFF so that the energy is a smooth function of the positions.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase.data import atomic_masses, atomic_numbers

from tpainn.classical.units import GRAMS_PER_AMU

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

MASS_O = float(atomic_masses[atomic_numbers["O"]])
MASS_H = float(atomic_masses[atomic_numbers["H"]])
WATER_MASS_AMU = MASS_O + 2 * MASS_H


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


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly distributed rotation matrix (from a random unit quaternion)."""
    w, x, y, z = (q := rng.normal(size=4)) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def minimum_image(delta: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Displacements in an orthorhombic periodic box (edges `lengths`) to their nearest images."""
    return delta - lengths * np.round(delta / lengths)


def wrap(positions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Positions wrapped into [0, L) along each edge (never L itself, which rounding can give)."""
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
