"""QM9 from the qm9pack package: each molecule's equilibrium geometry and U0 (no forces), in QM9 id order."""

from __future__ import annotations

import functools
import re
import warnings

import numpy as np
from ase import Atoms
from ase.units import Hartree

from tpainn.data.errors import DataError
from tpainn.data.labels import attach_labels

# U0 of the isolated atoms at B3LYP/6-31G(2df,p), Hartree (QM9 atomref, Ramakrishnan et al. 2014).
QM9_ATOM_U0_HARTREE = {"H": -0.500273, "C": -37.846772, "N": -54.583861, "O": -75.064579, "F": -99.718730}
_QM9_COLUMNS = ["Index", "SMILES", "N_atoms", "Elements", "XYZ_Ang", "InternalEnergy_0K_au"]


@functools.lru_cache(maxsize=1)
def qm9_table():
    """The QM9 columns we use, indexed and sorted by QM9 id; qm9pack parses its CSVs in ~1.5 s, so once."""
    # Imported here, not at module level, so that `import tpainn.data` does not pay for pandas + CSVs.
    with warnings.catch_warnings():
        # qm9pack imports pkg_resources, which warns about its own deprecation.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import qm9pack

        table = qm9pack.get_data("qm9")
    table = table[_QM9_COLUMNS].set_index("Index").sort_index()
    if not table.index.is_unique:
        raise DataError("qm9pack: the Index column repeats QM9 ids")
    return table


def _qm9_symbols(elements_column, n_atoms_total: int) -> list[str]:
    """All atoms' symbols, molecule after molecule, from strings like "['C','H','H','H','H']"."""
    symbols = re.findall(r"'([A-Za-z]+)'", "".join(elements_column))
    if len(symbols) != n_atoms_total:
        raise DataError(f"qm9pack: the Elements column lists {len(symbols)} atoms, N_atoms sums to {n_atoms_total}")
    unknown = set(symbols) - QM9_ATOM_U0_HARTREE.keys()
    if unknown:
        raise DataError(f"qm9pack: elements {sorted(unknown)} have no QM9 atomic reference energy")
    return symbols


def _qm9_positions_A(xyz_column, n_atoms_total: int) -> np.ndarray:
    """All atoms' positions (Å) from strings like "[[x,y,z],[x,y,z]]", parsed in one pass.

    The strings are not JSON ("0." and "1." occur), but stripped of brackets and commas they are
    plain numbers for np.fromstring, which is ~10× faster than literal_eval per molecule.
    """
    text = ",".join(xyz_column).translate(str.maketrans("[],", "   "))
    values = np.fromstring(text, sep=" ")
    if values.size != 3 * n_atoms_total:
        raise DataError(f"qm9pack: the XYZ_Ang column holds {values.size} numbers, expected 3 × {n_atoms_total} atoms")
    return values.reshape(-1, 3)


def _qm9_rows(indices):
    table = qm9_table()
    if indices is None:
        return table
    qm9_ids = np.atleast_1d(np.asarray(indices, dtype=np.int64))
    missing = qm9_ids[~np.isin(qm9_ids, table.index)]
    if missing.size:
        raise DataError(
            f"QM9 has no molecule with index {missing[:10].tolist()} "
            "(indices are the 1-based QM9 ids; 3054 of 1..133885 failed upstream and are absent)"
        )
    return table.loc[qm9_ids]


def read_qm9(indices=None) -> list[Atoms]:
    """QM9 molecules from the qm9pack package: equilibrium geometries (Å) labelled with U0 (eV), no forces.

    `indices` are QM9 ids (the 1-based 'Index' column: 1 is methane); None gives all 130,831
    molecules in id order. atoms.info holds qm9_index, smiles, U0_eV and atomization_energy_eV
    (U0 minus the free-atom references QM9_ATOM_U0_HARTREE).
    """
    rows = _qm9_rows(indices)
    n_atoms = rows["N_atoms"].to_numpy()
    offsets = np.concatenate([[0], np.cumsum(n_atoms)])
    symbols = _qm9_symbols(rows["Elements"], int(offsets[-1]))
    positions_A = _qm9_positions_A(rows["XYZ_Ang"], int(offsets[-1]))
    atom_u0_eV = np.array([QM9_ATOM_U0_HARTREE[symbol] for symbol in symbols]) * Hartree
    u0_eV = rows["InternalEnergy_0K_au"].to_numpy() * Hartree
    atomization_eV = u0_eV - np.add.reduceat(atom_u0_eV, offsets[:-1]) if len(rows) else u0_eV
    frames = []
    for i, (qm9_id, smiles) in enumerate(zip(rows.index, rows["SMILES"])):
        first, last = offsets[i], offsets[i + 1]
        atoms = Atoms(symbols=symbols[first:last], positions=positions_A[first:last])
        atoms.info.update(
            qm9_index=int(qm9_id), smiles=smiles, U0_eV=float(u0_eV[i]), atomization_energy_eV=float(atomization_eV[i])
        )
        frames.append(attach_labels(atoms, u0_eV[i]))
    return frames


