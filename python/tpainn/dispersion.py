"""Grimme's D3 dispersion as a term outside the network: trained on DFT minus D3, added back at run time.

A network sees atoms within its cutoff (5 Å) only, but D3's r⁻⁶ tail pulls on every pair: in liquid water
its pressure beyond 5 Å is about −1.7 kbar. So a model can learn DFT-D3 minus D3 (labels via
`without_dispersion`), and D3 is added back exactly where it runs: TPaiNNCalculator sums it, `tpainn md`
overlays LAMMPS' `pair_style dispersion/d3`, and LAMMPS' pair_style tpainn refuses a D3 model without it.

Spec string (config `model.dispersion`, exported metadata, registry): "none", or
"d3(DAMPING):FUNCTIONAL[:CUTOFF]" with DAMPING zero or bj, FUNCTIONAL as dftd3 and LAMMPS' dispersion/d3
name it (revpbe0, pbe, pbe0, ...), CUTOFF the pair-sum radius in Å (default 15, where the rest of the
liquid-water pressure is ≈ −0.06 kbar; LAMMPS' cost grows as CUTOFF³). Two-body terms only (no
Axilrod-Teller-Muto three-body term: LAMMPS has none, and CP2K's D3 leaves it off by default). Computed with
the PyPI `dftd3` (simple-dftd3). Units: eV, Å, eV/Å, stress eV/Å³ with ASE's sign ((1/V) ∂E/∂ε).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from ase import Atoms
from ase.units import Bohr, Hartree

from tpainn.data.labels import attach_labels, labels_of, stress_of
from tpainn.files import replacing
from tpainn.model.d3_spec import CN_CUTOFF_A, D3, canonical, parse  # noqa: F401 (canonical: part of this module's API)

def _model(atoms: Atoms, d3: D3):
    from dftd3.interface import DispersionModel

    # dftd3 works in bohr; the three-body cutoff (2nd argument) is unused without the three-body term.
    model = DispersionModel(atoms.numbers, atoms.positions / Bohr, atoms.cell.array / Bohr, atoms.pbc)
    model.set_realspace_cutoff(d3.cutoff / Bohr, CN_CUTOFF_A / Bohr, d3.cn_cutoff / Bohr)
    return model


def compute(atoms: Atoms, d3: D3) -> tuple[float, np.ndarray, Optional[np.ndarray]]:
    """D3 (energy eV, forces eV/Å, stress 3×3 eV/Å³ or None unless periodic in 3D) of `atoms`, float64."""
    result = _model(atoms, d3).get_dispersion(d3.damping_parameters(), grad=True)
    forces = -result["gradient"] * (Hartree / Bohr)
    stress = result["virial"] * Hartree / atoms.get_volume() if atoms.pbc.all() else None
    return float(result["energy"]) * Hartree, forces, stress


def energies(atoms: Atoms, d3: D3) -> np.ndarray:
    """Per-atom D3 energies (eV), summing to compute()'s energy."""
    pairs = _model(atoms, d3).get_pairwise_dispersion(d3.damping_parameters())["additive pairwise energy"]
    return pairs.sum(axis=1) * Hartree


def _cache_file(atoms: Atoms, d3: D3) -> Path:
    import dftd3

    digest = hashlib.sha256(f"{d3} dftd3 {dftd3.__version__}".encode())
    arrays = (atoms.numbers.astype(np.int64), atoms.positions.astype(np.float64), atoms.cell.array.astype(np.float64),
              atoms.pbc.astype(bool))  # fmt: skip
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    root = Path(os.environ.get("TPAINN_CACHE_DIR") or Path.home() / ".cache" / "tpainn").expanduser()
    return root / "dispersion" / f"{digest.hexdigest()}.npz"


def cached(atoms: Atoms, d3: D3) -> tuple[float, np.ndarray, Optional[np.ndarray]]:
    """compute(), once per frame: kept on disk keyed by the frame's sha256 and the spec (atomic writes)."""
    path = _cache_file(atoms, d3)
    if path.is_file():
        with np.load(path) as stored:
            return float(stored["energy"]), stored["forces"], stored["stress"] if "stress" in stored else None
    energy, forces, stress = compute(atoms, d3)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as partial, open(partial, "wb") as out:  # a reader sees the whole file or none
        np.savez(out, energy=energy, forces=forces, **({} if stress is None else {"stress": stress}))
    return energy, forces, stress


def _shifted(atoms: Atoms, d3: D3, sign: float, where: str) -> Atoms:
    energy, forces = labels_of(atoms, where)
    stress = stress_of(atoms, where)
    e, f, s = cached(atoms, d3)
    out = atoms.copy()
    return attach_labels(out, energy + sign * e, None if forces is None else forces + sign * f,
                         None if stress is None or s is None else stress + sign * s)  # fmt: skip


def _check_dataset(d3: D3, dataset) -> None:
    """A registry dataset that records its D3 must be given the same damping and functional."""
    from tpainn.data.registry import DATASETS

    recorded = DATASETS[dataset].dispersion if isinstance(dataset, str) and dataset in DATASETS else None
    if recorded and (parse(recorded).damping, parse(recorded).functional) != (d3.damping, d3.functional):
        raise ValueError(f"dispersion {d3} differs from the D3 that {dataset} was computed with ({recorded})")


def without_dispersion(frames: Sequence[Atoms], spec: Optional[str], dataset=None) -> Sequence[Atoms]:
    """`frames` with D3 subtracted from their labels (energy, forces, stress); unchanged for spec "none"."""
    d3 = parse(spec)
    if d3 is None:
        return frames
    _check_dataset(d3, dataset)
    return [_shifted(a, d3, -1.0, f"{dataset or 'frames'}[{i}]") for i, a in enumerate(frames)]


def with_dispersion(frames: Sequence[Atoms], spec: Optional[str]) -> Sequence[Atoms]:
    """The inverse of without_dispersion: D3 added to the labels."""
    d3 = parse(spec)
    return frames if d3 is None else [_shifted(a, d3, 1.0, f"frames[{i}]") for i, a in enumerate(frames)]
