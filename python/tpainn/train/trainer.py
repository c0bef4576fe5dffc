"""The training loop: seeded split, reference-energy fit, AdamW + schedule + EMA, early stopping,
per-epoch metrics CSV and atomic checkpoints from which a killed run resumes exactly; when autotuning,
optional replay of pretraining frames and an L2-SP penalty toward the pretrained weights."""

import copy
import csv
import json
import math
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import yaml
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from tpainn.data import atom_energies, load_frames
from tpainn.data.sources import label_keys, pool_and_test, sources_of
from tpainn.dispersion import without_dispersion
from tpainn.data.graph import Graph, GraphDataset, collate, model_inputs, elements_in
from tpainn.model import PaiNN
from tpainn.model.fused import fuse_messages
from tpainn.train import autotune
from tpainn.train.config import DEFAULTS
from tpainn.train.distributed import SINGLE_PROCESS, Distributed
from tpainn.train.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, load_trained, model_file, save_atomic
from tpainn.train.evaluate import error_metrics, format_metrics, parity_plot, predict
from tpainn.train.guards import check_loss
from tpainn.train.reference_energies import fit_energy_scale, fit_reference_energies
from tpainn.train.replay import Replay, replay_source

METRIC_COLUMNS = ["epoch", "lr", "train_loss", "val_loss", "val_energy_mae_meV_per_atom", "val_forces_mae_meV_per_A",
                  "val_stress_mae_meV_per_A3", "seconds"]  # fmt: skip


def split_frames(config: Dict[str, Any]) -> Tuple[Sequence, Sequence, Optional[Sequence]]:
    """Train, validation and test frames. The test set is fixed by `data.test` (the registry's standard split, a
    seeded fraction of the pool, or a separate frame source; tpainn.data.sources); train and validation are drawn
    from the rest of the pool by a seeded permutation."""
    data, split = config["data"], config["split"]
    dataset = data["dataset"]
    # With model.dispersion, the labels are DFT minus D3 (cached per frame); D3 is added back at run time.
    frames = without_dispersion(load_frames(dataset, data.get("format"), **label_keys(data)), config["model"]["dispersion"], dataset)
    pool, test_frames = pool_and_test(data, frames)
    if isinstance(data["test"], str) and data["test"] != "standard":  # a test set of its own
        test_frames = without_dispersion(test_frames, config["model"]["dispersion"], data["test"])
    n_train, n_val = split["n_train"], split["n_val"]
    if n_train < 1 or n_val < 1 or n_train + n_val > len(pool):
        raise ValueError(
            f"split n_train={n_train}, n_val={n_val} does not fit the {len(pool)} frames of {dataset} available for training"
        )
    order = np.random.default_rng(split["seed"]).permutation(pool)
    return Subset(frames, order[:n_train].tolist()), Subset(frames, order[n_train : n_train + n_val].tolist()), test_frames


def build_model(config: Dict[str, Any], train_frames: Sequence, species: Sequence[str]) -> PaiNN:
    """A PaiNN for `species` (those of every split, so a test molecule with an element the training
    subset lacks is still predicted), with reference energies and scale fitted to the training frames,
    or the pretrained model prepared for autotuning."""
    prior = atom_energies(config["data"]["dataset"])
    if config["autotune"]["from"]:
        return autotune.prepare(config, train_frames, species, prior)
    model = PaiNN(species, **config["model"])
    model.set_repulsion(config["model"]["repulsion"], train_frames)
    references = fit_reference_energies(train_frames, species, prior)
    model.reference_energies.copy_(torch.as_tensor(references))
    model.energy_scale.fill_(fit_energy_scale(train_frames, species, references))
    return model


def batch_counts(batch: Graph) -> torch.Tensor:
    """Frames, atoms and frames with stress in a batch: the denominators of its loss terms."""
    stress_frames = batch["stress_mask"].sum() if "stress_mask" in batch else 0
    return torch.tensor([len(batch["n_atoms"]), int(batch["n_atoms"].sum()), int(stress_frames)], dtype=torch.float64)


def loss_terms(out: Dict[str, torch.Tensor], batch: Graph, weights: Dict[str, float], counts: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Weighted MSE of the energy per atom (eV/atom)², of force components (eV/Å)² and of stress components
    (eV/Å³)² over the frames with stress; each frame's terms are scaled by its `weight` (replay), its force term
    also by its `forces_weight`, and its predicted energy shifted by its `energy_offset` (its own energy zero).
    With `counts` (batch_counts of a larger batch this one is part of: distributed training) the sums are divided
    by those: this part's share."""
    n_frames, n_atoms, n_stress_frames = batch_counts(batch) if counts is None else counts
    n_graphs = len(batch["n_atoms"])
    frame_weight = batch.get("weight", torch.ones(n_graphs, dtype=torch.float64))
    energy = out["energy"] + batch.get("energy_offset", torch.zeros(n_graphs, dtype=torch.float64))
    energy_error = (energy - batch["energy"]) / batch["n_atoms"]
    loss = weights["energy_weight"] * torch.sum(frame_weight * energy_error**2) / n_frames
    if "forces" in batch:
        squared = ((out["forces"] - batch["forces"]) ** 2).mean(dim=1)
        forces_weight = frame_weight * batch.get("forces_weight", torch.ones(n_graphs, dtype=torch.float64))
        loss = loss + weights["forces_weight"] * torch.sum(forces_weight[batch["batch"]] * squared) / n_atoms
    if "stress" in out:
        mask = batch["stress_mask"].to(torch.float64) * frame_weight
        squared = ((out["stress"] - batch["stress"]) ** 2).mean(dim=(1, 2))
        loss = loss + weights["stress_weight"] * torch.sum(mask * squared) / n_stress_frames
    return loss


def uses_stress(batch: Graph, weights: Dict[str, float]) -> bool:
    return "stress" in batch and weights["stress_weight"] > 0


def ema_average_fn(decay: float):
    """EMA update with the usual warm-up: the decay is min(decay, (1 + n) / (10 + n)) after n updates, so the
    average forgets the initial weights within tens of steps instead of holding (decay)^n of them."""

    @torch.no_grad()
    def update(averaged: List[torch.Tensor], current: List[torch.Tensor], n_averaged: torch.Tensor) -> None:
        n = float(n_averaged)
        weight = 1.0 - min(decay, (1.0 + n) / (10.0 + n))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, weight)
        else:  # integer buffers (species tables) are constants: nothing to average
            torch._foreach_copy_(averaged, current)

    return update


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: Dict[str, Any], epochs: int):
    if schedule["kind"] == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=schedule["factor"], patience=schedule["patience"], min_lr=schedule["min_lr"]
        )
    if schedule["kind"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=schedule["min_lr"])
    raise ValueError(f"unknown schedule kind {schedule['kind']!r}: expected 'plateau' or 'cosine'")


def train_epoch(model, ema, optimizer, batches, config, anchor: Optional[List[torch.Tensor]] = None,
                dist: Distributed = SINGLE_PROCESS) -> float:
    """One pass over the batches; `anchor` (the pretrained weights of the trainable parameters) adds the
    L2-SP penalty autotune.l2sp · Σ (θ − θ_pretrained)². In distributed training `model` is the DDP wrapper and
    the batches are this process's parts of the global batches (train/distributed.py)."""
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    total, count = 0.0, 0.0
    for batch in batches:
        counts = dist.all_sum(batch_counts(batch))  # of the global batch
        out = model(*model_inputs(batch), compute_forces="forces" in batch, compute_stress=uses_stress(batch, config["loss"]),
                    heads=batch.get("head"))  # fmt: skip
        # This process's share of the global batch's loss: the shares add up to it.
        loss = loss_terms(out, batch, config["loss"], counts)
        if anchor is not None:
            penalty = sum(torch.sum((p - p0) ** 2) for p, p0 in zip(trainable, anchor))
            loss = loss + config["autotune"]["l2sp"] * penalty / dist.world_size
        check_loss(loss, batch, optimizer, config)  # a non-finite loss stops the run, naming the step and frames
        optimizer.zero_grad(set_to_none=True)
        (loss * dist.world_size).backward()  # DDP averages the gradients over the processes
        torch.nn.utils.clip_grad_norm_(model.parameters(), config["optimizer"]["grad_clip"])
        optimizer.step()
        ema.update_parameters(model)
        total += float(loss.detach()) * float(counts[0])
        count += float(counts[0])
    return float(dist.all_sum(torch.tensor(total, dtype=torch.float64))) / count


def validate(model: PaiNN, graphs: GraphDataset, config: Dict[str, Any], dist: Distributed = SINGLE_PROCESS) -> Dict[str, float]:
    """Metrics and loss of the validation graphs (this process's shard of them), gathered over the processes."""
    prediction = dist.gathered(predict(model, graphs, config["optimizer"]["batch_size"]))
    metrics = error_metrics(prediction)
    de = (prediction["energy_pred"] - prediction["energy_ref"]) / prediction["n_atoms"]
    loss = config["loss"]["energy_weight"] * float(np.mean(de**2))
    if "forces_ref" in prediction:
        loss += config["loss"]["forces_weight"] * metrics["forces_rmse"] ** 2
    if "stress_mae" in metrics:
        loss += config["loss"]["stress_weight"] * metrics["stress_rmse"] ** 2
    metrics["loss"] = loss
    return metrics


class _Run:
    """Mutable training state; everything in it goes into the checkpoint."""

    def __init__(self, config, model, ema, optimizer, scheduler):
        self.config, self.model, self.ema, self.optimizer, self.scheduler = config, model, ema, optimizer, scheduler
        self.epoch = 0
        self.best_loss = math.inf
        self.best_epoch = 0
        self.stale_epochs = 0
        self.best_model: Dict[str, Any] = model_file(ema.module, {})

    def state(self) -> Dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "stale_epochs": self.stale_epochs,
            "best_model": self.best_model,
        }

    def restore(self, checkpoint: Dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.ema.load_state_dict(checkpoint["ema"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        for key in ("epoch", "best_loss", "best_epoch", "stale_epochs", "best_model"):
            setattr(self, key, checkpoint[key])


def _with_defaults(config: Dict[str, Any], defaults: Dict[str, Any]) -> Dict[str, Any]:
    """`config` with the keys it lacks taken from `defaults`, section by section."""
    merged = {**defaults, **config}
    return {k: _with_defaults(v, defaults[k]) if isinstance(v, dict) and isinstance(defaults.get(k), dict) else v
            for k, v in merged.items()}  # fmt: skip


def _check_same_run(saved: Dict[str, Any], config: Dict[str, Any]) -> None:
    """Resuming may extend the epochs, but not change what is trained on what."""
    # A checkpoint written before a key was added to the defaults (data.test_seed, autotune.replay.head, ...) has
    # that key's default.
    saved, config = _with_defaults(saved, DEFAULTS), _with_defaults(config, DEFAULTS)
    for key in ("model", "data", "split", "loss", "optimizer", "autotune", "seed"):
        if saved[key] != config[key]:
            raise ValueError(f"cannot resume: config '{key}' differs from the checkpoint's ({saved[key]} vs {config[key]})")


def _provenance(config: Dict[str, Any], replay: Optional[str]) -> Dict[str, Any]:
    provenance = {"datasets": [str(config["data"]["dataset"])], "sources": sources_of(config["data"]), "split": config["split"]}
    pretrained = config["autotune"]["from"]
    if not pretrained:
        return {**provenance, "mode": "from-scratch"}
    pretrained_provenance = load_trained(pretrained).provenance
    return {**provenance, "mode": "autotuned", "strategy": config["autotune"]["strategy"], "replay": replay,
            "pretrained": {"file": str(pretrained), **pretrained_provenance}}  # fmt: skip


def _write_metrics_row(path: Path, row: Dict[str, Any], keep_epochs: int) -> None:
    """Append one epoch; rows after `keep_epochs` (from a killed run past its last checkpoint) are dropped."""
    rows: List[Dict[str, str]] = []
    if path.exists():
        with open(path) as f:
            rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= keep_epochs]
    rows.append({k: str(v) for k, v in row.items()})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def train(config: Dict[str, Any], resume: bool = False) -> Dict[str, Any]:
    """Train a model as configured; returns the test metrics (or validation metrics without a test set). Under
    torchrun, each process trains on its part of every batch (train/distributed.py)."""
    dist = Distributed.from_env()
    out_dir = Path(config["output_dir"])
    checkpoint_path = out_dir / "checkpoint.pt"
    if checkpoint_path.exists() and not resume:
        raise FileExistsError(f"{checkpoint_path} exists: pass --resume to continue that run, or choose another output_dir")
    dist.check_batches(config["split"]["n_train"], config["optimizer"]["batch_size"])
    if dist.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    if config["threads"]:
        torch.set_num_threads(int(config["threads"]))
    torch.manual_seed(config["seed"])

    train_frames, val_frames, test_frames = split_frames(config)
    species = elements_in([atoms for frames in (train_frames, val_frames, test_frames or []) for atoms in frames])
    model = build_model(config, train_frames, species)
    if config["fused_messages"]:
        fuse_messages(model)
    ema = AveragedModel(model, multi_avg_fn=ema_average_fn(config["ema_decay"]), use_buffers=True)
    opt = config["optimizer"]
    trainable = [p for p in model.parameters() if p.requires_grad]
    # The weights before any fine-tuning step: the pretrained ones (build_model is deterministic).
    anchor = [p.detach().clone() for p in trainable] if config["autotune"]["from"] and config["autotune"]["l2sp"] else None
    source = replay_source(config)
    replay = Replay(config, model, source) if source else None
    optimizer = torch.optim.AdamW(trainable, lr=opt["lr"], weight_decay=opt["weight_decay"])
    scheduler = autotune.LearningRateSchedule(config, optimizer, make_scheduler)
    run = _Run(config, model, ema, optimizer, scheduler)
    provenance = _provenance(config, source)
    if resume and checkpoint_path.exists():
        checkpoint = load_checkpoint(checkpoint_path)
        _check_same_run(checkpoint["config"], config)
        run.restore(checkpoint)
    if dist.is_main:
        with open(out_dir / "config.yaml", "w") as f:
            yaml.safe_dump(config, f, sort_keys=False)
    network = dist.wrap(model)

    # Graphs of in-memory frames are built once and cached; frames read lazily from HDF5 stay on disk.
    in_memory = isinstance(train_frames.dataset, list)
    train_set = GraphDataset(train_frames, model.cutoff, cache=in_memory)
    val_set = GraphDataset(dist.shard(val_frames), model.cutoff, cache=in_memory)
    progress = tqdm(total=config["epochs"], initial=run.epoch, desc="training", unit="epoch", disable=not dist.is_main)
    while run.epoch < config["epochs"] and run.stale_epochs < config["early_stopping_patience"]:
        run.epoch += 1
        started = time.perf_counter()
        # The shuffle depends on (seed, epoch) only, so a resumed run sees the same batches.
        generator = torch.Generator().manual_seed(config["seed"] * 1_000_003 + run.epoch)
        batch_sampler = dist.batch_sampler(train_set, opt["batch_size"], generator)
        if replay is None:
            batches = DataLoader(train_set, batch_sampler=batch_sampler, collate_fn=collate)
        else:
            batches = replay.batches(DataLoader(train_set, batch_sampler=batch_sampler, collate_fn=list), generator, dist.share)
        scheduler.start_epoch(run.epoch)
        train_loss = train_epoch(network, ema, optimizer, batches, config, anchor, dist)
        val = validate(ema.module, val_set, config, dist)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.end_epoch(run.epoch, val["loss"])
        if val["loss"] < run.best_loss:
            run.best_loss, run.best_epoch, run.stale_epochs = val["loss"], run.epoch, 0
            run.best_model = copy.deepcopy(model_file(ema.module, provenance))
            if dist.is_main:
                save_atomic(run.best_model, out_dir / "model.pt")
        else:
            run.stale_epochs += 1
        row = {
            "epoch": run.epoch, "lr": lr, "train_loss": train_loss, "val_loss": val["loss"],
            "val_energy_mae_meV_per_atom": 1e3 * val["energy_per_atom_mae"],
            "val_forces_mae_meV_per_A": 1e3 * val.get("forces_mae", math.nan),
            "val_stress_mae_meV_per_A3": 1e3 * val.get("stress_mae", math.nan),
            "seconds": time.perf_counter() - started,
        }  # fmt: skip
        if dist.is_main:
            _write_metrics_row(out_dir / "metrics.csv", row, run.epoch - 1)
            save_atomic(run.state(), checkpoint_path)
        progress.update(1)
        progress.set_postfix(E=f"{row['val_energy_mae_meV_per_atom']:.2f}meV/at", F=f"{row['val_forces_mae_meV_per_A']:.0f}meV/Å")
    progress.close()
    return finish(run, out_dir, test_frames if test_frames is not None else val_frames, dist)


def finish(run: _Run, out_dir: Path, eval_frames: Sequence, dist: Distributed = SINGLE_PROCESS) -> Dict[str, Any]:
    """Evaluate the best weights on the held-out frames; write metrics JSON and parity plots (process 0)."""
    best = PaiNN.from_hyperparameters(run.best_model["hyperparameters"])
    best.load_state_dict(run.best_model["state_dict"])
    prediction = dist.gathered(predict(best, dist.shard(eval_frames), run.config["optimizer"]["batch_size"]))
    metrics = error_metrics(prediction)
    metrics.update(best_epoch=run.best_epoch, epochs=run.epoch)
    if not dist.is_main:
        return metrics
    with open(out_dir / "test_metrics.json", "w") as f:
        json.dump({**metrics, "data": sources_of(run.config["data"])}, f, indent=2)
    parity_plot(prediction, out_dir / "parity.png", title=f"held-out frames ({metrics['n_frames']})")
    print(f"held-out errors (best epoch {run.best_epoch} of {run.epoch}):\n{format_metrics(metrics)}")
    print(f"model: {out_dir / 'model.pt'}\nmetrics: {out_dir / 'metrics.csv'}, {out_dir / 'test_metrics.json'}\nparity plot: {out_dir / 'parity.png'}")
    return metrics
