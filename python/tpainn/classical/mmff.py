"""MMFF94 (RDKit) labels for QM9 molecules: an ASE calculator, a conformer generator and its check.

Connectivity. `mmff_molecule` builds the RDKit molecule from the geometry itself, atoms in the
given (QM9) order, so positions and forces line up with no atom mapping: bonds and bond orders
come from rdDetermineBonds.DetermineBonds(charge=0) with extended-Hückel connectivity
(useHueckel=True). The default covalent-radius connectivity bonds the bridgeheads of strained
cages (bicyclo[1.1.1]pentanes, oxetane/azetidine cages: ~2.6 % of the first 3000 QM9 molecules,
~5 % of a random sample), which then fail bond-order assignment; the Hückel connectivity has no
such failure on those samples. The QM9 SMILES is not used to build the molecule (that needs the
same geometric connectivity to map SMILES atoms onto QM9 atoms) but checks it: the perceived
heavy-atom/hydrogen graph must equal the SMILES graph (bond orders, charges and stereo aside),
otherwise the molecule is skipped. The connectivity is fixed, taken from the QM9 equilibrium
geometry, for the whole trajectory of a molecule.

Sampling. Around each equilibrium geometry, Langevin MD (ase.md.langevin.Langevin) with MMFF94:
Maxwell-Boltzmann velocities at twice `temperature` (zero total momentum; equipartition halves
it), `WARMUP_STEPS` steps of warm-up, then one frame every `SAMPLE_INTERVAL_STEPS` steps. The
random numbers of molecule q come from numpy.random.default_rng([seed, q]), so a molecule's
frames do not depend on the order, the chunking or the worker that produced them (resumption and
`workers` give bit-identical files).

Energies are MMFF94 steric energies (kcal/mol converted to eV with ase.units), on no common scale
with QM9's U0; forces are the analytic negative gradient (eV/Å). Molecules whose bonds cannot be
determined or that MMFF94 cannot type are skipped and counted by reason, never dropped silently.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes
from tqdm.auto import tqdm

from tpainn.data.errors import DataError
from tpainn.data.hdf5 import H5_SUFFIXES, H5Frames, write_frames
from tpainn.data.labels import attach_labels

# kcal/mol -> eV (ase.units: 1 kcal/mol = 0.0433641... eV).
KCAL_PER_MOL_IN_EV = units.kcal / units.mol

# Sampling protocol (stored in the metadata; a file written with another protocol is not resumed).
TIMESTEP_FS = 0.5
FRICTION_PER_FS = 0.01
WARMUP_STEPS = 200  # 100 fs = one friction time
# The MD starts at rest in the QM9 geometry, with no potential energy to speak of: momenta drawn
# at twice the temperature put the molecule near the target temperature within the warm-up
# (measured on 40 molecules at 500 K: ~530 K after the warm-up, ~505 K later; starting at 1× it
# is ~440 K after the warm-up and needs ~200 fs more).
INITIAL_TEMPERATURE_FACTOR = 2.0
SAMPLE_INTERVAL_STEPS = 40  # 20 fs between frames
# RDKit drops non-bonded pairs farther apart than this (Å) when the force field is built; QM9
# molecules are < 15 Å across, so every pair is kept and the energy is one smooth function.
NONBONDED_THRESHOLD_A = 100.0
# Molecules per HDF5 append: a killed run loses at most this many molecules' work (~40 s). Each
# append rewrites the metadata (with its per-frame qm9_index list) and HDF5 does not reuse the
# old copy's space: 1000 keeps that waste to ~7 MB (<10 %) for 20,000 molecules × 5 frames.
CHUNK_MOLECULES = 1000

SKIP_REASONS = {
    "bonds_undetermined": "rdDetermineBonds.DetermineBonds(charge=0, useHueckel=True) failed",
    "bonds_disagree_with_smiles": "the perceived bond graph differs from the QM9 SMILES graph",
    "smiles_unreadable": "RDKit cannot parse the QM9 SMILES used to check the bonds",
    "mmff_untyped": "MMFFGetMoleculeProperties(mmffVariant='MMFF94') could not type an atom",
    "mmff_missing_parameters": "MMFF94 lacks parameters for a bonded term (MMFFHasAllMoleculeParams)",
    "md_nonfinite": "the MD produced a non-finite energy, force or position",
}

_GENERATOR = "tpainn.classical.mmff.generate_qm9"
# Metadata keys that must match for a run to continue an existing file.
_SETTING_KEYS = (
    "generator",
    "n_molecules",
    "conformers_per_molecule",
    "temperature_K",
    "seed",
    "exclude_test",
    "timestep_fs",
    "friction_per_fs",
    "warmup_steps",
    "sample_interval_steps",
    "initial_temperature_factor",
    "bond_perception",
    "force_field",
    "rdkit_version",
    "nonbonded_threshold_A",
)


class MMFFSetupError(ValueError):
    """A molecule that cannot be given an MMFF94 force field; `reason` is a key of SKIP_REASONS."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _rdkit():
    """RDKit's modules, imported on first use so that `import tpainn.classical` does not need RDKit."""
    try:
        import rdkit
        from rdkit import Chem, RDLogger
        from rdkit.Chem import rdDetermineBonds, rdForceFieldHelpers
    except ImportError as err:
        raise ImportError("MMFF94 labels need RDKit: pip install rdkit") from err
    RDLogger.DisableLog("rdApp.*")
    return rdkit, Chem, rdDetermineBonds, rdForceFieldHelpers


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2: the extended-Hückel code prints a warning for every O-H bond."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _bond_graph(mol) -> str:
    """Canonical SMILES of the bare graph (all atoms explicit, single bonds, no charges or stereo)."""
    _, Chem, _, _ = _rdkit()
    graph = Chem.RWMol(mol)
    for bond in graph.GetBonds():
        bond.SetBondType(Chem.BondType.SINGLE)
        bond.SetIsAromatic(False)
        bond.SetStereo(Chem.BondStereo.STEREONONE)
    for atom in graph.GetAtoms():
        atom.SetFormalCharge(0)
        atom.SetIsAromatic(False)
        atom.SetNoImplicit(True)
        atom.SetNumExplicitHs(0)
        atom.SetNumRadicalElectrons(0)
        atom.SetChiralTag(Chem.ChiralType.CHI_UNSPECIFIED)
    graph.UpdatePropertyCache(strict=False)
    return Chem.MolToSmiles(graph, canonical=True, isomericSmiles=False)


def _check_molecular(atoms: Atoms) -> None:
    if not isinstance(atoms, Atoms):
        raise TypeError(f"expected ase.Atoms, got {type(atoms).__name__}")
    if len(atoms) == 0:
        raise ValueError("atoms: the molecule has no atoms")
    if atoms.pbc.any():
        raise ValueError(f"atoms: MMFF94 is for isolated molecules, got pbc={atoms.pbc.tolist()}")
    if not np.all(np.isfinite(atoms.positions)):
        raise ValueError("atoms: positions are not finite")


def mmff_molecule(atoms: Atoms, smiles: str | None = None):
    """An RDKit molecule with MMFF94 typing for `atoms`, atom i of it being atoms[i].

    Bonds come from the geometry (DetermineBonds, charge 0, Hückel connectivity); when `smiles`
    (default atoms.info["smiles"], if any) is known, the bond graph must match it. Returns the
    molecule, with `atoms.positions` as its conformer. Raises MMFFSetupError (a ValueError whose
    `reason` is a key of SKIP_REASONS) when the bonds or the MMFF94 types cannot be assigned.
    """
    _, Chem, rdDetermineBonds, rdForceFieldHelpers = _rdkit()
    from rdkit.Geometry import Point3D

    _check_molecular(atoms)
    if smiles is None:
        smiles = atoms.info.get("smiles")
    where = f"QM9 {atoms.info['qm9_index']}" if "qm9_index" in atoms.info else atoms.get_chemical_formula()

    mol = Chem.RWMol()
    for number in atoms.numbers:
        mol.AddAtom(Chem.Atom(int(number)))
    conformer = Chem.Conformer(len(atoms))
    for i, (x, y, z) in enumerate(atoms.positions.tolist()):
        conformer.SetAtomPosition(i, Point3D(x, y, z))
    mol.AddConformer(conformer, assignId=True)
    mol = mol.GetMol()
    if not rdDetermineBonds.hueckelEnabled():
        # Not a property of the molecule: every molecule would be skipped, so stop instead.
        raise RuntimeError(
            "this RDKit build lacks YAeHMOP (extended Hückel), which the bond perception needs; "
            "install the PyPI or conda-forge rdkit"
        )
    try:
        with _quiet_stderr():
            rdDetermineBonds.DetermineBonds(mol, charge=0, useHueckel=True)
    except Exception as err:  # RDKit raises ValueError or RuntimeError, depending on the step
        raise MMFFSetupError("bonds_undetermined", f"{where}: cannot determine the bonds ({err})") from err

    if smiles:
        reference = Chem.MolFromSmiles(smiles)
        if reference is None:
            raise MMFFSetupError("smiles_unreadable", f"{where}: RDKit cannot parse the SMILES {smiles!r}")
        perceived, expected = _bond_graph(mol), _bond_graph(Chem.AddHs(reference))
        if perceived != expected:
            raise MMFFSetupError(
                "bonds_disagree_with_smiles",
                f"{where}: the bonds perceived from the geometry ({perceived}) differ from the SMILES {smiles!r}",
            )

    try:
        properties = rdForceFieldHelpers.MMFFGetMoleculeProperties(mol, mmffVariant="MMFF94")
    except Exception as err:
        raise MMFFSetupError("mmff_untyped", f"{where}: MMFF94 typing failed ({err})") from err
    if properties is None:
        raise MMFFSetupError("mmff_untyped", f"{where}: MMFF94 has no atom type for some atom")
    if not rdForceFieldHelpers.MMFFHasAllMoleculeParams(mol):
        raise MMFFSetupError("mmff_missing_parameters", f"{where}: MMFF94 lacks parameters for a bonded term")
    return mol


def mmff_force_field(mol):
    """A fresh MMFF94 force field for `mol`'s conformer (all non-bonded pairs, including between fragments)."""
    _, _, _, rdForceFieldHelpers = _rdkit()
    properties = rdForceFieldHelpers.MMFFGetMoleculeProperties(mol, mmffVariant="MMFF94")
    if properties is None:
        raise MMFFSetupError("mmff_untyped", "MMFF94 has no atom type for some atom")
    force_field = rdForceFieldHelpers.MMFFGetMoleculeForceField(
        mol, properties, nonBondedThresh=NONBONDED_THRESHOLD_A, ignoreInterfragInteractions=False
    )
    if force_field is None:
        raise MMFFSetupError("mmff_untyped", "RDKit could not set up the MMFF94 force field")
    force_field.Initialize()
    return force_field


class MMFF94Calculator(Calculator):
    """ASE calculator for RDKit's MMFF94 force field with fixed connectivity: energy (eV), forces (eV/Å).

    `molecule` is an RDKit molecule from mmff_molecule() (atom i = atoms[i]); without it, the
    molecule is built from the first geometry the calculator is given and kept from then on.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, molecule=None, **kwargs):
        super().__init__(**kwargs)
        self.molecule = molecule
        self._numbers = None
        self._force_field = None

    def check_state(self, atoms, tol=1e-15):
        """What changed since the last calculation: exact comparisons of the few arrays that matter.

        ASE's generic check (np.allclose over every array of the Atoms) costs more than the MMFF94
        evaluation of a QM9 molecule; MD calls it three times a step.
        """
        if self.atoms is None:
            return list(all_changes)
        changes = []
        if not np.array_equal(self.atoms.positions, atoms.positions):
            changes.append("positions")
        if not np.array_equal(self.atoms.numbers, atoms.numbers):
            changes.append("numbers")
        if not (np.array_equal(self.atoms.cell.array, atoms.cell.array) and np.array_equal(self.atoms.pbc, atoms.pbc)):
            changes += ["cell", "pbc"]
        return changes

    def _ensure_force_field(self, atoms: Atoms) -> None:
        if self._force_field is None:
            if self.molecule is None:
                self.molecule = mmff_molecule(atoms)
            self._numbers = np.array([atom.GetAtomicNum() for atom in self.molecule.GetAtoms()])
            self._force_field = mmff_force_field(self.molecule)
        if not np.array_equal(self._numbers, atoms.numbers):
            raise ValueError(
                f"atoms: the elements {atoms.get_chemical_formula()} (in this order) do not match the "
                "calculator's MMFF94 molecule"
            )

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.atoms.pbc.any():
            raise ValueError(f"atoms: MMFF94 is for isolated molecules, got pbc={self.atoms.pbc.tolist()}")
        self._ensure_force_field(self.atoms)
        coordinates = self.atoms.positions.ravel().tolist()
        energy = self._force_field.CalcEnergy(coordinates) * KCAL_PER_MOL_IN_EV
        gradient = np.asarray(self._force_field.CalcGrad(coordinates), dtype=np.float64).reshape(-1, 3)
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": -gradient * KCAL_PER_MOL_IN_EV,
        }


# ---------------------------------------------------------------------------------------- sampling


def sample_conformers(
    atoms: Atoms, conformers_per_molecule: int, temperature: float, seed: int, molecule=None
) -> list[Atoms]:
    """Langevin MD frames around `atoms` (an equilibrium geometry), labelled with MMFF94 energy/forces.

    The random numbers come from numpy.random.default_rng([seed, atoms.info["qm9_index"]]) (index
    0 when there is none). Raises MMFFSetupError when the molecule cannot be typed or the MD
    produces a non-finite value.
    """
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary

    qm9_index = int(atoms.info.get("qm9_index", 0))
    where = f"QM9 {qm9_index}" if "qm9_index" in atoms.info else atoms.get_chemical_formula()
    molecule = molecule if molecule is not None else mmff_molecule(atoms)
    rng = np.random.default_rng([seed, qm9_index])
    system = Atoms(numbers=atoms.numbers, positions=atoms.positions, pbc=False)
    system.calc = MMFF94Calculator(molecule)
    # Maxwell-Boltzmann momenta at INITIAL_TEMPERATURE_FACTOR × temperature, total momentum zero:
    # half the kinetic energy flows into the potential within a few vibrations (equipartition).
    masses = system.get_masses()[:, None]
    width = np.sqrt(masses * units.kB * INITIAL_TEMPERATURE_FACTOR * temperature)
    system.set_momenta(width * rng.standard_normal((len(system), 3)))
    Stationary(system)
    dynamics = Langevin(
        system,
        timestep=TIMESTEP_FS * units.fs,
        temperature_K=temperature,
        friction=FRICTION_PER_FS / units.fs,
        # fixcm=True (deprecated) biases the NVT sampling of small systems; the centre of mass is
        # left free instead: it drifts by a fraction of an Å over a trajectory, which no label sees.
        fixcm=False,
        rng=rng,
    )
    frames = []
    dynamics.run(WARMUP_STEPS)
    for _ in range(conformers_per_molecule):
        dynamics.run(SAMPLE_INTERVAL_STEPS)
        energy = system.get_potential_energy()
        forces = system.get_forces()
        if not (math.isfinite(energy) and np.all(np.isfinite(forces)) and np.all(np.isfinite(system.positions))):
            raise MMFFSetupError("md_nonfinite", f"{where}: the MD reached a non-finite energy, force or position")
        frame = Atoms(numbers=system.numbers, positions=system.positions.copy(), pbc=False)
        frame.info["qm9_index"] = qm9_index
        frames.append(attach_labels(frame, energy, forces.copy()))
    return frames


def _sample_task(task):
    """Worker entry: (qm9_index, frames) or (qm9_index, skip reason string)."""
    atoms, conformers_per_molecule, temperature, seed = task
    try:
        return atoms.info["qm9_index"], sample_conformers(atoms, conformers_per_molecule, temperature, seed)
    except MMFFSetupError as err:
        return atoms.info["qm9_index"], err.reason


# -------------------------------------------------------------------------------------- selection


def _qm9_ids() -> np.ndarray:
    """All QM9 ids in load order (ascending): the order standard_split's frame indices refer to."""
    from tpainn.data.formats.qm9 import qm9_table

    return qm9_table().index.to_numpy(dtype=np.int64)


def qm9_test_ids() -> np.ndarray:
    """QM9 ids of the standard test split (standard_split('qm9', 130831, seed=0)), sorted."""
    from tpainn.data.registry import standard_split

    ids = _qm9_ids()
    _, test = standard_split("qm9", len(ids), seed=0)
    return ids[test]


def select_qm9(n_molecules: int, seed: int = 0, exclude_test: bool = True) -> np.ndarray:
    """The QM9 ids generate_qm9 uses, in processing order.

    The first n_molecules of numpy.random.default_rng(seed).permutation over the candidates (QM9
    ids ascending, less the standard test split when exclude_test): a larger n extends a smaller one.
    """
    from tpainn.data.registry import standard_split

    ids = _qm9_ids()
    candidates = ids[standard_split("qm9", len(ids), seed=0)[0]] if exclude_test else ids
    if n_molecules > len(candidates):
        raise ValueError(
            f"n_molecules={n_molecules} exceeds the {len(candidates)} QM9 molecules available"
            + (" outside the standard test split" if exclude_test else "")
        )
    return candidates[np.random.default_rng(seed).permutation(len(candidates))[:n_molecules]]


# ------------------------------------------------------------------------------------- generation


def _rdkit_version() -> str:
    return _rdkit()[0].__version__


def _settings(n_molecules, conformers_per_molecule, temperature, seed, exclude_test) -> dict:
    return {
        "generator": _GENERATOR,
        "n_molecules": n_molecules,
        "conformers_per_molecule": conformers_per_molecule,
        "temperature_K": temperature,
        "seed": seed,
        "exclude_test": exclude_test,
        "timestep_fs": TIMESTEP_FS,
        "friction_per_fs": FRICTION_PER_FS,
        "warmup_steps": WARMUP_STEPS,
        "sample_interval_steps": SAMPLE_INTERVAL_STEPS,
        "initial_temperature_factor": INITIAL_TEMPERATURE_FACTOR,
        "bond_perception": "rdDetermineBonds.DetermineBonds(charge=0, useHueckel=True), checked against the QM9 SMILES",
        "force_field": "MMFF94",
        "rdkit_version": _rdkit_version(),
        "nonbonded_threshold_A": NONBONDED_THRESHOLD_A,
    }


def _description() -> dict:
    """Metadata that documents the run but is not compared on resumption."""
    from tpainn.data.registry import provenance

    return {
        "force_field_software": f"RDKit {_rdkit_version()} (rdForceFieldHelpers, mmffVariant='MMFF94', "
        "constant dielectric 1, no cutoff)",
        "thermostat": "ase.md.langevin.Langevin (fixcm=False) from the QM9 geometry; Maxwell-Boltzmann "
        "momenta at initial_temperature_factor × temperature_K, zero total momentum",
        "rng": "numpy.random.default_rng([seed, qm9_index]) per molecule",
        "selection": "first n_molecules of numpy.random.default_rng(seed).permutation over QM9 ids ascending, "
        "less the test ids of standard_split('qm9', 130831, seed=0) when exclude_test",
        "units": {
            "energy": "eV",
            "forces": "eV/Angstrom",
            "positions": "Angstrom",
            "temperature": "K",
            "timestep": "fs",
            "friction": "1/fs",
            "kcal_per_mol_in_eV": KCAL_PER_MOL_IN_EV,
        },
        "energy_note": "MMFF94 steric energy, zero of energy per molecule is arbitrary (not comparable to U0)",
        "skip_reasons": SKIP_REASONS,
        "source": provenance("qm9"),
    }


def _check_arguments(output, n_molecules, conformers_per_molecule, temperature, seed, workers) -> Path:
    for name, value in (("n_molecules", n_molecules), ("conformers_per_molecule", conformers_per_molecule)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating, np.integer)):
        raise ValueError(f"temperature must be a number of kelvin, got {temperature!r}")
    if not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be positive and finite (kelvin), got {temperature!r}")
    output = Path(output)
    if output.suffix.lower() not in H5_SUFFIXES:
        raise ValueError(f"output {output}: must be an HDF5 file ending in {' or '.join(H5_SUFFIXES)}")
    if output.is_dir():
        raise ValueError(f"output {output}: is a folder, not a file")
    if not output.parent.is_dir():
        raise ValueError(f"output {output}: the folder {output.parent} does not exist")
    if not os.access(output.parent, os.W_OK | os.X_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise ValueError(f"output {output}: not writable")
    return output


def _existing_run(output: Path, settings: dict) -> dict | None:
    """The metadata of a resumable file at `output`, None when there is no file; refuses a foreign one."""
    if not output.exists():
        return None
    try:
        frames = H5Frames(output)
    except DataError as err:
        raise ValueError(f"output {output}: exists and is not a tpainn frame file to continue ({err})") from err
    metadata = frames.metadata
    n_frames = len(frames)
    frames.close()
    if metadata.get("generator") != _GENERATOR:
        raise ValueError(
            f"output {output}: exists but was not written by generate_qm9; refusing to append to it "
            "(choose another output or delete the file)"
        )
    # n_molecules may grow: the selection is a prefix of one seeded permutation, so a larger run extends the file.
    if metadata.get("molecules_done", 0) > settings["n_molecules"]:
        raise ValueError(
            f"output {output}: already holds {metadata['molecules_done']} molecules, more than this run's "
            f"n_molecules={settings['n_molecules']}; a file can be extended to more molecules, not cut"
        )
    differing = {
        key: (metadata.get(key), settings[key])
        for key in _SETTING_KEYS
        if key != "n_molecules" and metadata.get(key) != settings[key]
    }
    if differing:
        details = "; ".join(f"{key}: file has {old!r}, this run {new!r}" for key, (old, new) in differing.items())
        raise ValueError(
            f"output {output}: was written with other settings ({details}); re-run with the file's settings "
            "to continue it, or choose another output"
        )
    if len(metadata.get("qm9_index", [])) != n_frames:
        raise ValueError(
            f"output {output}: inconsistent metadata (qm9_index lists {len(metadata.get('qm9_index', []))} "
            f"frames, the file holds {n_frames})"
        )
    return metadata


@contextlib.contextmanager
def _mapper(workers: int):
    """An ordered map over sampling tasks: in this process, or in a pool of `workers` processes."""
    if workers == 1:
        yield lambda tasks: map(_sample_task, tasks)
        return
    # fork is cheap and needs no re-import; elsewhere (macOS, Windows) spawn re-imports tpainn.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(workers) as pool:
        yield lambda tasks: pool.imap(_sample_task, tasks, chunksize=2)


def generate_qm9(
    output: str | os.PathLike,
    n_molecules: int = 20000,
    conformers_per_molecule: int = 5,
    temperature: float = 500.0,
    seed: int = 0,
    exclude_test: bool = True,
    progress: bool = True,
    workers: int = 1,
) -> dict:
    """MMFF94 conformers of QM9 molecules written to the HDF5 frame file `output`; returns a report.

    Selects n_molecules QM9 molecules (select_qm9: seeded, outside the standard test split when
    exclude_test), runs Langevin MD at `temperature` (K) with MMFF94 around each equilibrium
    geometry and stores conformers_per_molecule frames per molecule (positions Å, energy eV,
    forces eV/Å; no cell, pbc False). Frames are appended every CHUNK_MOLECULES molecules; an
    existing file written with the same settings is continued after the molecules it holds (or
    extended, when n_molecules is larger than before), one with other settings is refused. `workers` > 1 samples in that many processes (same frames).

    The report (also in the file's metadata) counts the molecules done, used and skipped by reason
    (SKIP_REASONS), with the skipped QM9 ids. Bad arguments raise ValueError naming them.
    """
    output = _check_arguments(output, n_molecules, conformers_per_molecule, temperature, seed, workers)
    n_molecules, conformers_per_molecule, seed = int(n_molecules), int(conformers_per_molecule), int(seed)
    temperature, exclude_test = float(temperature), bool(exclude_test)
    selection = select_qm9(n_molecules, seed, exclude_test)
    settings = _settings(n_molecules, conformers_per_molecule, temperature, seed, exclude_test)

    metadata = _existing_run(output, settings)
    if metadata is None:
        metadata = {
            **settings,
            **_description(),
            "molecules_done": 0,
            "molecules_used": 0,
            "qm9_index": [],
            "skipped": {},
            "skip_counts": {},
            "complete": False,
        }
        try:
            write_frames(output, [], metadata=metadata)
        except (DataError, OSError) as err:
            raise ValueError(f"output {output}: cannot be written ({err})") from err
    metadata["n_molecules"] = n_molecules
    metadata["complete"] = metadata["molecules_done"] == n_molecules
    done_before = int(metadata["molecules_done"])
    frames_before = len(metadata["qm9_index"])

    from tpainn.data.formats.qm9 import read_qm9

    start = time.perf_counter()
    with _mapper(workers) as sample_all, tqdm(
        total=n_molecules, initial=done_before, disable=not progress, unit="mol", desc="MMFF94 QM9", smoothing=0.05
    ) as bar:
        for chunk_start in range(done_before, n_molecules, CHUNK_MOLECULES):
            chunk_ids = selection[chunk_start : chunk_start + CHUNK_MOLECULES]
            tasks = [(atoms, conformers_per_molecule, temperature, seed) for atoms in read_qm9(chunk_ids)]
            frames = []
            for qm9_index, result in sample_all(tasks):
                if isinstance(result, str):
                    metadata["skipped"].setdefault(result, []).append(int(qm9_index))
                    metadata["skip_counts"][result] = len(metadata["skipped"][result])
                else:
                    frames += result
                    metadata["qm9_index"] += [int(qm9_index)] * len(result)
                    metadata["molecules_used"] += 1
                bar.update(1)
                bar.set_postfix(skipped=sum(metadata["skip_counts"].values()), refresh=False)
            metadata["molecules_done"] = chunk_start + len(chunk_ids)
            metadata["complete"] = metadata["molecules_done"] == n_molecules
            write_frames(output, frames, metadata=metadata, append=True)
    seconds = time.perf_counter() - start
    done_now = int(metadata["molecules_done"]) - done_before
    return {
        "output": str(output),
        "molecules_selected": n_molecules,
        "molecules_done": int(metadata["molecules_done"]),
        "molecules_used": int(metadata["molecules_used"]),
        "molecules_skipped": sum(metadata["skip_counts"].values()),
        "skipped": dict(metadata["skip_counts"]),
        "skipped_qm9_index": {reason: list(ids) for reason, ids in metadata["skipped"].items()},
        "frames": len(metadata["qm9_index"]),
        "frames_written_this_run": len(metadata["qm9_index"]) - frames_before,
        "resumed_after_molecules": done_before,
        "complete": bool(metadata["complete"]),
        "seconds": seconds,
        "seconds_per_molecule": seconds / done_now if done_now else None,
        "workers": workers,
    }


# ------------------------------------------------------------------------------------- verification


def verify_frames(
    path: str | os.PathLike,
    indices: Sequence[int],
    fd_step: float = 1e-4,
    energy_tol: float = 1e-6,
    force_tol: float = 1e-6,
    fd_tol: float = 1e-4,
) -> dict:
    """Recompute frames of a generate_qm9 file with RDKit and compare, returning the deviations.

    For each frame index: the frame's QM9 molecule (metadata qm9_index) is read from QM9, typed
    again by mmff_molecule from its equilibrium geometry, and a fresh MMFF94 force field is built on
    the stored positions. Reported per frame and as maxima: |E_stored - E_rdkit| (eV),
    max |F_stored - F_rdkit| (eV/Å), and max |F_rdkit - F_fd| with F_fd the central finite
    difference (step fd_step Å) of the MMFF94 energy. `passed` is True when every deviation is
    within energy_tol, force_tol and fd_tol (eV, eV/Å, eV/Å) and the frame is non-periodic.
    """
    from tpainn.data.formats.qm9 import read_qm9

    if not (isinstance(fd_step, (int, float)) and math.isfinite(fd_step) and fd_step > 0):
        raise ValueError(f"fd_step must be a positive length in Å, got {fd_step!r}")
    _, Chem, _, _ = _rdkit()
    from rdkit.Geometry import Point3D

    frames = H5Frames(path)
    try:
        qm9_of_frame = frames.metadata.get("qm9_index")
        if qm9_of_frame is None or len(qm9_of_frame) != len(frames):
            raise ValueError(f"{path}: no per-frame qm9_index in the metadata: not a generate_qm9 file")
        results = []
        for index in indices:
            index = int(index)
            if not 0 <= index < len(frames):
                raise ValueError(f"frame index {index} out of range for {path} ({len(frames)} frames)")
            frame = frames[index]
            stored_energy = frame.calc.results["energy"]
            stored_forces = frame.calc.results["forces"]
            (reference,) = read_qm9([qm9_of_frame[index]])
            if not np.array_equal(reference.numbers, frame.numbers):
                raise ValueError(f"frame {index}: its elements do not match QM9 {qm9_of_frame[index]}")
            mol = Chem.Mol(mmff_molecule(reference))
            conformer = mol.GetConformer()
            for i, (x, y, z) in enumerate(frame.positions.tolist()):
                conformer.SetAtomPosition(i, Point3D(x, y, z))
            force_field = mmff_force_field(mol)
            energy = force_field.CalcEnergy() * KCAL_PER_MOL_IN_EV
            forces = -np.asarray(force_field.CalcGrad()).reshape(-1, 3) * KCAL_PER_MOL_IN_EV
            coordinates = frame.positions.ravel().copy()
            fd_forces = np.empty_like(coordinates)
            for k in range(len(coordinates)):
                plus, minus = coordinates.copy(), coordinates.copy()
                plus[k] += fd_step
                minus[k] -= fd_step
                delta = force_field.CalcEnergy(plus.tolist()) - force_field.CalcEnergy(minus.tolist())
                fd_forces[k] = -delta / (2 * fd_step) * KCAL_PER_MOL_IN_EV
            fd_forces = fd_forces.reshape(-1, 3)
            results.append(
                {
                    "frame": index,
                    "qm9_index": int(qm9_of_frame[index]),
                    "energy_error_eV": abs(stored_energy - energy),
                    "force_error_eV_per_A": float(np.max(np.abs(stored_forces - forces))),
                    "fd_error_eV_per_A": float(np.max(np.abs(forces - fd_forces))),
                    "max_force_eV_per_A": float(np.max(np.abs(forces))),
                    "periodic": bool(frame.pbc.any() or np.any(frame.cell.array != 0)),
                }
            )
    finally:
        frames.close()
    worst = {
        key: max((result[key] for result in results), default=0.0)
        for key in ("energy_error_eV", "force_error_eV_per_A", "fd_error_eV_per_A")
    }
    passed = (
        worst["energy_error_eV"] <= energy_tol
        and worst["force_error_eV_per_A"] <= force_tol
        and worst["fd_error_eV_per_A"] <= fd_tol
        and not any(result["periodic"] for result in results)
    )
    return {
        "frames": results,
        "max_energy_error_eV": worst["energy_error_eV"],
        "max_force_error_eV_per_A": worst["force_error_eV_per_A"],
        "max_fd_error_eV_per_A": worst["fd_error_eV_per_A"],
        "fd_step_A": fd_step,
        "tolerances": {"energy_eV": energy_tol, "force_eV_per_A": force_tol, "fd_eV_per_A": fd_tol},
        "passed": passed,
    }


def report_json(report: dict) -> str:
    """A report as indented JSON (for the CLI)."""
    return json.dumps(report, indent=2, sort_keys=True)
