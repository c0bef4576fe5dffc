"""Training: reference energies, configs, and exact resumption of a killed run."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from conftest import tiny_config
from tpainn.cli import main as cli
from tpainn.data import atom_energies, load_dataset
from tpainn.train import fit_reference_energies, load_config, load_trained, train
from tpainn.train.checkpoint import load_checkpoint
from tpainn.train.reference_energies import fit_energy_scale


def labelled(symbols, energy, forces=None):
    atoms = Atoms(symbols)
    atoms.positions = np.random.default_rng(0).uniform(0, 3, (len(atoms), 3))
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    return atoms


def test_reference_energies_recovered_when_separable():
    true = {"H": -13.6, "C": -1030.0, "O": -2040.0}
    frames = [labelled(s, sum(true[x] for x in Atoms(s).get_chemical_symbols())) for s in ("CH4", "H2O", "CO2", "H2", "CH3OH")]
    fitted = fit_reference_energies(frames, ["H", "C", "O"])
    np.testing.assert_allclose(fitted, [true["H"], true["C"], true["O"]], rtol=0, atol=1e-9)


def test_reference_energies_minimum_norm_when_degenerate():
    """Every frame (H2O)64: only the energy per H2O is determined; the fit must still be finite."""
    per_water = np.array([-469.41, -469.37, -469.45])
    frames = [labelled("O64H128", 64 * e) for e in per_water]
    e_h, e_o = fit_reference_energies(frames, ["H", "O"])
    assert np.isfinite([e_h, e_o]).all()
    assert e_o + 2 * e_h == pytest.approx(per_water.mean(), abs=1e-9)  # least squares of the mean
    assert e_h == pytest.approx(2 * e_o, rel=1e-12)  # minimum norm: proportional to the counts (64, 128)


def test_element_absent_from_training_keeps_its_prior():
    """A small random QM9 subset may hold no fluorine: F keeps its free-atom energy, the others are fitted."""
    true = {"H": -13.6, "C": -1030.0, "N": -1480.0, "O": -2040.0}
    molecules = ("CH4", "H2O", "NH3", "CO2", "HCN", "CH3OH")
    frames = [labelled(s, sum(true[x] for x in Atoms(s).get_chemical_symbols())) for s in molecules]
    prior = atom_energies("qm9")
    fitted = fit_reference_energies(frames, ["H", "C", "N", "O", "F"], prior)
    np.testing.assert_allclose(fitted[:4], list(true.values()), rtol=0, atol=1e-9)
    assert fitted[4] == prior["F"] and prior["F"] == pytest.approx(-99.718730 * 27.211386, rel=1e-6)
    with pytest.warns(UserWarning, match=r"element\(s\) F occur in none of the 6 training frames"):
        assert fit_reference_energies(frames, ["H", "C", "N", "O", "F"])[4] == 0.0


def test_model_covers_elements_only_the_test_set_has(tmp_path, data_dir):
    """The model's species come from every split: a test frame with an element no training frame has is
    predicted (with a warning about its reference energy), not refused."""
    test_frames = load_dataset("water-revpbe0-d3")[-2:]
    for atoms in test_frames:
        atoms.numbers[1] = 9  # one H -> F
    write(tmp_path / "test.extxyz", test_frames)
    config, _ = tiny_config(tmp_path, "f", 1)
    config["data"]["test"] = str(tmp_path / "test.extxyz")
    with pytest.warns(UserWarning, match=r"element\(s\) F occur in none of the 4 training frames"):
        metrics = train(config)
    assert load_trained(tmp_path / "f" / "model.pt").species == ["H", "O", "F"]
    assert metrics["n_frames"] == 2 and np.isfinite(metrics["energy_per_atom_mae"])


def test_energy_scale_is_force_rms():
    forces = np.array([[0.3, -0.4, 0.0], [1.2, 0.0, -0.5]])
    scale = fit_energy_scale([labelled("OH", -1.0, forces)], ["H", "O"], np.zeros(2))
    assert scale == pytest.approx(np.sqrt(np.mean(forces**2)))


def test_config_overrides_and_unknown_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": {"n_features": 32}, "epochs": 3}))
    config = load_config(path, ["split.n_train=7", "schedule.kind=cosine"])
    assert config["model"]["n_features"] == 32 and config["model"]["cutoff"] == 5.0
    assert config["split"]["n_train"] == 7 and config["schedule"]["kind"] == "cosine" and config["epochs"] == 3
    with pytest.raises(ValueError, match="unknown config key 'model.n_feature'"):
        load_config(path, ["model.n_feature=3"])
    with pytest.raises(ValueError, match="section.key=value"):
        load_config(path, ["epochs"])


def test_killed_run_resumes_to_identical_weights(tmp_path, data_dir):
    epochs = 40
    config, overrides = tiny_config(tmp_path, "killed", epochs)
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "tpainn.cli", "train", str(config_file)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
    checkpoint = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    killed_at = load_checkpoint(checkpoint)["epoch"]
    assert 1 <= killed_at < epochs

    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    reference_config, _ = tiny_config(tmp_path, "uninterrupted", epochs)
    reference_metrics = train(reference_config)

    final, reference = load_checkpoint(checkpoint), load_checkpoint(tmp_path / "uninterrupted" / "checkpoint.pt")
    assert final["epoch"] == reference["epoch"] == epochs
    for key in ("model", "ema"):
        for name, tensor in reference[key].items():
            assert torch.equal(final[key][name], tensor), f"{key}.{name} differs after resume"
    assert final["optimizer"]["state"][0]["step"] == reference["optimizer"]["state"][0]["step"]
    rows = (tmp_path / "killed" / "metrics.csv").read_text().splitlines()
    assert len(rows) == epochs + 1 and rows[1].startswith("1,") and rows[-1].startswith(f"{epochs},")
    # The tiny model did learn something: held-out force error below the force RMS of the data.
    assert reference_metrics["forces_mae"] < 0.9 * load_trained(tmp_path / "uninterrupted" / "model.pt").energy_scale.item()


def test_train_refuses_to_overwrite_and_resume_with_other_config(tmp_path, data_dir):
    config, _ = tiny_config(tmp_path, "run", 1)
    train(config)
    with pytest.raises(FileExistsError, match="--resume"):
        train(config)
    config["model"]["n_features"] = 16
    with pytest.raises(ValueError, match="config 'model' differs"):
        train(config, resume=True)


def test_evaluate_command_writes_metrics_and_plot(tmp_path, data_dir, capsys):
    config, _ = tiny_config(tmp_path, "run", 2)
    train(config)
    out = tmp_path / "eval"
    assert cli(["evaluate", str(tmp_path / "run" / "model.pt"), "water-revpbe0-d3", "--subset", "test", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "energy per atom: MAE" in printed and "(21 frames)" in printed
    assert (out / "parity.png").stat().st_size > 10_000
    assert cli(["evaluate", str(tmp_path / "missing.pt"), "water-revpbe0-d3"]) == 1
    assert "no such file" in capsys.readouterr().err


def test_early_stopping_ends_a_run_that_stops_improving(tmp_path, data_dir):
    config, _ = tiny_config(tmp_path, "flat", 10)
    config["optimizer"]["lr"] = 0.0  # weights never change, so validation never improves after epoch 1
    config["early_stopping_patience"] = 2
    metrics = train(config)
    assert metrics["epochs"] == 3 and metrics["best_epoch"] == 1


def test_training_reads_an_hdf5_store(tmp_path, data_dir):
    store = tmp_path / "water.h5"
    assert cli(["data", "convert", "water-revpbe0-d3", str(store)]) == 0
    config, _ = tiny_config(tmp_path, "h5", 1)
    config["data"] = {"dataset": str(store), "test": None}
    metrics = train(config)
    assert metrics["n_frames"] == 2 and np.isfinite(metrics["forces_mae"])  # evaluated on the validation frames


def test_data_commands(capsys):
    assert cli(["data", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in ("water-revpbe0-d3", "water-deepmd", "qm9"))
    assert cli(["data", "info", "water-revpbe0-d3"]) == 0
    assert "8f5bded8fdd5b9e321b71f8da52a733df0e5d197326e053bdddb2be7012616fc" in capsys.readouterr().out
    assert cli(["data", "info", "water-pbe"]) == 1
    assert "water-revpbe0-d3" in capsys.readouterr().err  # the error lists the known names
