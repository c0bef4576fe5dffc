"""Speed and capacity of the C++ engine on a GPU: µs per atom-step (energy + forces) and peak GPU memory for
water boxes, the fused and the unfused export, the neighbour-list rebuild timed on its own; then boxes doubled
until one no longer fits (or a step takes longer than --max-step-s).

Usage: python benchmarks/gpu_speed.py [--sizes 512 4096 32768 65536] [--capacity] [--device cuda]
(benchmarks/gpu/run.sh runs it on the lent GPU machine.)

The model has the production architecture (F=128, 3 layers, 20 Gaussian RBF, 5 Å cutoff, float32 network, as
engine_speed.py) with untrained weights; water molecules at 1 g/cm³, random positions and orientations. "network"
calls see the same positions, so the engine reuses its neighbour list (skin 0.5 Å) and the time is the model's
plus the host <-> device copies an MD step makes (positions in, energies and forces out, float64). "rebuild"
calls move every atom by 0.3 Å (more than half the skin), so the engine rebuilds its cell list on the CPU and
copies the new graph to the device: its extra time over "network" is the neighbour list's cost. Each figure is
the median of --rounds timings of back-to-back calls. Peak memory is torch's CUDA allocator peak over the size
(the engine runs on the same allocator as this process' torch).
"""

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from tpainn import PaiNN, _C
from tpainn.export import export_model

CUTOFF, FEATURES, LAYERS, RBF = 5.0, 128, 3, 20
ANGSTROM3_PER_MOLECULE = 29.9  # 1 g/cm³
WATER = np.array([[0.0, 0.0, 0.119262], [0.0, 0.763239, -0.477047], [0.0, -0.763239, -0.477047]])  # O H H, Å


def water(n_molecules: int, seed: int = 0):
    """Positions [3n, 3] (O H H per molecule), atomic numbers and the cubic cell of n molecules at 1 g/cm³: randomly
    turned molecules on randomly chosen sites of a cubic grid (random placement makes overlapping atoms, which the
    engine refuses, certain in large boxes)."""
    rng = np.random.default_rng(seed)
    length = (n_molecules * ANGSTROM3_PER_MOLECULE) ** (1 / 3)
    per_side = int(np.ceil(n_molecules ** (1 / 3)))
    sites = rng.choice(per_side**3, n_molecules, replace=False)
    centres = (np.stack(np.unravel_index(sites, (per_side,) * 3), axis=1) + 0.5) * (length / per_side)
    rotations = Rotation.random(n_molecules, random_state=rng).as_matrix()  # [n, 3, 3]
    positions = np.einsum("nij,aj->nai", rotations, WATER) + centres[:, None, :]
    numbers = np.tile([8, 1, 1], n_molecules).astype(np.int64)
    return np.ascontiguousarray(positions.reshape(-1, 3) % length), numbers, np.eye(3) * length


def median_seconds(fn, calls: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return float(np.median(times))


def measure(path: Path, n_molecules: int, device: str, rounds: int) -> dict:
    positions, numbers, cell = water(n_molecules)
    engine = _C.Engine(str(path), device=device, skin=0.5)
    moved = [positions, positions + 0.3]
    on_gpu = device.startswith("cuda")
    if on_gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    engine.compute(positions, numbers, cell, [True] * 3, False)  # first call: graph, TorchScript warm-up
    first = time.perf_counter() - start
    engine.compute(positions, numbers, cell, [True] * 3, False)
    calls = max(1, int(1.0 / max(first, 1e-3)))
    network = median_seconds(lambda: engine.compute(positions, numbers, cell, [True] * 3, False), calls, rounds)
    step = iter(range(10**9))
    rebuild = median_seconds(lambda: engine.compute(moved[next(step) % 2], numbers, cell, [True] * 3, False),
                             calls, rounds)  # fmt: skip
    n = len(numbers)
    return {"atoms": n, "first_s": first, "network_us": network * 1e6 / n, "rebuild_us": rebuild * 1e6 / n,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if on_gpu else float("nan")}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 4096, 32768, 65536], help="water molecules")
    parser.add_argument("--capacity", action="store_true", help="then double the largest size until it fails")
    parser.add_argument("--max-step-s", type=float, default=20.0, help="stop doubling past this step time")
    parser.add_argument("--deadline-s", type=float, default=float("inf"), help="no new size after this wall time")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = PaiNN(["H", "O"], cutoff=CUTOFF, n_features=FEATURES, n_interactions=LAYERS, n_rbf=RBF, dtype="float32")
    workdir = Path(tempfile.mkdtemp())
    exports = {fused: export_model(model.eval(), workdir / f"fused-{fused}.pt", fused=fused) for fused in (True, False)}
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else platform.processor()
    print(f"{name}, torch {torch.__version__}; F={FEATURES} x {LAYERS} layers, float32 network, float64 in/out; "
          f"µs per atom-step (energy + forces), median of {args.rounds}")
    print(f"{'H2O':>8} {'atoms':>8} {'export':>7} {'network µs':>10} {'rebuild µs':>10} {'list share':>10} "
          f"{'step ms':>9} {'peak GiB':>8}")
    started, largest = time.perf_counter(), None
    sizes = [(n, (True, False)) for n in args.sizes]
    while sizes:
        n_molecules, kinds = sizes.pop(0)
        for fused in kinds:
            label = "fused" if fused else "unfused"
            try:
                r = measure(exports[fused], n_molecules, args.device, args.rounds)
            except RuntimeError as error:  # the engine's device errors, out of memory among them
                lines = str(error).splitlines()  # TorchScript wraps the cause: name its line (out of memory, say)
                cause = next((line for line in lines if "Error:" in line), lines[0])
                print(f"{n_molecules:>8} {3 * n_molecules:>8} {label:>7} failed: {cause.strip()[:160]}")
                continue
            share = 1 - r["network_us"] / r["rebuild_us"]
            print(f"{n_molecules:>8} {r['atoms']:>8} {label:>7} {r['network_us']:>10.3f} {r['rebuild_us']:>10.3f} "
                  f"{100 * share:>9.0f}% {r['network_us'] * r['atoms'] / 1e3:>9.1f} {r['peak_gib']:>8.1f}", flush=True)
            if fused:
                largest = (r["atoms"], r["rebuild_us"] * r["atoms"] / 1e6)
        # Capacity: the fused export only (the smaller graph memory), doubling while the last size ran in time.
        fits = largest and largest[0] == 3 * n_molecules and largest[1] < args.max_step_s
        in_time = time.perf_counter() - started < args.deadline_s
        if args.capacity and not sizes and fits and in_time:
            sizes.append((2 * n_molecules, (True,)))
    if largest:
        print(f"largest box run (fused export): {largest[0]} atoms, {largest[1]:.2f} s per step with a list rebuild")


if __name__ == "__main__":
    main()
