"""Speed of pair_style tpainn in LAMMPS (MPI ranks x threads) next to TPaiNNCalculator, on water boxes.

Usage: python benchmarks/lammps_speed.py [--sizes 64 216 512 1000] [--steps 10] [--repeats 3]
                                         [--runs 1x1 2x1 1x2] [--device cpu]

--runs lists LAMMPS runs as RANKSxTHREADS. On several ranks each rank's graph holds its own atoms and the
ghosts within one cutoff, and the ghosts' features are exchanged between layers (lammps-plugin/README.md).

The model has the production architecture (examples/water/train.yaml: cutoff 5 Å, 128 features, 3 layers,
float32 network) with untrained weights: speed does not depend on the weights. Water molecules are placed at
1 g/cm³ (random positions and orientations), velocities at 300 K, NVE with a 0.5 fs step and the 1 Å neighbour
skin of `tpainn md` (python/tpainn/md/potentials.py). LAMMPS time is its
"Loop time" over --steps steps after a warm-up step; the calculator's is ASE VelocityVerlet over the same
number of steps, in this process, with one torch thread (LAMMPS runs get OMP_NUM_THREADS = THREADS). Every
runner is timed --repeats times, the runners taking turns, and the median is reported, so that load changes
on a shared machine hit all of them alike. Ratios: "vs calculator" is the calculator's time over the row's,
"vs 1x1" the one-rank, one-thread LAMMPS time over the row's (the MPI speed-up).
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
        f"pair_style tpainn {model} device {device}", "pair_coeff * * H O", "neighbor 1.0 bin",  # as `tpainn md`
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
    parser.add_argument("--repeats", type=int, default=3, help="timings per runner (median reported)")
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
              f"{args.steps} steps, median of {args.repeats}")  # fmt: skip
        print(f"{'H2O':>6} {'atoms':>6} {'runner':>22} {'steps/s':>9} {'us/atom-step':>13} {'vs calculator':>14} {'vs 1x1':>7}")
        for n in args.sizes:
            atoms = water(n)
            runners = {"TPaiNNCalculator": lambda: calculator_seconds_per_step(atoms, model, args.steps, args.device)}
            for r, t in runs:
                runners[f"LAMMPS {r} rank x {t} thr"] = (
                    lambda r=r, t=t: lammps_seconds_per_step(atoms, model, r, args.steps, t, args.device, workdir)
                )
            times = {name: [] for name in runners}
            for _ in range(args.repeats):
                for name, runner in runners.items():
                    times[name].append(runner())
            seconds = {name: float(np.median(ts)) for name, ts in times.items()}
            single = seconds.get("LAMMPS 1 rank x 1 thr")
            for name, s in seconds.items():
                versus_single = f"{single / s:>6.2f}x" if single and name.startswith("LAMMPS") else f"{'':>7}"
                print(f"{n:>6} {len(atoms):>6} {name:>22} {1 / s:>9.2f} {1e6 * s / len(atoms):>13.1f} "
                      f"{seconds['TPaiNNCalculator'] / s:>13.2f}x {versus_single}")  # fmt: skip
            sys.stdout.flush()


if __name__ == "__main__":
    main()
