"""Training configuration: YAML file + `section.key=value` overrides on top of documented defaults."""

import copy
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from tpainn.train.config_check import check_config, load_yaml, parse_value

DEFAULTS: Dict[str, Any] = {
    "model": {
        "cutoff": 5.0,  # Å
        "n_features": 128,
        "n_interactions": 3,
        "n_rbf": 20,
        "rbf": "gaussian",
        "shared_filters": False,
        "dtype": "float32",  # the network's dtype; inputs/outputs are float64 regardless
        # "zbl": screened nuclear repulsion below each element pair's shortest distance in the training frames
        # (zero on them), so that MD cannot fall into the network's untrained short range; "none": network only.
        "repulsion": "zbl",
        # "none", or D3 to train without and add back at run time, e.g. "d3(zero):revpbe0" (tpainn/dispersion.py):
        # D3 is subtracted from every split's labels, and the exported model runs only with D3 added (ASE and LAMMPS).
        "dispersion": "none",
    },
    # Frame sources (tpainn/data/sources.py): a registry name, a file (extxyz, n2p2, ASE .db, HDF5) or a DeePMD folder.
    "data": {
        "dataset": "water-revpbe0-d3",  # the pool that training and validation frames are drawn from
        # "standard" (the registry's split of the pool), a fraction 0 < f < 1 of the pool (seeded by test_seed),
        # another frame source (a test file), or null (no test set: the validation frames are evaluated)
        "test": "standard",
        "test_seed": 0,
        "format": None,  # a file's format when its name does not tell (extxyz, n2p2, deepmd, h5, ase-db)
        # extended XYZ / ASE database label keys, when not energy / forces / stress (e.g. REF_energy, REF_forces)
        "energy_key": None,
        "forces_key": None,
        "stress_key": None,
    },
    "split": {"n_train": 80, "n_val": 10, "seed": 0},
    # Weights of the MSE of the energy per atom, (eV/atom)², of force components, (eV/Å)², and of stress components,
    # (eV/Å³)², over the frames that have stress (others add nothing). Energy-per-atom errors are ~50× smaller than
    # force errors in these units, hence the larger energy weight; a 1 kbar (6.2e-4 eV/Å³) stress error then
    # weighs as much as a ~20 meV/Å force error.
    "loss": {"energy_weight": 100.0, "forces_weight": 1.0, "stress_weight": 1000.0},
    "optimizer": {"lr": 5.0e-4, "weight_decay": 0.0, "batch_size": 2, "grad_clip": 10.0},
    "ema_decay": 0.99,  # exponential moving average of the weights used for validation and the final model
    "schedule": {"kind": "plateau", "factor": 0.5, "patience": 5, "min_lr": 1.0e-6},  # or kind: cosine
    "autotune": {
        "from": None,  # pretrained model file (model.pt); None trains from scratch
        "strategy": "full",  # full: train everything | freeze: fix embedding + early layers | warmup: low lr, warm-up
        "frozen_layers": 1,  # interaction layers frozen, with the embedding, by strategy "freeze"
        "lr_factor": 0.2,  # strategy "warmup": optimizer.lr is multiplied by this
        "warmup_epochs": 3,  # strategy "warmup": linear ramp of the learning rate over these epochs
        # Re-fit the global energy scale with the network fixed (forces: F_DFT ≈ a F_net) before fine-tuning;
        # false keeps the pretrained scale and re-fits only the per-element reference energies.
        "refit_scale": False,
        # L2-SP: strength (per (weight unit)², added to the loss) of the penalty Σ (θ − θ_pretrained)².
        "l2sp": 0.0,
        # Replay of pretraining frames in every fine-tuning batch (train/replay.py): `data` is a frame source
        # (registry name or file), "pretraining" (the pretrained model's own training data) or null (no replay).
        # `head`: "shared" scores replayed frames with the model's readout, "separate" with a readout of their own
        # (a copy of the pretrained one) on the shared features, as in MACE's multi-head fine-tuning.
        # `forces_weight` multiplies the replayed frames' force term (their energy and stress terms keep `weight`).
        "replay": {"data": None, "n_frames": 500, "per_batch": 2, "weight": 1.0, "forces_weight": 1.0, "head": "shared"},
    },
    "epochs": 100,
    "early_stopping_patience": 20,  # epochs without validation improvement
    "seed": 0,
    "threads": None,  # torch intra-op threads; None keeps torch's default
    # Train through the fused message operator (tpainn.model.fused.fuse_messages; CPU): the same model and weights,
    # 2-3x faster per step at F=128 x 3 (benchmarks/train_speed.py), equal to the eager path to round-off.
    # false: the eager PyTorch message block (the reference).
    "fused_messages": True,
    "output_dir": "runs/train",
}


def _merge(base: Dict[str, Any], update: Dict[str, Any], where: str = "") -> Dict[str, Any]:
    for key, value in update.items():
        if key not in base:
            raise ValueError(f"unknown config key '{where}{key}' (known: {', '.join(sorted(base))})")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ValueError(f"config key '{where}{key}' must be a mapping, got {value!r}")
            _merge(base[key], value, f"{where}{key}.")
        else:
            base[key] = value
    return base


def _override(dotted: str) -> Dict[str, Any]:
    """'split.n_train=20' → {'split': {'n_train': 20}}; the value is parsed as YAML."""
    if "=" not in dotted:
        raise ValueError(f"override {dotted!r} must look like section.key=value")
    path, value = dotted.split("=", 1)
    nested: Dict[str, Any] = {}
    node = nested
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = parse_value(value, f"override {dotted!r}")
    return nested


def load_config(path: Optional[Path] = None, overrides: Sequence[str] = (), base: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    config = copy.deepcopy(base if base is not None else DEFAULTS)
    if path is not None:
        _merge(config, load_yaml(path))
    for dotted in overrides:
        _merge(config, _override(dotted))
    # Every value against its default's type and config_check.RULES (ValueError naming the key).
    return check_config(config, base if base is not None else DEFAULTS)
