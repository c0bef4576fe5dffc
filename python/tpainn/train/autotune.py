"""Autotuning: start from a pretrained (classical) model and adapt it to a small DFT set.

1. Load the pretrained model and check it fits the DFT data (species, and the config's model section).
2. Re-fit the per-element reference energies by least squares, with the network fixed: E_DFT ≈ C e + a · E_net,
   where C are element counts and E_net the pretrained network's energy without its references. Classical and
   DFT energy zeros differ by hundreds of eV per atom, so without this step the first gradient steps would be
   spent undoing an offset (and wrecking the features). The scale a stays 1 unless `autotune.refit_scale`
   (then a comes from the forces, F_DFT ≈ a F_net, when there are any): a network that is a poor fit of its
   classical data gets a ≪ 1 (regression dilution), which scales away its pretrained physics.
3. Optionally freeze the embedding and the first interaction layers; then train as usual, optionally with
   replay of pretraining frames (train/replay.py) and an L2-SP penalty toward the pretrained weights.
"""

import copy
import warnings
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from ase.data import chemical_symbols

from tpainn.dispersion import canonical as canonical_dispersion
from tpainn.model import PaiNN
from tpainn.model.potential import NETWORK_DTYPES
from tpainn.train.checkpoint import load_trained
from tpainn.train.evaluate import predict
from tpainn.train.reference_energies import composition_matrix, prior_references, solve_references

STRATEGIES = ("full", "freeze", "warmup")


def load_pretrained(config: Dict[str, Any], species: Sequence[str]) -> PaiNN:
    """The pretrained model, after checking that it knows every species of the run's frames and that
    its hyperparameters fit the config."""
    model = load_trained(config["autotune"]["from"])
    missing = sorted(set(species) - set(model.species), key=chemical_symbols.index)
    if missing:
        raise ValueError(
            f"the DFT frames ({config['data']['dataset']}, test: {config['data']['test']}) contain "
            f"{', '.join(missing)}, which the pretrained model {config['autotune']['from']} does not know "
            f"(its species: {', '.join(model.species)})"
        )
    for key, value in config["model"].items():
        pretrained = model.hyperparameters[key]
        # dtype, the repulsion (fitted to the data, not learned) and the dispersion (a term outside the network:
        # classical pretraining labels have no D3, DFT ones may) may change; the network may not.
        if key not in ("dtype", "repulsion", "dispersion") and value != pretrained:
            raise ValueError(
                f"config model.{key}={value} does not match the pretrained model's {key}={pretrained} "
                f"({config['autotune']['from']}); autotuning keeps the pretrained architecture"
            )
    if config["model"]["dtype"] != model.hyperparameters["dtype"]:
        model.hyperparameters["dtype"] = config["model"]["dtype"]
        dtype = NETWORK_DTYPES[config["model"]["dtype"]]
        model.representation.to(dtype)
        model.readout.to(dtype)
    model.hyperparameters["dispersion"] = canonical_dispersion(config["model"]["dispersion"])
    return model


def refit_reference_energies(
    model: PaiNN, frames: Sequence, prior: Optional[Mapping[str, float]] = None, refit_scale: bool = True
) -> Tuple[np.ndarray, float]:
    """Fit E ≈ C e + a E_net (minimum-norm least squares from the prior, as in reference_energies);
    sets and returns (e in eV, a); a = 1 unless refit_scale. The pretrained (classical) references are no
    prior: their zero is not the DFT one.

    With forces, a comes from F_DFT ≈ a F_net: hundreds of force components per frame pin the scale
    even for a handful of frames, where a joint energy fit of e and a would fit noise. Without forces
    (QM9) e and a are fitted jointly on the energies.
    """
    counts = composition_matrix(frames, model.species)
    prediction = predict(model, frames)
    network_energy = prediction["energy_pred"] - counts @ model.reference_energies.numpy()
    if not refit_scale:
        factor = 1.0
    elif "forces_ref" in prediction:
        f_net, f_ref = prediction["forces_pred"].ravel(), prediction["forces_ref"].ravel()
        factor = float(f_net @ f_ref / (f_net @ f_net))
    else:
        design = np.column_stack([counts, network_energy])
        factor = float(np.linalg.lstsq(design, prediction["energy_ref"], rcond=None)[0][-1])
    if not factor > 0:
        # The network anti-correlates with the DFT labels: keep its scale rather than flip it.
        warnings.warn(f"refitted energy scale factor {factor:.3g} is not positive; keeping the pretrained scale")
        factor = 1.0
    references = solve_references(counts, prediction["energy_ref"] - factor * network_energy,
                                  prior_references(counts, model.species, prior or {}))
    model.reference_energies.copy_(torch.as_tensor(references))
    model.energy_scale.mul_(factor)
    return references, factor


def freeze_early_layers(model: PaiNN, n_layers: int) -> None:
    """Freeze the element embedding and the first n_layers interaction layers with their radial filters
    (filters shared by all layers are frozen with the first layer)."""
    if not 0 <= n_layers <= model.n_interactions:
        raise ValueError(f"autotune.frozen_layers={n_layers} must be between 0 and {model.n_interactions}")
    representation = model.representation
    frozen = [representation.embedding] + list(representation.layers[:n_layers])
    frozen += list(representation.filter_nets[: n_layers if len(representation.filter_nets) > 1 else min(n_layers, 1)])
    for module in frozen:
        module.requires_grad_(False)


def prepare(config: Dict[str, Any], train_frames: Sequence, species: Sequence[str], prior: Mapping[str, float]) -> PaiNN:
    strategy = config["autotune"]["strategy"]
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown autotune.strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    if config["autotune"]["refit_scale"] and config["autotune"]["replay"]["data"]:
        raise ValueError("autotune.refit_scale and autotune.replay exclude each other: replayed frames are scored "
                         "with the pretrained energy scale, which the refit would change")  # fmt: skip
    model = load_pretrained(config, species)
    model.set_repulsion(config["model"]["repulsion"], train_frames)
    references, factor = refit_reference_energies(model, train_frames, prior, config["autotune"]["refit_scale"])
    refs = ", ".join(f"{s} {e:.4f}" for s, e in zip(model.species, references))
    print(f"autotune: refitted reference energies (eV) {refs}; energy scale × {factor:.4f}")
    if strategy == "freeze":
        freeze_early_layers(model, config["autotune"]["frozen_layers"])
    if config["autotune"]["replay"]["data"] and config["autotune"]["replay"]["head"] == "separate":
        model.heads.append(copy.deepcopy(model.readout))  # the replayed frames' readout starts as the pretrained one
    return model


class LearningRateSchedule:
    """The learning rate epoch by epoch: the configured schedule (`scheduler_for(optimizer, schedule, epochs)`),
    preceded for autotune strategy "warmup" by autotune.warmup_epochs of a linear ramp to optimizer.lr ·
    autotune.lr_factor (epoch k of W at k/(W + 1) of it), so that the first steps on the new data do not wreck
    the pretrained features. Checkpoints hold the configured schedule's state (state_dict)."""

    def __init__(self, config: Dict[str, Any], optimizer: torch.optim.Optimizer, scheduler_for):
        warmup = bool(config["autotune"]["from"]) and config["autotune"]["strategy"] == "warmup"
        self.warmup_epochs = config["autotune"]["warmup_epochs"] if warmup else 0
        self.base_lr = config["optimizer"]["lr"] * (config["autotune"]["lr_factor"] if warmup else 1.0)
        self.optimizer = optimizer
        self.plateau = config["schedule"]["kind"] == "plateau"
        # Set before the scheduler is made: it takes the optimizer's learning rate as its starting point.
        self._set_lr(self.base_lr)
        self.scheduler = scheduler_for(optimizer, config["schedule"], config["epochs"] - self.warmup_epochs)

    def _set_lr(self, lr: float) -> None:
        self.optimizer.param_groups[0]["lr"] = lr

    def start_epoch(self, epoch: int) -> None:
        if epoch <= self.warmup_epochs:
            self._set_lr(self.base_lr * epoch / (self.warmup_epochs + 1))

    def end_epoch(self, epoch: int, val_loss: float) -> None:
        if epoch == self.warmup_epochs:
            self._set_lr(self.base_lr)
        elif epoch > self.warmup_epochs:
            self.scheduler.step(val_loss) if self.plateau else self.scheduler.step()

    def state_dict(self) -> Dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)
