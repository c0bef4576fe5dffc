"""`tpainn classical for FILE`: which classical pretraining this project can generate for a user's frames.

tpainn generates classical data for liquid water (SPC/Fw, q-TIP4P/F in LAMMPS: `tpainn classical water`) and
for QM9 molecules (MMFF94: `tpainn classical qm9`, the QM9 molecules only). A file is water when its frames hold
only H and O, every O with exactly two H within 1.25 Å and every H bonded to one O; for it the commands are
printed, at the file's molecule count and density. Anything else gets a ValueError saying that there is no
model, and what to do instead (from scratch, or pretraining on frames of one's own force field).
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
from ase import Atoms
from ase.geometry import get_distances

from tpainn.classical.units import GRAMS_PER_AMU
from tpainn.data.frames import load_frames

# O–H distance below which an H belongs to an O (water's is 0.96-1.0 Å; the next O is 1.6 Å away or more).
OH_BOND_A = 1.25
_CHECKED_FRAMES = 5


def is_water(atoms: Atoms) -> bool:
    """Only H and O, each O with exactly two H within OH_BOND_A and each H with exactly one O (minimum image)."""
    symbols = np.array(atoms.get_chemical_symbols())
    if set(symbols) != {"H", "O"}:
        return False
    oxygens, hydrogens = np.flatnonzero(symbols == "O"), np.flatnonzero(symbols == "H")
    if len(hydrogens) != 2 * len(oxygens):
        return False
    periodic = atoms.pbc.any()
    _, distances = get_distances(atoms.positions[oxygens], atoms.positions[hydrogens],
                                 cell=atoms.cell if periodic else None, pbc=atoms.pbc if periodic else None)  # fmt: skip
    bonded = distances < OH_BOND_A
    return bool((bonded.sum(axis=1) == 2).all() and (bonded.sum(axis=0) == 1).all())


def classical_for(spec: str | os.PathLike, format: str | None = None, **keys: str | None) -> str:
    """The commands that generate classical pretraining data for the frames of `spec`; ValueError where tpainn has
    no classical model for them."""
    frames = load_frames(spec, format, **keys)
    checked = [frames[int(i)] for i in np.unique(np.linspace(0, len(frames) - 1, min(_CHECKED_FRAMES, len(frames))).astype(int))]
    if not all(is_water(atoms) for atoms in checked):
        formulas = Counter(atoms.get_chemical_formula() for atoms in checked)
        raise ValueError(
            f"{spec}: tpainn has no classical model for these frames ({', '.join(formulas)}): it generates classical "
            "data for liquid water only (spcfw, qtip4pf; `tpainn classical qm9` covers the QM9 molecules, not others). "
            "Train from scratch (a learning curve with `variants: {scratch: {}}`), or pretrain on frames of your own "
            "force field in any supported format: `tpainn pretrain CONFIG data.dataset=YOUR_FRAMES`"
        )
    first = checked[0]
    n_molecules = len(first) // 3
    density = ""
    if first.pbc.all():
        rho = first.get_masses().sum() * GRAMS_PER_AMU / (first.get_volume() * 1e-24)
        density = f" at {rho:.3f} g/cm³"
    return "\n".join([
        f"{spec}: water, {n_molecules} H2O per frame{density}. Classical models: spcfw (SPC/Fw), qtip4pf (q-TIP4P/F).",
        "Generate frames with either (the default grid spans 0.90-1.10 g/cm³ and 250-450 K):",
        f"  tpainn classical water --model qtip4pf --n-molecules {n_molecules} -o runs/classical/qtip4pf-{n_molecules}.h5",
        f"  tpainn classical water --model spcfw --n-molecules {n_molecules} -o runs/classical/spcfw-{n_molecules}.h5",
        "then pretrain on them (examples/water/pretrain-qtip4pf.yaml, its data.dataset set to the file written).",
    ])  # fmt: skip
