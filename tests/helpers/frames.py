"""Small labelled water frames and the files of each format that hold them, for the reader tests."""

import io
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

BOHR, HARTREE = 0.529177210903, 27.211386245988


def labelled_water(n: int = 2, stress: bool = False, pbc: bool = True, seed: int = 1, jitter: float = 0.0) -> list:
    """`n` water molecules in a 6 Å cell (or none, pbc=False) with energies -14.2 + 0.1 k eV and random forces (and
    stress); positions moved by normal noise of `jitter` Å per frame."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        atoms = Atoms("OH2", positions=[[1, 1, 1.12], [1, 1.76, 0.52], [1, 0.24, 0.52]], cell=np.eye(3) * 6.0 if pbc else None, pbc=pbc)
        if jitter:
            atoms.positions += rng.normal(0, jitter, (3, 3))
        results = {"energy": -14.2 + 0.1 * k, "forces": rng.normal(0, 0.5, (3, 3))}
        if stress:
            results["stress"] = rng.normal(0, 1e-3, 6)
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    return frames


def xyz_text(frames) -> str:
    buffer = io.StringIO()
    ase.io.write(buffer, frames, format="extxyz")
    return buffer.getvalue()


def n2p2_text(frames) -> str:
    """The frames as an n2p2 input.data (bohr, Hartree)."""
    lines = []
    for atoms in frames:
        lines += ["begin", "comment synthetic"] + [f"lattice {' '.join(f'{x / BOHR:.10f}' for x in v)}" for v in atoms.cell.array]
        for s, r, f in zip(atoms.get_chemical_symbols(), atoms.positions / BOHR, atoms.get_forces() * BOHR / HARTREE):
            lines.append(f"atom {r[0]:.10f} {r[1]:.10f} {r[2]:.10f} {s} 0.0 0.0 {f[0]:.10f} {f[1]:.10f} {f[2]:.10f}")
        lines += [f"energy {atoms.get_potential_energy() / HARTREE:.12f}", "charge 0.0", "end"]
    return "\n".join(lines) + "\n"


# The files of a DeePMD system of water frames, as write_deepmd names them.
DEEPMD_FILES = {"type_map": "type_map.raw", "type": "type.raw", "coord": "set.000/coord.npy", "box": "set.000/box.npy",
                "energy": "set.000/energy.npy", "force": "set.000/force.npy", "virial": "set.000/virial.npy"}  # fmt: skip


def write_deepmd(root: Path, frames, **replace) -> Path:
    """A DeePMD system of water frames in `root` (with virial.npy when the frames have stress); `replace` maps a
    name of DEEPMD_FILES to its content instead (an array is saved, bytes written, None leaves the file out)."""
    (root / "set.000").mkdir(parents=True, exist_ok=True)
    files = {
        "type_map": b"O\nH\n", "type": b"0\n1\n1\n",
        "coord": np.array([a.positions.ravel() for a in frames]), "box": np.array([a.cell.array.ravel() for a in frames]),
        "energy": np.array([a.get_potential_energy() for a in frames]), "force": np.array([a.get_forces().ravel() for a in frames]),
    }  # fmt: skip
    if "stress" in frames[0].calc.results:
        files["virial"] = np.array([(-a.get_stress(voigt=False) * a.get_volume()).ravel() for a in frames])
    for name, content in (files | replace).items():
        path = root / DEEPMD_FILES[name]
        if content is None:
            continue
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            np.save(path, content)
    return root
