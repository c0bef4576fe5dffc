"""Autotuning: reference-energy refit, frozen layers, the CLI, and bad inputs."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from conftest import batch_of, tiny_config, water_box
from tpainn.cli import main as cli
from tpainn.data.graph import model_inputs
from tpainn.model import PaiNN
from tpainn.train import load_trained, train
from tpainn.train import load_config
from tpainn.train.autotune import LearningRateSchedule, refit_reference_energies
from tpainn.train.trainer import make_scheduler
from tpainn.train.checkpoint import model_file, save_atomic


def random_model(species=("H", "O"), seed=0):
    torch.manual_seed(seed)
    model = PaiNN(list(species), cutoff=3.0, n_features=8, n_interactions=2, n_rbf=4, dtype="float64")
    torch.nn.init.normal_(model.readout[-1].weight, std=0.5)
    return model.eval()


@pytest.mark.parametrize("with_forces", [True, False])
def test_refit_recovers_known_shift_and_scale(with_forces):
    """Labels E = a·E_net + C·e (F = a·F_net) for frames of varying composition: the refit returns e and a."""
    model = random_model()
    frames = []
    for seed in range(6):
        atoms = water_box(3 + seed, 5.0, seed=seed)
        atoms += Atoms("H" * seed, positions=np.random.default_rng(seed).uniform(0, 5, (seed, 3)))
        frames.append(atoms)
    true_references, true_factor = np.array([-13.1, -2041.7]), 1.7
    for atoms in frames:
        out = model(*model_inputs(batch_of([atoms], 3.0)), compute_forces=True)
        counts = np.array([atoms.get_chemical_symbols().count(s) for s in ("H", "O")])
        energy = true_factor * out["energy"].item() + counts @ true_references
        forces = true_factor * out["forces"].detach().numpy() if with_forces else None
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    references, factor = refit_reference_energies(model, frames)
    np.testing.assert_allclose(references, true_references, rtol=0, atol=1e-8)
    assert factor == pytest.approx(true_factor, abs=1e-10)
    assert model.energy_scale.item() == pytest.approx(true_factor, abs=1e-10)


def test_refit_keeps_prior_of_element_absent_from_frames():
    """Species the DFT frames lack keep the dataset's free-atom energy, not the classical reference."""
    model = random_model(("H", "C", "O"))
    model.reference_energies.fill_(-5.0)  # pretrained (classical) references: no prior for DFT
    frames = [water_box(3 + seed, 5.0, seed=seed) for seed in range(3)]
    for atoms in frames:
        forces = 1.5 * model(*model_inputs(batch_of([atoms], 3.0)), compute_forces=True)["forces"].detach().numpy()
        atoms.calc = SinglePointCalculator(atoms, energy=-470.0 * len(atoms) / 3, forces=forces)
    references, factor = refit_reference_energies(model, frames, {"C": -1029.8})
    assert references[1] == -1029.8 and model.reference_energies[1].item() == -1029.8
    assert factor == pytest.approx(1.5) and np.isfinite(references).all()


def autotune_config(tmp_path, pretrained_model, name, **autotune):
    config, _ = tiny_config(tmp_path, name, 2)
    config["model"]["n_interactions"] = 2
    config["data"]["dataset"] = "water-deepmd"
    config["autotune"].update({"from": str(pretrained_model), **autotune})
    return config


def test_frozen_layers_stay_bit_identical(tmp_path, pretrained_model):
    train(autotune_config(tmp_path, pretrained_model, "frozen", strategy="freeze", frozen_layers=1))
    before, after = load_trained(pretrained_model).state_dict(), load_trained(tmp_path / "frozen" / "model.pt").state_dict()
    frozen = ("representation.embedding.", "representation.layers.0.", "representation.filter_nets.0.")
    n_frozen = 0
    for name, tensor in before.items():
        if name.startswith(frozen):
            assert torch.equal(after[name], tensor), f"frozen {name} changed"
            n_frozen += 1
    assert n_frozen == 1 + 9 + 2  # embedding; layer 0's message and update; its filters
    assert not torch.equal(after["representation.layers.1.update.uv.weight"], before["representation.layers.1.update.uv.weight"])
    assert not torch.equal(after["reference_energies"], before["reference_energies"])  # refitted


def test_autotune_command_records_provenance(tmp_path, pretrained_model):
    config = autotune_config(tmp_path, pretrained_model, "cli", strategy="warmup", warmup_epochs=1)
    overrides = [f"{section}.{k}={v}" for section in ("model", "split", "optimizer") for k, v in config[section].items()]
    overrides += ["autotune.strategy=warmup", "autotune.warmup_epochs=1", "epochs=2", f"output_dir={tmp_path / 'cli'}"]
    assert cli(["autotune", "--from", str(pretrained_model), "--data", "water-deepmd", *overrides]) == 0
    provenance = load_trained(tmp_path / "cli" / "model.pt").provenance
    assert provenance["mode"] == "autotuned" and provenance["strategy"] == "warmup"
    assert provenance["datasets"] == ["water-deepmd"] and provenance["pretrained"]["datasets"] == ["water-revpbe0-d3"]
    lrs = [float(row.split(",")[1]) for row in (tmp_path / "cli" / "metrics.csv").read_text().splitlines()[1:]]
    assert lrs[0] == pytest.approx(0.005 * 0.2 / 2)  # warm-up: half of the reduced learning rate in epoch 1


def test_bad_autotune_inputs(tmp_path, pretrained_model):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        train(autotune_config(tmp_path, tmp_path / "missing.pt", "a"))
    config = autotune_config(tmp_path, pretrained_model, "b")
    config["model"]["cutoff"] = 4.0
    with pytest.raises(ValueError, match=r"model.cutoff=4.0 does not match the pretrained model's cutoff=3.0"):
        train(config)
    carbon_model = tmp_path / "hc.pt"
    save_atomic(model_file(random_model(("H", "C")), {}), carbon_model)
    with pytest.raises(ValueError, match="contain O, which the pretrained model .* does not know"):
        train(autotune_config(tmp_path, carbon_model, "c"))
    with pytest.raises(ValueError, match="unknown autotune.strategy 'partial'"):
        train(autotune_config(tmp_path, pretrained_model, "d", strategy="partial"))


@pytest.mark.parametrize("strategy", ["warmup", "full"])
def test_learning_rate_schedule(strategy):
    """Strategy "warmup": epoch k of W at k/(W + 1) of lr · lr_factor, then lr · lr_factor and the configured
    schedule; otherwise the configured schedule from the first epoch at lr."""
    overrides = ["autotune.from=pretrained.pt", f"autotune.strategy={strategy}", "autotune.warmup_epochs=2",
                 "autotune.lr_factor=0.5", "optimizer.lr=0.01", "schedule.kind=cosine", "schedule.min_lr=0", "epochs=6"]  # fmt: skip
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = LearningRateSchedule(load_config(None, overrides), optimizer, make_scheduler)
    rates = []
    for epoch in range(1, 7):
        schedule.start_epoch(epoch)
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # (no gradients: changes nothing) the order torch's schedulers expect
        schedule.end_epoch(epoch, val_loss=1.0)
    if strategy == "warmup":
        cosine = [0.005 * (1 + np.cos(np.pi * k / 4)) / 2 for k in range(4)]  # over the 4 epochs after the warm-up
        np.testing.assert_allclose(rates, [0.005 / 3, 0.01 / 3, *cosine], rtol=1e-12)
    else:
        np.testing.assert_allclose(rates, [0.01 * (1 + np.cos(np.pi * k / 6)) / 2 for k in range(6)], rtol=1e-12)
