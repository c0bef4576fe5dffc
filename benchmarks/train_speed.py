"""Speed of a training step: optimizer steps per second and structures per second of T-PaiNN's training step
(eager message blocks, and fused: tpainn.model.fused.fuse_messages) and of SchNetPack 2.1.1's on the same model
and batch, with the activation memory per structure; or (--profile) where the time of T-PaiNN's steps goes, data
pipeline included.

Usage: python benchmarks/train_speed.py [--models 128x3 32x2] [--batches 2 8] [--threads 1 2] [--rounds 3] [--steps 3]
       python benchmarks/train_speed.py --profile [--fused] [--threads 2]
  with the SchNetPack column: benchmarks/schnetpack-env.sh (once: makes .venv-bench/), then .venv-bench/bin/python
  benchmarks/train_speed.py. Without schnetpack importable the column is omitted, with a line saying so.

Frames: water-revpbe0-d3 (64 H2O, 192 atoms, revPBE0-D3 energies and forces), float32 networks with 20 Gaussian
RBF and a 5 Å cutoff, untrained weights. Every variant trains on the same `steps × batch` frames.
- T-PaiNN (eager, and fused: the same model with its message blocks switched to the fused operator, which
  is differentiable to second order): the trainer's own step (tpainn.train.trainer.train_epoch) over graphs built once and cached, as
  `tpainn train` does: DataLoader + collate → energy and forces (create_graph) → loss (energy 100, forces 1) →
  backward through the force graph → gradient clipping → AdamW → EMA of the weights.
- SchNetPack: NeuralNetworkPotential(PaiNN(n_atom_basis=F, n_interactions=L, GaussianRBF(20, 5 Å),
  CosineCutoff(5 Å)), PairwiseDistances, Atomwise energy, Forces) on batches converted once by its AtomsConverter
  (matscipy neighbour list: cached, as ours), the same loss, backward, AdamW (its Trainer clips nothing and keeps
  no EMA by default).
The variants run interleaved, round robin, `--rounds` times (median of the per-step times): on a shared machine
absolute times drift, their ratios much less.

Memory per structure: the bytes of the tensors autograd saves during one step (the energy and force graphs that
the backward pass goes through), each storage counted once (torch.autograd.graph.saved_tensors_hooks), divided by
the batch size. This is the part of a step's peak memory that grows with the batch; the weights, gradients and
optimizer state add a fixed amount (3 × 4 bytes per parameter, ~2 MB at F=128 × 3).
"""

import argparse
import cProfile
import functools
import platform
import pstats
from typing import Callable, Dict

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader, Subset

from engine_speed import CUTOFF, RBF, kernel_threads, schnetpack_inputs, schnetpack_potential, seconds, spk
from tpainn.data import load_dataset
from tpainn.data.graph import GraphDataset, collate, elements_in
from tpainn.model.fused import fuse_messages
from tpainn.train import load_config
from tpainn.train.trainer import build_model, ema_average_fn, train_epoch

ENERGY_WEIGHT, FORCES_WEIGHT = 100.0, 1.0  # the trainer's defaults (train/config.py)


class TPaiNNTraining:
    """`tpainn train`'s step at one model size and batch size."""

    def __init__(self, frames, features: int, layers: int, batch: int, fused: bool = False):
        torch.manual_seed(0)
        self.config = load_config(None, [f"model.n_features={features}", f"model.n_interactions={layers}",
                                         f"model.n_rbf={RBF}", f"model.cutoff={CUTOFF}", f"optimizer.batch_size={batch}"])  # fmt: skip
        self.model = build_model(self.config, frames, elements_in(frames))
        if fused:
            fuse_messages(self.model)
        self.ema = AveragedModel(self.model, multi_avg_fn=ema_average_fn(self.config["ema_decay"]), use_buffers=True)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.config["optimizer"]["lr"])
        self.graphs = GraphDataset(frames, self.model.cutoff, cache=True)
        self.batch = batch
        for index in range(len(frames)):  # built once, as in the trainer's first epoch
            self.graphs[index]

    def run(self, steps: int) -> None:
        batches = DataLoader(Subset(self.graphs, range(steps * self.batch)), batch_size=self.batch, collate_fn=collate)
        train_epoch(self.model, self.ema, self.optimizer, batches, self.config)


class SchNetPackTraining:
    """SchNetPack's PaiNN of the same size trained on the same frames and loss."""

    def __init__(self, frames, features: int, layers: int, batch: int):
        torch.manual_seed(0)
        self.model = schnetpack_potential(features, layers)
        self.batches = [schnetpack_inputs(frames[first : first + batch]) for first in range(0, len(frames) - batch + 1, batch)]
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=5e-4)

    def run(self, steps: int) -> None:
        self.model.train()
        positions = spk.properties.R
        for cached in self.batches[:steps]:
            inputs = {**cached, positions: cached[positions].clone()}  # the model marks positions for the force gradient
            out = self.model(inputs)
            energy_error = (out["energy"] - inputs["energy_ref"]) / inputs[spk.properties.n_atoms]
            loss = ENERGY_WEIGHT * torch.mean(energy_error**2) + FORCES_WEIGHT * torch.mean((out["forces"] - inputs["forces_ref"]) ** 2)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()


def saved_bytes(step: Callable[[], None]) -> int:
    """Bytes of the distinct storages autograd saves for backward while `step` runs."""
    storages: Dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step()
    return sum(storages.values())


def benchmark(frames, args) -> None:
    variants = {"eager": TPaiNNTraining, "fused": functools.partial(TPaiNNTraining, fused=True), **({"spk": SchNetPackTraining} if spk else {})}
    cases = [(features, layers, batch) for features, layers in args.models for batch in args.batches]
    trainers = {(case, name): cls(frames[: args.steps * case[2]], *case) for case in cases for name, cls in variants.items()}
    # One step each, also the warm-up (first-call allocations).
    memory = {key: saved_bytes(lambda: trainer.run(1)) / key[0][2] for key, trainer in trainers.items()}
    times = {(key, threads): [] for key in trainers for threads in args.threads}
    for _ in range(args.rounds):
        for threads in args.threads:
            torch.set_num_threads(threads)
            for key, trainer in trainers.items():
                times[key, threads].append(seconds(lambda: trainer.run(args.steps)) / args.steps)
    if not spk:
        print("schnetpack not installed: run benchmarks/schnetpack-env.sh; column omitted")
    print(kernel_threads(max(args.threads)))
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}; {len(frames[0])}-atom water, "
          f"median of {args.rounds} interleaved rounds of {args.steps} optimizer steps; speed-up = time per step of "
          "the other / this")
    columns = [f"{name} {column}" for name in variants for column in ("steps/s", "struct/s", "MB/struct")]
    speedups = ["fused vs eager"] + (["eager vs spk", "fused vs spk"] if spk else [])
    print(f"{'model':>7} {'batch':>5} {'threads':>7} " + " ".join(f"{c:>15}" for c in columns + speedups))
    for features, layers, batch in cases:
        for threads in args.threads:
            case = (features, layers, batch)
            step = {name: float(np.median(times[(case, name), threads])) for name in variants}
            cells = [value for name in variants
                     for value in (1 / step[name], batch / step[name], memory[case, name] / 1e6)]  # fmt: skip
            ratios = [step["eager"] / step["fused"]] + ([step["spk"] / step["eager"], step["spk"] / step["fused"]] if spk else [])
            print(f"{features:>4}x{layers:<2} {batch:>5} {threads:>7} " + " ".join(f"{c:>15.2f}" for c in cells)
                  + " " + " ".join(f"{r:>14.2f}x" for r in ratios), flush=True)  # fmt: skip


# Where a step's time goes: (label, file the function is defined in, function name), cumulative time.
PROFILED = [
    ("neighbour lists (atoms_to_graph)", "tpainn/data/graph.py", "atoms_to_graph"),
    ("collation (collate)", "tpainn/data/graph.py", "collate"),
    ("data loading (DataLoader.__next__)", "torch/utils/data/dataloader.py", "__next__"),
    ("model forward + forces (PaiNN.forward)", "tpainn/model/potential.py", "forward"),
    ("backward (Tensor.backward)", "torch/_tensor.py", "backward"),
    ("optimizer (AdamW.step)", "torch/optim/adam.py", "step"),  # AdamW inherits Adam.step
    ("EMA (AveragedModel.update_parameters)", "torch/optim/swa_utils.py", "update_parameters"),
    ("whole epoch (train_epoch)", "tpainn/train/trainer.py", "train_epoch"),
]


def cumulative_seconds(profile: cProfile.Profile) -> Dict[str, float]:
    stats = pstats.Stats(profile).stats
    return {label: sum(row[3] for (file, _, name), row in stats.items() if file.endswith(where) and name == function)
            for label, where, function in PROFILED}  # fmt: skip


def profile(frames, args) -> None:
    """cProfile of T-PaiNN's steps at F=128 × 3, batch 2: the first epoch (graphs built) and the next (cached)."""
    torch.set_num_threads(args.threads[0])
    steps = args.steps
    trainer = TPaiNNTraining(frames[:2], 128, 3, 2, fused=args.fused)
    trainer.graphs = GraphDataset(frames[: 2 * steps], trainer.model.cutoff, cache=True)  # cold: no graph built yet
    columns = []
    for _ in ("first epoch", "later epoch"):
        profiler = cProfile.Profile()
        profiler.runcall(trainer.run, steps)
        columns.append(cumulative_seconds(profiler))
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads[0]} thread(s); "
          f"{'fused' if args.fused else 'eager'} message blocks, F=128 x 3, batch 2 x {len(frames[0])}-atom water, {steps} steps per epoch; cProfile cumulative time per "
          "step (s) and share of the epoch")
    print(f"{'':<42} {'first epoch (graphs built)':>27} {'later epoch (cached)':>27}")
    for label, *_ in PROFILED:
        cells = [f"{column[label] / steps:>18.4f} ({100 * column[label] / column[PROFILED[-1][0]]:>5.1f}%)" for column in columns]
        print(f"{label:<42} {cells[0]:>27} {cells[1]:>27}")


def model_size(text: str):
    features, layers = text.split("x")
    return int(features), int(layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=model_size, nargs="+", default=[(128, 3), (32, 2)], help="FEATURESxLAYERS")
    parser.add_argument("--batches", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per timing")
    parser.add_argument("--profile", action="store_true", help="profile T-PaiNN's steps instead (first --threads)")
    parser.add_argument("--fused", action="store_true", help="with --profile: the fused message blocks")
    args = parser.parse_args()
    frames = load_dataset("water-revpbe0-d3")
    profile(frames, args) if args.profile else benchmark(frames, args)


if __name__ == "__main__":
    main()
