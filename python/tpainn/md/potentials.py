"""The potential of a `tpainn md water` run: an exported T-PaiNN model (`pair_style tpainn`) or a classical
flexible water model (SPC/Fw, q-TIP4P/F, with the force field of tpainn.classical.water_model), as LAMMPS commands.

Both use the same data file (atom_style full, type 1 = O, type 2 = H, O–H bonds and the H–O–H angle).
For T-PaiNN the bonds only carry the molecules (for the analysis): bond and angle styles are `zero`, and
`special_bonds lj/coul 1 1 1` keeps bonded pairs in the neighbour list. LAMMPS leaves out of the list the
pairs whose special factor is 0, which is its default for 1–2 and 1–3 neighbours, and the T-PaiNN graph
needs every pair within the cutoff, intramolecular ones included (tests/test_md_water.py checks the
energy against TPaiNNCalculator). A model trained without D3 (its metadata's `dispersion`) runs overlaid with
LAMMPS' `pair_style dispersion/d3` (hybrid/overlay), as pair_style tpainn demands.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from tpainn import dispersion
from tpainn.classical.units import ATM_TO_BAR
from tpainn.classical.water_model import MD_KSPACE_ACCURACY, MODELS, WaterModel, force_field_commands, real_space_cutoff, water_model
from tpainn.data.dataset_files import sha256_of

# Atom types of the data file, in type order (pair_coeff * * maps them to the model's species).
TYPE_ELEMENTS = ("O", "H")
# Commands that define the system before a box exists; read_restart restores them from the file itself.
SYSTEM_COMMANDS = ("units", "atom_style", "boundary")
# The density the box is packed at; the NPT stage finds the model's own.
INITIAL_DENSITY_G_CM3 = 1.0


@dataclass(frozen=True)
class UnitStyle:
    """A LAMMPS unit style: how its time and pressure units relate to fs and bar."""

    name: str
    fs_per_time_unit: float
    bar_per_pressure_unit: float


METAL = UnitStyle("metal", 1000.0, 1.0)  # eV, Å, ps, bar: what pair_style tpainn computes in
REAL = UnitStyle("real", 1.0, ATM_TO_BAR)  # kcal/mol, Å, fs, atm: the classical force fields' units


@dataclass(frozen=True)
class Potential:
    """LAMMPS commands of a potential: before the box (system), after it (styles, then coefficients)."""

    title: str  # the default label of the run
    source: str  # the model as given: classical model name or model file
    units: UnitStyle
    topology: WaterModel  # molecule geometry for packing, charges for the data file
    system_commands: tuple[str, ...]
    style_commands: tuple[str, ...]
    coefficient_commands: tuple[str, ...]
    identity: dict  # what identifies the potential: must be the same when a run is continued


def resolve_potential(model: str, n_molecules: int, device: str | None = None, dtype: str | None = None,
                      density_g_cm3: float = INITIAL_DENSITY_G_CM3) -> Potential:  # fmt: skip
    """`model`: 'spcfw' / 'qtip4pf' (or their titles) or the path of an exported T-PaiNN model."""
    try:
        classical = water_model(model)
    except ValueError:
        return tpainn_potential(Path(model), device, dtype)
    if device is not None or dtype is not None:
        raise ValueError(f"device and dtype apply to T-PaiNN models only, not to the classical model {classical.title}")
    return classical_potential(classical, n_molecules, density_g_cm3)


def tpainn_potential(path: Path, device: str | None, dtype: str | None) -> Potential:
    """pair_style tpainn with the model file `path`, checked to be an exported model that knows O and H."""
    if not path.is_file():
        raise FileNotFoundError(
            f"model {str(path)!r}: no such file, and not a classical water model (choose one of "
            f"{', '.join(MODELS)} or a T-PaiNN model exported with `tpainn export`)"
        )
    from tpainn.export import load_exported

    metadata = load_exported(path).metadata  # ValueError with the reason if it is no exported T-PaiNN model
    species = metadata["species"]
    missing = [element for element in TYPE_ELEMENTS if element not in species]
    if missing:
        raise ValueError(f"model {path}: its species {species} lack {', '.join(missing)}; water needs O and H")
    options = "".join(f" {key} {value}" for key, value in (("device", device), ("dtype", dtype)) if value is not None)
    # Charges are meaningless for T-PaiNN: the data file carries neutral atoms (SPC/Fw geometry for packing).
    topology = dataclasses.replace(MODELS["spcfw"], charge_O=0.0, charge_H=0.0)
    pair_styles, pair_coeffs = _tpainn_pair(f'tpainn "{path.resolve()}"{options}', dispersion.parse(metadata["dispersion"]))
    return Potential(
        title=path.stem,
        source=str(path.resolve()),
        units=METAL,
        topology=topology,
        system_commands=("units metal", "atom_style full", "boundary p p p"),
        # Quoted: LAMMPS splits arguments at blanks, and paths may contain them. A 1 Å skin, not metal's default
        # 2 Å: the lists are rebuilt every ~50 steps of water at 300 K either way, and the smaller ghost shell
        # cuts the neighbour list by a third and, on several ranks, the ghosts whose features are exchanged.
        style_commands=("bond_style zero", "angle_style zero", *pair_styles, "neighbor 1.0 bin"),
        coefficient_commands=("bond_coeff *", "angle_coeff *", *pair_coeffs, "special_bonds lj/coul 1.0 1.0 1.0"),
        # By content, not path: a model file that moved is the same model.
        identity={"kind": "tpainn", "sha256": sha256_of(path), "species": species, "dtype": dtype},
    )


def _tpainn_pair(tpainn_style: str, d3: dispersion.D3 | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """pair_style and pair_coeff commands: the model alone, or overlaid with the D3 it was trained without
    (LAMMPS' dispersion/d3; the special factors of 1 keep intramolecular pairs in its sum too)."""
    elements = " ".join(TYPE_ELEMENTS)
    if d3 is None:
        return (f"pair_style {tpainn_style}",), (f"pair_coeff * * {elements}",)
    # D3's full neighbour list reaches the D3 cutoff + the 1 Å skin; LAMMPS' default of 2000 neighbours per atom
    # is a 16.8 Å sphere of liquid water (0.1 atoms/Å³): room for twice the liquid's count instead.
    one = max(2000, int(2 * 0.1 * 4 / 3 * math.pi * (d3.cutoff + 1.0) ** 3))
    return (
        (f"pair_style hybrid/overlay {tpainn_style} {d3.lammps_style()}", f"neigh_modify one {one} page {20 * one}"),
        (f"pair_coeff * * tpainn {elements}", f"pair_coeff * * dispersion/d3 {elements}"),
    )


def classical_potential(model: WaterModel, n_molecules: int, density_g_cm3: float = INITIAL_DENSITY_G_CM3) -> Potential:
    """The force field of tpainn.classical.water_model at the sampling MD's PPPM accuracy and Ewald splitting; the
    real-space cutoff fits the box at 1 g/cm³ or at `density_g_cm3` if that is denser."""
    cutoff = real_space_cutoff(n_molecules, [max(INITIAL_DENSITY_G_CM3, density_g_cm3)])
    before, after = force_field_commands(model, cutoff, MD_KSPACE_ACCURACY, smooth=False)
    return Potential(
        title=model.title,
        source=model.name,
        units=REAL,
        topology=model,
        system_commands=tuple(c for c in before if c.split()[0] in SYSTEM_COMMANDS),
        style_commands=tuple(c for c in before if c.split()[0] not in SYSTEM_COMMANDS),
        # The generator's thermo settings give way to the run's own (THERMO_STYLE in lammps_input).
        # Dispersion beyond the short cutoff of small boxes (6.2 Å at 64 H2O) as the mean-field tail correction
        # of energy and pressure (unshifted LJ), the usual treatment for NPT water: without it SPC/Fw at 64 H2O came out at
        # 0.947 g/cm³. The pretraining labels (fixed volumes, forces) do not need it.
        coefficient_commands=(*(c for c in after if c.split()[0] not in ("thermo", "thermo_style", "thermo_modify")),
                              "pair_modify shift no tail yes"),  # fmt: skip
        identity={"kind": "classical", "name": model.name, "parameters": model.parameters(), "cutoff_A": cutoff,
                  "kspace_accuracy": MD_KSPACE_ACCURACY, "lj_tail_correction": True},  # fmt: skip
    )

