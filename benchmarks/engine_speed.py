"""Speed of PaiNN energy + forces for MD: the eager PyTorch model, the C++ engine on an unfused export and on a
fused one (tpainn.model.fused), float32, on water boxes, next to the machine's float32 matmul rate.

Usage: python benchmarks/engine_speed.py [--sizes 64 512 1728] [--threads 1 2] [--rounds 3]

The model has the production architecture (F=128, 3 layers, 20 Gaussian RBF, 5 Å cutoff, float32 network) with
untrained weights; water at 1 g/cm³ as in benchmarks/lammps_speed.py. Every call sees the same positions: the
eager model reuses a prebuilt graph and the engine its neighbour list (skin 0.5 Å), so all three time the
network. The variants and a 2048² matmul run interleaved, round robin, `--rounds` times (median): on a shared
machine absolute times drift, their ratios much less.

Model FLOPs per atom are those of the forward pass (per edge the 20+1 -> 3F filter and the message, per atom
φ, the update and the readout) times two, since the backward pass to the inputs costs about one forward; the
fused backward recomputes the filters instead of storing them, and that recomputation is not counted.
"""

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lammps_speed import water
from tpainn import PaiNN, _C
from tpainn.data.graph import atoms_to_graph, collate, model_inputs
from tpainn.export import export_model

CUTOFF, FEATURES, LAYERS, RBF = 5.0, 128, 3, 20


def model_flops_per_atom(edges_per_atom: float) -> float:
    f = FEATURES
    per_edge = 2 * (RBF + 1) * 3 * f + 10 * f  # filter (with bias), message
    per_atom = 2 * f * f + 2 * f * 3 * f + 2 * 3 * f * 2 * f + 2 * 2 * f * f + 2 * f * 3 * f  # φ, update U/V and a
    forward = LAYERS * (edges_per_atom * per_edge + per_atom) + 2 * f * (f // 2)
    return 2 * forward


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 512, 1728], help="water molecules")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = PaiNN(["H", "O"], cutoff=CUTOFF, n_features=FEATURES, n_interactions=LAYERS, n_rbf=RBF, dtype="float32")
    model.eval()
    workdir = Path(tempfile.mkdtemp())
    unfused_path = export_model(model, workdir / "unfused.pt", fused=False)
    fused_path = export_model(model, workdir / "fused.pt", fused=True)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)

    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}; µs per atom-step (energy + "
          f"forces), median of {args.rounds} interleaved rounds")
    header = (f"{'H2O':>5} {'atoms':>6} {'edges/atom':>10} {'threads':>7} {'eager':>8} {'engine':>8} {'fused':>8} "
              f"{'eager/fused':>11} {'engine/fused':>12} {'matmul GFLOP/s':>14} {'fused GFLOP/s':>13} {'of matmul':>9}")
    print(header)
    fused_per_atom = {}
    for n_molecules in args.sizes:
        atoms = water(n_molecules)
        inputs = model_inputs(collate([atoms_to_graph(atoms, CUTOFF)]))
        edges_per_atom = inputs[3].shape[1] / len(atoms)
        positions, numbers, cell = atoms.positions, atoms.numbers, np.asarray(atoms.cell.array)
        unfused, fused = (_C.Engine(str(path), skin=0.5) for path in (unfused_path, fused_path))
        variants = {
            "eager": lambda: model(*inputs, compute_forces=True),
            "engine": lambda: unfused.compute(positions, numbers, cell, [True] * 3, False),
            "fused": lambda: fused.compute(positions, numbers, cell, [True] * 3, False),
            "matmul": lambda: torch.mm(a, b),
        }
        for threads in args.threads:
            torch.set_num_threads(threads)
            for fn in variants.values():
                fn()  # warm-up: TorchScript profiling runs, allocations
            times = {name: [] for name in variants}
            for _ in range(args.rounds):
                for name, fn in variants.items():
                    times[name].append(seconds(fn))
            t = {name: float(np.median(v)) for name, v in times.items()}
            us = {name: t[name] * 1e6 / len(atoms) for name in ("eager", "engine", "fused")}
            matmul = 2 * 2048**3 / t["matmul"] / 1e9
            fused_rate = model_flops_per_atom(edges_per_atom) / (us["fused"] * 1e-6) / 1e9
            fused_per_atom[n_molecules, threads] = us["fused"], t["matmul"]
            print(f"{n_molecules:>5} {len(atoms):>6} {edges_per_atom:>10.1f} {threads:>7} {us['eager']:>8.0f} "
                  f"{us['engine']:>8.0f} {us['fused']:>8.0f} {us['eager'] / us['fused']:>10.1f}x "
                  f"{us['engine'] / us['fused']:>11.1f}x {matmul:>14.0f} {fused_rate:>13.1f} "
                  f"{100 * fused_rate / matmul:>8.1f}%", flush=True)
    print(f"model FLOPs per atom (energy + forces): {model_flops_per_atom(edges_per_atom) / 1e6:.1f} M at "
          f"{edges_per_atom:.1f} edges/atom")
    smallest, largest = min(args.sizes), max(args.sizes)
    for threads in args.threads:
        large, large_matmul = fused_per_atom[largest, threads]
        small, small_matmul = fused_per_atom[smallest, threads]
        # In units of the matmul timed alongside, which cancels most of the drift of a shared machine's speed.
        print(f"fused, {threads} thread(s): per-atom cost at {largest} H2O / at {smallest} H2O = "
              f"{large / large_matmul / (small / small_matmul):.2f} in matmul units ({large / small:.2f} in seconds)")


if __name__ == "__main__":
    main()
