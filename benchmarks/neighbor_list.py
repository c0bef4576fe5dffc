"""Time tpainn.neighbor_list against ASE (and matscipy when installed) on water-density boxes.

Usage: python benchmarks/neighbor_list.py [--sizes 192 1536 5184 24000] [--cutoff 5] [--seconds 1]

Atoms are placed uniformly at random at liquid-water atom density (0.1 atoms/Å^3, 3 atoms per 29.9 Å^3),
in a periodic cubic box. All codes run on the same structures in the same process, one thread each (ASE and
matscipy are single-threaded; so is tpainn's search), and the edge counts are checked against ASE's.
"""

import argparse
import platform
import time

import numpy as np
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list as ase_neighbor_list

from tpainn.neighbors import neighbor_list_atoms

try:
    from matscipy.neighbours import neighbour_list as matscipy_neighbor_list
except ImportError:
    matscipy_neighbor_list = None

ATOMS_PER_A3 = 3 / 29.9


def water_box(n_atoms: int, seed: int = 0) -> Atoms:
    length = (n_atoms / ATOMS_PER_A3) ** (1 / 3)
    positions = np.random.default_rng(seed).uniform(0.0, length, size=(n_atoms, 3))
    return Atoms(numbers=np.ones(n_atoms, dtype=int), positions=positions, cell=np.eye(3) * length, pbc=True)


def seconds_per_call(fn, budget: float) -> float:
    """Median over repeated calls (at least 3) within roughly `budget` seconds."""
    fn()  # warm-up
    times = []
    while len(times) < 3 or sum(times) < budget:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[192, 1536, 5184, 24000])
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per code and size")
    args = parser.parse_args()

    codes = {
        "tpainn": lambda atoms: neighbor_list_atoms(atoms, args.cutoff)[2].shape[0],
        "ase": lambda atoms: len(ase_neighbor_list("d", atoms, args.cutoff)),
    }
    if matscipy_neighbor_list is not None:
        codes["matscipy"] = lambda atoms: len(matscipy_neighbor_list("d", atoms, args.cutoff))
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, cutoff {args.cutoff} Å, "
          "median time per call")
    header = f"{'atoms':>7} {'box Å':>6} {'edges':>9}" + "".join(f" {c + ' ms':>12} {'µs/atom':>8}" for c in codes)
    header += "".join(f" {c + '/tpainn':>16}" for c in codes if c != "tpainn")
    print(header)
    for n_atoms in args.sizes:
        atoms = water_box(n_atoms)
        counts = {name: fn(atoms) for name, fn in codes.items()}
        assert len(set(counts.values())) == 1, f"edge counts differ: {counts}"
        times = {name: seconds_per_call(lambda: fn(atoms), args.seconds) for name, fn in codes.items()}
        row = f"{n_atoms:>7} {atoms.cell[0, 0]:>6.1f} {counts['tpainn']:>9}"
        row += "".join(f" {t * 1e3:>12.3f} {t * 1e6 / n_atoms:>8.2f}" for t in times.values())
        row += "".join(f" {times[c] / times['tpainn']:>15.1f}x" for c in codes if c != "tpainn")
        print(row, flush=True)


if __name__ == "__main__":
    main()
