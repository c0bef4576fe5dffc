"""The MMFF94 force field (RDKit) for QM9 molecules: bond perception, typing, a fresh force field, an ASE calculator.

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

Energies are MMFF94 steric energies (kcal/mol converted to eV with ase.units), on no common scale
with QM9's U0; forces are the analytic negative gradient (eV/Å). The sampler of QM9 conformers is
tpainn.classical.qm9_sampling.
"""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from tpainn.classical.units import KCAL_MOL_TO_EV

# RDKit drops non-bonded pairs farther apart than this (Å) when the force field is built; QM9
# molecules are < 15 Å across, so every pair is kept and the energy is one smooth function.
NONBONDED_THRESHOLD_A = 100.0

SKIP_REASONS = {
    "bonds_undetermined": "rdDetermineBonds.DetermineBonds(charge=0, useHueckel=True) failed",
    "bonds_disagree_with_smiles": "the perceived bond graph differs from the QM9 SMILES graph",
    "smiles_unreadable": "RDKit cannot parse the QM9 SMILES used to check the bonds",
    "mmff_untyped": "MMFFGetMoleculeProperties(mmffVariant='MMFF94') could not type an atom",
    "mmff_missing_parameters": "MMFF94 lacks parameters for a bonded term (MMFFHasAllMoleculeParams)",
    "md_nonfinite": "the MD produced a non-finite energy, force or position",
}


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


def rdkit_version() -> str:
    return _rdkit()[0].__version__


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
        energy = self._force_field.CalcEnergy(coordinates) * KCAL_MOL_TO_EV
        gradient = np.asarray(self._force_field.CalcGrad(coordinates), dtype=np.float64).reshape(-1, 3)
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": -gradient * KCAL_MOL_TO_EV,
        }
