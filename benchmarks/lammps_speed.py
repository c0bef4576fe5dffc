"""Speed of pair_style tpainn in LAMMPS (MPI ranks x threads) next to TPaiNNCalculator, on water boxes.

Usage: python benchmarks/lammps_speed.py [--sizes 64 216 512 1000] [--steps 10] [--runs 1x1 2x1 1x2] [--device cpu]

--runs lists LAMMPS runs as RANKSxTHREADS. On several ranks every rank's graph includes a ghost shell of
layers x cutoff (lammps-plugin/README.md): for these box sizes that is most of the box several times over,
slow and memory-hungry (2.5 GB per rank at 64 H2O, ~8 GB per rank expected at 1000 H2O).

The model has the production architecture (examples/water/train.yaml: cutoff 5 Å, 128 features, 3 layers,
float32 network) with untrained weights: speed does not depend on the weights. Water molecules are placed at
1 g/cm³ (random positions and orientations), velocities at 300 K, NVE with a 0.5 fs step. LAMMPS time is its
"Loop time" over --steps steps after a warm-up step; the calculator's is ASE VelocityVerlet over the same
number of steps, in this process, with one torch thread (LAMMPS runs get OMP_NUM_THREADS = THREADS).
"""

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms, units
from ase.build import molecule
from ase.io import write
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet
from scipy.spatial.transform import Rotation

from tpainn import PaiNN, TPaiNNCalculator
from tpainn.export import export_model

BIN = Path(sys.executable).parent
ANGSTROM3_PER_MOLECULE = 29.9  # 1 g/cm³


def water(n_molecules: int, seed: int = 0) -> Atoms:
    rng = np.random.default_rng(seed)
    length = (n_molecules * ANGSTROM3_PER_MOLECULE) ** (1 / 3)
    h2o = molecule("H2O")
    positions = [Rotation.random(random_state=rng).apply(h2o.positions) + rng.uniform(0, length, 3) for _ in range(n_molecules)]
    atoms = Atoms("H2O" * n_molecules, positions=np.concatenate(positions), cell=np.eye(3) * length, pbc=True)
    atoms.wrap()
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.RandomState(seed))
    return atoms


def lammps_seconds_per_step(atoms, model, ranks, steps, threads, device, workdir):
    data, script = workdir / "water.data", workdir / "in.lmp"
    write(data, atoms, format="lammps-data", specorder=["H", "O"], masses=True, velocities=True, units="metal")
    script.write_text("\n".join([
        "units metal", "atom_style atomic", f"read_data {data}",
        f"pair_style tpainn {model} device {device}", "pair_coeff * * H O",
        "timestep 0.0005", "fix nve all nve", "thermo 1000", "run 1", f"run {steps}", "",
    ]))  # fmt: skip
    cmd = [str(BIN / "lmp"), "-in", str(script), "-log", "none"]
    if ranks > 1:
        cmd = [str(BIN / "mpirun"), "-np", str(ranks), *cmd]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    loop = re.findall(r"Loop time of ([0-9.eE+-]+) on \d+ procs for (\d+) steps", out)[-1]
    return float(loop[0]) / int(loop[1])


def calculator_seconds_per_step(atoms, model, steps, device):
    atoms = atoms.copy()
    atoms.calc = TPaiNNCalculator(model, device=device)
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    dyn.run(1)  # warm-up
    start = time.perf_counter()
    dyn.run(steps)
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 216, 512, 1000], help="water molecules")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--runs", nargs="+", default=["1x1", "2x1", "1x2"], help="LAMMPS RANKSxTHREADS")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = [tuple(int(k) for k in run.split("x")) for run in args.runs]

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        torch.manual_seed(0)
        net = PaiNN(["H", "O"], cutoff=5.0, n_features=128, n_interactions=3, n_rbf=20, dtype="float32")
        model = export_model(net.eval(), workdir / "model.pt")
        print(f"# {platform.node()} ({os.cpu_count()} cores), torch {torch.__version__}, device {args.device}, "
              f"{args.steps} steps")  # fmt: skip
        print(f"{'H2O':>6} {'atoms':>6} {'runner':>18} {'steps/s':>9} {'us/atom-step':>13} {'vs calculator':>14}")
        for n in args.sizes:
            atoms = water(n)
            ase_s = calculator_seconds_per_step(atoms, model, args.steps, args.device)
            rows = [("TPaiNNCalculator", ase_s)]
            rows += [(f"LAMMPS {r} rank x {t} thr",
                      lammps_seconds_per_step(atoms, model, r, args.steps, t, args.device, workdir))
                     for r, t in runs]  # fmt: skip
            for name, s in rows:
                print(f"{n:>6} {len(atoms):>6} {name:>18} {1 / s:>9.2f} {1e6 * s / len(atoms):>13.1f} {ase_s / s:>13.2f}x")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
