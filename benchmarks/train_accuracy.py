"""Accuracy per optimizer step from scratch: `tpainn train` against SchNetPack 2.1.1's PaiNN of the same size,
on the same revPBE0-D3 water frames, the same number of optimizer steps and the same batch, side by side.

Usage: .venv-bench/bin/python benchmarks/train_accuracy.py [--n-frames 20] [--steps 160] [--seeds 0 1]
           [--model 128x3] [--tpainn key=value ...]
  (.venv-bench: benchmarks/schnetpack-env.sh; without schnetpack only the T-PaiNN column is printed.)

Frames: `--n-frames` of the water-revpbe0-d3 pool, split n − 2 training + 2 validation by `tpainn train`'s
seeded split (split.seed = the run's seed), tested on the registry's standard test frames (90-110); both codes
get exactly these frames. Each code keeps the weights of its best validation epoch, as each does by default.
- T-PaiNN: `tpainn.train.trainer.train` with the package defaults and `--tpainn` overrides, epochs such that
  it takes at least `--steps` optimizer steps.
- SchNetPack: its recipe as measured in ../shared/notes/anchors.md (schnetpack.train defaults): AdamW (lr 1e-3,
  torch's weight decay 0.01), MSE loss with weights 0.01 on the total energy (eV²) and 0.99 on force components
  ((eV/Å)²), energies offset by the training frames' mean energy per atom, constant learning rate, no EMA,
  the same number of steps over the same batches (reshuffled every epoch by the seed).
The table: test energy MAE per atom (meV/atom, after each code's own offset) and force MAE (meV/Å) per seed, their
mean, and the ratio SchNetPack / T-PaiNN (> 1: T-PaiNN is more accurate).
"""

import argparse
import math
import platform
import tempfile

import numpy as np
import torch

from engine_speed import schnetpack_inputs, schnetpack_potential, spk
from tpainn.train import load_config
from tpainn.train.trainer import split_frames, train


def tpainn_config(args, seed: int, output_dir: str):
    features, layers = args.model
    steps_per_epoch = math.ceil((args.n_frames - 2) / 2)
    overrides = [f"model.n_features={features}", f"model.n_interactions={layers}", f"split.n_train={args.n_frames - 2}",
                 "split.n_val=2", f"split.seed={seed}", f"seed={seed}", "optimizer.batch_size=2",
                 f"epochs={math.ceil(args.steps / steps_per_epoch)}", "early_stopping_patience=1000",
                 f"output_dir={output_dir}", *args.tpainn]  # fmt: skip
    return load_config(None, overrides)


def schnetpack_errors(model, frames, offset: float):
    """Energy per atom and force MAE (eV/atom, eV/Å) and the loss of SchNetPack's model on `frames`."""
    inputs = schnetpack_inputs(frames)
    out = model(inputs)
    n_atoms = inputs[spk.properties.n_atoms].to(torch.float64)
    energy = out["energy"].detach().double() + offset * n_atoms
    energy_error = (energy - inputs["energy_ref"].double()) / n_atoms
    force_error = (out["forces"].detach() - inputs["forces_ref"]).double()
    loss = 0.01 * float(torch.mean((energy_error * n_atoms) ** 2)) + 0.99 * float(torch.mean(force_error**2))
    return float(energy_error.abs().mean()), float(force_error.abs().mean()), loss


def train_schnetpack(args, seed: int, train_frames, val_frames, test_frames):
    features, layers = args.model
    torch.manual_seed(seed)
    model = schnetpack_potential(features, layers)
    offset = float(np.mean([a.get_potential_energy() / len(a) for a in train_frames]))  # eV/atom
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    best_loss, best_state, steps = math.inf, None, 0
    while steps < args.steps:
        order = torch.randperm(len(train_frames), generator=generator).tolist()
        model.train()
        for first in range(0, len(order) - 1, 2):
            inputs = schnetpack_inputs([train_frames[i] for i in order[first : first + 2]])
            out = model(inputs)
            energy_error = out["energy"] + offset * inputs[spk.properties.n_atoms] - inputs["energy_ref"]
            loss = 0.01 * torch.mean(energy_error**2) + 0.99 * torch.mean((out["forces"] - inputs["forces_ref"]) ** 2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
        val_energy, val_forces, val_loss = schnetpack_errors(model, val_frames, offset)
        print(f"schnetpack seed {seed}, step {steps}: validation E {1e3 * val_energy:.2f} meV/atom, F {1e3 * val_forces:.1f} meV/Å",
              flush=True)  # fmt: skip
        if val_loss < best_loss:
            best_loss, best_state = val_loss, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    energy_mae, force_mae, _ = schnetpack_errors(model, test_frames, offset)
    return energy_mae, force_mae


def model_size(text: str):
    features, layers = text.split("x")
    return int(features), int(layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-frames", type=int, default=20, help="training + 2 validation frames")
    parser.add_argument("--steps", type=int, default=160, help="optimizer steps (batches of 2) for each code")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--model", type=model_size, default=(128, 3), help="FEATURESxLAYERS")
    parser.add_argument("--tpainn", nargs="*", default=[], help="T-PaiNN config overrides, section.key=value")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as output_dir:
            config = tpainn_config(args, seed, output_dir)
            metrics = train(config)
        row = {"seed": seed, "tpainn": (metrics["energy_per_atom_mae"], metrics["forces_mae"])}
        if spk:
            train_frames, val_frames, test_frames = split_frames(config)
            row["schnetpack"] = train_schnetpack(args, seed, list(train_frames), list(val_frames), list(test_frames))
        rows.append(row)
        print(row, flush=True)
    if not spk:
        print("schnetpack not installed: run benchmarks/schnetpack-env.sh; column omitted")
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
          f"F x L = {args.model[0]} x {args.model[1]}, {args.n_frames - 2} + 2 frames, {args.steps} steps of batch 2; "
          f"T-PaiNN overrides: {' '.join(args.tpainn) or 'none'}")
    print("| seed | T-PaiNN E (meV/atom) | T-PaiNN F (meV/Å) | SchNetPack E | SchNetPack F | F ratio SchNetPack / T-PaiNN |")
    print("|---|---|---|---|---|---|")
    for row in rows + [{"seed": "mean", **{code: tuple(np.mean([r[code] for r in rows], axis=0)) for code in rows[0] if code != "seed"}}]:
        spk_cells = (f"{1e3 * row['schnetpack'][0]:.2f} | {1e3 * row['schnetpack'][1]:.1f} | "
                     f"{row['schnetpack'][1] / row['tpainn'][1]:.2f}×") if "schnetpack" in row else "— | — | —"  # fmt: skip
        print(f"| {row['seed']} | {1e3 * row['tpainn'][0]:.2f} | {1e3 * row['tpainn'][1]:.1f} | {spk_cells} |")


if __name__ == "__main__":
    main()
