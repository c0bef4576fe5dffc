"""Speed of PaiNN energy + forces for MD: the eager PyTorch model, the C++ engine on an unfused export and on a
fused one (tpainn.model.fused), and SchNetPack's PaiNN of the same size through its ASE calculator, float32, on
water boxes, next to the machine's float32 matmul rate.

Usage: python benchmarks/engine_speed.py [--sizes 64 512 1728] [--threads 1 2] [--rounds 3]
  with the SchNetPack column: benchmarks/schnetpack-env.sh  (once: makes .venv-bench/, SchNetPack 2.1.1 on top
  of .venv's torch and tpainn; SchNetPack is no project dependency), then .venv-bench/bin/python
  benchmarks/engine_speed.py. Without schnetpack importable the column is omitted, with a line saying so.

The model has the production architecture (F=128, 3 layers, 20 Gaussian RBF, 5 Å cutoff, float32 network) with
untrained weights; water at 1 g/cm³ as in benchmarks/lammps_speed.py. Every call sees the same positions: the
eager model reuses a prebuilt graph and the engine its neighbour list (skin 0.5 Å), so these time the
network. SchNetPack's model is schnetpack.model.NeuralNetworkPotential(PaiNN(n_atom_basis=128,
n_interactions=3, GaussianRBF(20, 5 Å), CosineCutoff(5 Å)), Atomwise energy, Forces), timed through
SpkCalculator.calculate (AtomsConverter with the matscipy neighbour list, rebuilt every call, + model +
results to numpy: what ASE MD calls), its model weights untrained too. The variants and a 2048² matmul run
interleaved, round robin, `--rounds` times (median): on a shared machine absolute times drift, their ratios
much less. Each timing is back-to-back calls of one variant (at least 0.5 s of them), as MD makes them.

Model FLOPs per atom are those of the forward pass (per edge the 20+1 -> 3F filter and the message, per atom
φ, the update and the readout) times two, since the backward pass to the inputs costs about one forward; the
fused backward recomputes the filters instead of storing them, and that recomputation is not counted.
"""

import argparse
import math
import platform
import tempfile
import time
import typing
from pathlib import Path

import numpy as np
import torch

from lammps_speed import water
from tpainn import PaiNN, _C
from tpainn.data.graph import atoms_to_graph, collate, model_inputs
from tpainn.export import export_model

CUTOFF, FEATURES, LAYERS, RBF = 5.0, 128, 3, 20
MIN_TIMING_S = 0.5

try:  # only in the benchmark environment (benchmarks/schnetpack-env.sh)
    import torch.utils.data.dataloader as _dataloader

    # schnetpack 2.1.1 imports this typing-only TypeVar from torch, which torch 2.13 no longer defines.
    _dataloader.T_co = getattr(_dataloader, "T_co", typing.TypeVar("T_co", covariant=True))
    import schnetpack as spk
    from schnetpack.interfaces import SpkCalculator
except ImportError:
    spk = None


def schnetpack_potential(features: int, layers: int):
    """SchNetPack's PaiNN (its default initialisation) with F features and L layers, 20 Gaussian RBF, 5 Å cosine
    cutoff, an Atomwise energy (F -> F/2 -> 1, as ours) and its forces: the same architecture as T-PaiNN's."""
    representation = spk.representation.PaiNN(n_atom_basis=features, n_interactions=layers,
                                              radial_basis=spk.nn.GaussianRBF(RBF, CUTOFF),
                                              cutoff_fn=spk.nn.CosineCutoff(CUTOFF))  # fmt: skip
    return spk.model.NeuralNetworkPotential(
        representation, input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[spk.atomistic.Atomwise(n_in=features, output_key="energy"),
                        spk.atomistic.Forces(energy_key="energy", force_key="forces")])  # fmt: skip


def schnetpack_inputs(frames):
    """SchNetPack's input dictionary for a batch of ASE frames (its AtomsConverter, matscipy neighbour list: its
    TorchNeighborList fails inside AtomsConverter on torch 2.13), with the labels as energy_ref [B] eV and
    forces_ref [N, 3] eV/Å."""
    converter = spk.interfaces.AtomsConverter(spk.transform.MatScipyNeighborList(cutoff=CUTOFF), dtype=torch.float32)
    inputs = converter(list(frames))
    inputs["energy_ref"] = torch.tensor([a.get_potential_energy() for a in frames], dtype=torch.float32)
    inputs["forces_ref"] = torch.tensor(np.concatenate([a.get_forces() for a in frames]), dtype=torch.float32)
    return inputs


def schnetpack_calculator():
    """SchNetPack's PaiNN of our size, untrained, behind SchNetPack's own ASE calculator."""

    class InMemory(SpkCalculator):
        # SpkCalculator only loads pickled modules from a file (torch.load, which torch >= 2.6 refuses without
        # weights_only=False); hand it the model instead. Everything it does per call is unchanged.
        def _load_model(self, model):
            return model.eval()

    model = schnetpack_potential(FEATURES, LAYERS)
    # matscipy, not TorchNeighborList (fails inside AtomsConverter on torch 2.13). Rebuilt every call, yet cheaper
    # than its SkinNeighborList (which recomputes all distances out to cutoff + skin) and ~1 % of its time.
    return InMemory(model, spk.transform.MatScipyNeighborList(cutoff=CUTOFF), energy_unit="eV", dtype=torch.float32)


def schnetpack_step(calc, atoms):
    calc.reset()  # else ASE's calculation_required sees unchanged atoms and SpkCalculator skips the model
    calc.calculate(atoms, ["energy", "forces"])  # one model pass for both, as MD needs
    assert calc.results["forces"].shape == (len(atoms), 3)


def model_flops_per_atom(edges_per_atom: float) -> float:
    f = FEATURES
    per_edge = 2 * (RBF + 1) * 3 * f + 10 * f  # filter (with bias), message
    per_atom = 2 * f * f + 2 * f * 3 * f + 2 * 3 * f * 2 * f + 2 * 2 * f * f + 2 * f * 3 * f  # φ, update U/V and a
    forward = LAYERS * (edges_per_atom * per_edge + per_atom) + 2 * f * (f // 2)
    return 2 * forward


def kernel_threads(threads: int) -> str:
    """The threads the fused kernels run on at torch.set_num_threads(threads): all of them unless the build lacks
    the OpenMP that torch's threads need (cmake/TPaiNNTorch.cmake)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    used = _C.parallel_threads_used(1024)
    torch.set_num_threads(previous)
    return f"fused kernels: {used} thread(s) of torch's {threads}"


def seconds(fn, calls: int = 1) -> float:
    """Seconds per call of `calls` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


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
    if spk is None:
        print("schnetpack not installed: run benchmarks/schnetpack-env.sh; column omitted")
    spk_cols = f" {'schnetpack':>10} {'schnetpack/fused':>16}" if spk else ""

    print(kernel_threads(max(args.threads)))
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}; µs per atom-step (energy + "
          f"forces), median of {args.rounds} interleaved rounds")
    header = (f"{'H2O':>5} {'atoms':>6} {'edges/atom':>10} {'threads':>7} {'eager':>8} {'engine':>8} {'fused':>8} "
              f"{'eager/fused':>11} {'engine/fused':>12}{spk_cols} {'matmul GFLOP/s':>14} {'fused GFLOP/s':>13} "
              f"{'of matmul':>9}")
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
        }
        if spk:
            torch.manual_seed(0)
            spk_calc = schnetpack_calculator()
            variants["schnetpack"] = lambda: schnetpack_step(spk_calc, atoms)
        variants["matmul"] = lambda: torch.mm(a, b)
        for threads in args.threads:
            torch.set_num_threads(threads)
            for fn in variants.values():
                fn()  # warm-up: TorchScript profiling runs, allocations
            # As MD calls it: each timing is back-to-back calls of one variant, at least MIN_TIMING_S of them.
            calls = {name: max(1, math.ceil(MIN_TIMING_S / seconds(fn))) for name, fn in variants.items()}
            times = {name: [] for name in variants}
            for _ in range(args.rounds):
                for name, fn in variants.items():
                    times[name].append(seconds(fn, calls[name]))
            t = {name: float(np.median(v)) for name, v in times.items()}
            us = {name: t[name] * 1e6 / len(atoms) for name in variants if name != "matmul"}
            matmul = 2 * 2048**3 / t["matmul"] / 1e9
            fused_rate = model_flops_per_atom(edges_per_atom) / (us["fused"] * 1e-6) / 1e9
            fused_per_atom[n_molecules, threads] = us["fused"], t["matmul"]
            print(f"{n_molecules:>5} {len(atoms):>6} {edges_per_atom:>10.1f} {threads:>7} {us['eager']:>8.0f} "
                  f"{us['engine']:>8.0f} {us['fused']:>8.0f} {us['eager'] / us['fused']:>10.1f}x "
                  f"{us['engine'] / us['fused']:>11.1f}x"
                  + (f" {us['schnetpack']:>10.0f} {us['schnetpack'] / us['fused']:>15.1f}x" if spk else "")
                  + f" {matmul:>14.0f} {fused_rate:>13.1f} "
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
