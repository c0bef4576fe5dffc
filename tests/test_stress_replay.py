"""Stress labels in training, replay of pretraining frames, L2-SP and the EMA warm-up."""

import numpy as np
import pytest
import torch

from conftest import batch_of, tiny_config, water_box
from tpainn.data import H5Frames, write_frames
from tpainn.data.errors import DataError
from tpainn.data.graph import atoms_to_graph, model_inputs
from tpainn.data.labels import attach_labels
from tpainn.model import PaiNN
from tpainn.train import load_trained, train
from tpainn.train.checkpoint import model_file, save_atomic
from tpainn.train.evaluate import error_metrics, predict
from tpainn.train.replay import Replay
from tpainn.train.trainer import build_model, ema_average_fn, loss_terms, split_frames


PRESSURE = 2e-3  # eV/Å³ (3.2 kbar)


def teacher(seed=0):
    """A random float64 PaiNN standing in for a classical force field with a stress."""
    torch.manual_seed(seed)
    model = PaiNN(["H", "O"], cutoff=3.0, n_features=8, n_interactions=1, n_rbf=4, dtype="float64")
    torch.nn.init.normal_(model.readout[-1].weight, std=0.5)
    model.reference_energies.copy_(torch.tensor([-13.0, -430.0], dtype=torch.float64))
    return model.eval()


def labelled_by(model, frames, pressure=0.0):
    """Labels of the model plus a uniform external pressure term E = P V (eV/Å³), which adds −P to the
    stress diagonal and nothing to the forces: the part of the stress that the forces cannot teach."""
    batch = batch_of(frames, model.cutoff)
    out = model(*model_inputs(batch), compute_forces=True, compute_stress=True)
    first = np.cumsum([0] + [len(a) for a in frames])
    for k, atoms in enumerate(frames):
        forces = out["forces"][first[k] : first[k + 1]].detach().numpy()
        energy = float(out["energy"][k].detach()) + pressure * atoms.get_volume()
        attach_labels(atoms, energy, forces, out["stress"][k].detach().numpy() + pressure * np.eye(3))
    return frames


@pytest.fixture(scope="module")
def classical_file(tmp_path_factory):
    """Frames at three box sizes (so the stress varies) labelled by the teacher, in an HDF5 store."""
    frames = [water_box(4, length, seed=s) for s, length in enumerate([5.5, 6.0, 6.5] * 4)]
    path = tmp_path_factory.mktemp("classical") / "teacher.h5"
    write_frames(path, labelled_by(teacher(), frames, pressure=PRESSURE))
    return path


def test_stress_round_trips_through_hdf5_in_ase_convention(classical_file):
    frames = H5Frames(classical_file)
    assert frames.has_stress
    reference = labelled_by(teacher(), [water_box(4, 5.5, seed=0)], pressure=PRESSURE)[0]
    # Stored as written (the reference was evaluated alone, not in a batch of 12: round-off only).
    np.testing.assert_allclose(frames[0].get_stress(voigt=False), reference.get_stress(voigt=False), rtol=1e-12, atol=1e-18)
    with pytest.raises(DataError, match="stress"):
        write_frames(classical_file.parent / "mixed.h5", [frames[0], attach_labels(water_box(4, 6.0), 0.0, np.zeros((12, 3)))])
    with pytest.raises(DataError, match="stress has shape"):
        attach_labels(water_box(1, 5.0), 0.0, None, np.zeros(4))
    with pytest.raises(DataError, match="not finite"):
        attach_labels(water_box(1, 5.0), 0.0, None, np.full(6, np.nan))


def stress_fit_config(tmp_path, name, stress_weight, classical_file):
    config, _ = tiny_config(tmp_path, name, 40)
    config["data"].update(dataset=str(classical_file), test=None)
    config["split"] = {"n_train": 10, "n_val": 2, "seed": 0}
    config["loss"]["stress_weight"] = stress_weight
    config["ema_decay"] = 0.0
    config["schedule"]["kind"] = "cosine"  # tiny_config's plateau (patience 1) would stall the fit
    return config


def final_model(run_dir):
    """The weights after the last epoch (model.pt holds the best epoch's, chosen on two frames: noisy)."""
    model = load_trained(run_dir / "model.pt")
    model.load_state_dict(torch.load(run_dir / "checkpoint.pt", weights_only=False)["model"])
    return model


def test_stress_loss_lowers_the_stress_error(tmp_path, classical_file):
    errors = {}
    for weight in (0.0, 1.0e5):
        config = stress_fit_config(tmp_path, f"w{weight:g}", weight, classical_file)
        train(config)
        frames = H5Frames(classical_file)[:10]
        errors[weight] = error_metrics(predict(final_model(tmp_path / f"w{weight:g}"), frames))["stress_mae"]
    assert errors[1.0e5] < 0.7 * errors[0.0], errors  # measured: 0.56 → 0.30 meV/Å³
    columns = (tmp_path / "w100000" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "val_stress_mae_meV_per_A3" in columns


def test_frames_without_stress_add_nothing_to_the_stress_term(classical_file):
    model = teacher(seed=1)
    with_stress = H5Frames(classical_file)[:2]
    without = [attach_labels(a.copy(), a.get_potential_energy(), a.get_forces()) for a in with_stress]
    weights = {"energy_weight": 0.0, "forces_weight": 0.0, "stress_weight": 1.0}
    batch = batch_of([with_stress[0], without[1]], model.cutoff)
    out = model(*model_inputs(batch), compute_forces=True, compute_stress=True)
    alone = batch_of([with_stress[0]], model.cutoff)
    out_alone = model(*model_inputs(alone), compute_forces=True, compute_stress=True)
    assert batch["stress_mask"].tolist() == [True, False]
    expected = float(loss_terms(out_alone, alone, weights).detach())
    assert float(loss_terms(out, batch, weights).detach()) == pytest.approx(expected, rel=1e-12)


def pretrained_on(tmp_path, classical_file):
    config = stress_fit_config(tmp_path, "pretrained", 1.0e3, classical_file)
    config["epochs"] = 2
    config["model"]["n_interactions"] = 1
    train(config)
    return tmp_path / "pretrained" / "model.pt"


def autotune_config(tmp_path, pretrained, name, **autotune):
    config, _ = tiny_config(tmp_path, name, 2)
    config["model"]["n_interactions"] = 1
    config["autotune"]["replay"].update(autotune.pop("replay", {}))
    config["autotune"].update({"from": str(pretrained), **autotune})
    return config


def test_replay_batches_hold_both_kinds_of_frame_with_their_own_energy_zero(tmp_path, classical_file):
    pretrained = pretrained_on(tmp_path, classical_file)
    config = autotune_config(tmp_path, pretrained, "replay", replay={"data": "pretraining", "n_frames": 5, "per_batch": 3, "weight": 0.5})
    train_frames, _, _ = split_frames(config)
    model = build_model(config, train_frames, ["H", "O"])
    replay = Replay(config, model, str(classical_file))
    assert len(replay.graphs) == 5 and replay.source == str(classical_file)
    dft_graphs = [[atoms_to_graph(train_frames[0], model.cutoff), atoms_to_graph(train_frames[1], model.cutoff)]]
    (batch,) = list(replay.batches(dft_graphs, torch.Generator().manual_seed(0)))
    assert len(batch["n_atoms"]) == 5
    assert batch["weight"].tolist() == [1.0, 1.0, 0.5, 0.5, 0.5]
    assert batch["stress_mask"].tolist() == [False, False, True, True, True]
    # With the replayed frames' offsets, the model predicts the classical energies as the pretrained model does.
    pretrained_model = load_trained(pretrained)
    out = model(*model_inputs(batch), compute_forces=False)
    out_pretrained = pretrained_model(*model_inputs(batch), compute_forces=False)
    assert batch["energy_offset"][:2].tolist() == [0.0, 0.0]
    assert abs(float(batch["energy_offset"][2])) > 1.0  # classical and DFT zeros differ
    np.testing.assert_allclose((out["energy"] + batch["energy_offset"])[2:].detach(), out_pretrained["energy"][2:].detach(), rtol=1e-10)
    # Replay runs end to end and records its source.
    train(config)
    assert load_trained(tmp_path / "replay" / "model.pt").provenance["replay"] == str(classical_file)


def test_replay_forces_weight_scales_only_the_replayed_frames_force_term(tmp_path, classical_file):
    pretrained = pretrained_on(tmp_path, classical_file)
    settings = {"data": "pretraining", "n_frames": 4, "per_batch": 2, "weight": 0.5, "forces_weight": 0.25}
    config = autotune_config(tmp_path, pretrained, "forces-weight", replay=settings)
    train_frames, _, _ = split_frames(config)
    model = build_model(config, train_frames, ["H", "O"])
    replay = Replay(config, model, str(classical_file))
    (batch,) = list(replay.batches([[atoms_to_graph(train_frames[0], model.cutoff)]], torch.Generator().manual_seed(0)))
    assert batch["forces_weight"].tolist() == [1.0, 0.25, 0.25]
    out = model(*model_inputs(batch), compute_forces=True, compute_stress=True)
    per_atom = ((out["forces"] - batch["forces"]) ** 2).mean(dim=1).detach()
    frame_factor = torch.tensor([1.0, 0.5 * 0.25, 0.5 * 0.25], dtype=torch.float64)[batch["batch"]]
    forces_only = {"energy_weight": 0.0, "forces_weight": 1.0, "stress_weight": 0.0}
    expected = float(torch.sum(frame_factor * per_atom)) / len(batch["numbers"])
    assert float(loss_terms(out, batch, forces_only).detach()) == pytest.approx(expected, rel=1e-12)
    # The energy and stress terms keep `weight` alone.
    others = {"energy_weight": 1.0, "forces_weight": 0.0, "stress_weight": 1.0}
    unscaled = {**batch, "forces_weight": torch.ones(3, dtype=torch.float64)}
    assert float(loss_terms(out, batch, others).detach()) == pytest.approx(float(loss_terms(out, unscaled, others).detach()), rel=1e-12)


def test_a_separate_replay_head_scores_the_replayed_frames_alone(tmp_path, classical_file):
    pretrained = pretrained_on(tmp_path, classical_file)
    replay_settings = {"data": "pretraining", "n_frames": 4, "per_batch": 2, "weight": 1.0, "head": "separate"}
    config = autotune_config(tmp_path, pretrained, "heads", replay=replay_settings)
    train_frames, _, _ = split_frames(config)
    model = build_model(config, train_frames, ["H", "O"])
    assert len(model.heads) == 1
    replay = Replay(config, model, str(classical_file))
    dft_graphs = [[atoms_to_graph(train_frames[0], model.cutoff)]]
    (batch,) = list(replay.batches(dft_graphs, torch.Generator().manual_seed(0)))
    assert batch["head"].tolist() == [0, 1, 1]
    before = model(*model_inputs(batch), compute_forces=False, heads=batch["head"])["energy"].detach()
    shared = model(*model_inputs(batch), compute_forces=False)["energy"].detach()
    np.testing.assert_allclose(before, shared, rtol=1e-12)  # the new head starts as the pretrained readout
    with torch.no_grad():
        model.heads[0][-1].bias += 0.01  # eV per atom before the energy scale
    after = model(*model_inputs(batch), compute_forces=False, heads=batch["head"])["energy"].detach()
    shift = 0.01 * float(model.energy_scale) * batch["n_atoms"].to(torch.float64)
    np.testing.assert_allclose((after - before)[1:], shift[1:], rtol=1e-6)
    assert float(after[0]) == float(before[0])  # the DFT frame keeps the model's readout
    train(config)
    trained = torch.load(tmp_path / "heads" / "model.pt", weights_only=True)
    assert not any(key.startswith("heads.") for key in trained["state_dict"])  # the potential is the DFT head
    load_trained(tmp_path / "heads" / "model.pt")
    checkpoint = torch.load(tmp_path / "heads" / "checkpoint.pt", weights_only=True)
    assert any(key.startswith("heads.") for key in checkpoint["model"])  # a resumed run keeps training it


def test_replay_refuses_the_energy_scale_refit(tmp_path, pretrained_model):
    config = autotune_config(tmp_path, pretrained_model, "bad", refit_scale=True, replay={"data": "pretraining", "n_frames": 5, "per_batch": 1, "weight": 1.0})
    with pytest.raises(ValueError, match="refit_scale and autotune.replay exclude each other"):
        train(config)


def test_l2sp_keeps_the_weights_closer_to_the_pretrained_ones(tmp_path, pretrained_model):
    distances = {}
    for strength in (0.0, 10.0):
        config = autotune_config(tmp_path, pretrained_model, f"l2sp{strength:g}", l2sp=strength)
        config["model"]["n_interactions"] = 2
        train(config)
        tuned = torch.load(tmp_path / f"l2sp{strength:g}" / "checkpoint.pt", weights_only=False)["model"]
        start = load_trained(pretrained_model).state_dict()
        distances[strength] = sum(float(((tuned[k] - start[k]) ** 2).sum()) for k in start if k.startswith(("representation", "readout")))
    assert distances[10.0] < 0.5 * distances[0.0], distances


def test_ema_warm_up_forgets_the_initial_weights():
    update = ema_average_fn(0.99)
    averaged, current = [torch.zeros(3)], [torch.ones(3)]
    for n in range(50):
        update(averaged, current, torch.tensor(n))
    # A fixed 0.99 would still hold 0.99^50 = 61 % of the initial zeros; the warm-up holds < 1 %.
    assert float(averaged[0][0]) > 0.99
    integers = [torch.arange(3)]
    update(integers, [torch.arange(3)], torch.tensor(0))
    assert integers[0].tolist() == [0, 1, 2]


def test_replay_of_pretraining_frames_that_are_gone_is_a_clear_error(tmp_path, pretrained_model):
    pretrained = load_trained(pretrained_model)
    moved = tmp_path / "moved.pt"
    save_atomic(model_file(pretrained, {**pretrained.provenance, "datasets": [str(tmp_path / "gone.h5")]}), moved)
    config = autotune_config(tmp_path, moved, "gone", replay={"data": "pretraining", "n_frames": 5, "per_batch": 1, "weight": 1.0})
    config["model"]["n_interactions"] = 2
    with pytest.raises(ValueError, match=r"replay.data=pretraining: .*gone.h5 are not here\); give a frame source"):
        train(config)


def test_replay_with_d3_subtracts_it_from_the_replayed_frames(tmp_path, classical_file, monkeypatch):
    """A D3 model learns labels minus D3 and gets D3 back at run time: so do the replayed classical frames, with the
    mean D3 energy of their composition kept in their energy offset (network + D3 then keeps the classical EOS)."""
    from tpainn import dispersion

    monkeypatch.setenv("TPAINN_CACHE_DIR", str(tmp_path / "cache"))
    pretrained = pretrained_on(tmp_path, classical_file)
    settings = {"data": "pretraining", "n_frames": 4, "per_batch": 1}
    plain = autotune_config(tmp_path, pretrained, "plain", replay=settings)
    with_d3 = autotune_config(tmp_path, pretrained, "d3", replay=settings)
    with_d3["model"]["dispersion"] = "d3(zero):revpbe0"
    train_frames, _, _ = split_frames(plain)
    model = build_model(plain, train_frames, ["H", "O"])
    replays = {name: Replay(config, model, str(classical_file)) for name, config in (("plain", plain), ("d3", with_d3))}
    d3 = dispersion.parse(with_d3["model"]["dispersion"])
    pool = H5Frames(classical_file)
    d3_energies = []
    for g_plain, g_d3 in zip(replays["plain"].graphs, replays["d3"].graphs):
        frame = next(a for a in pool if np.allclose(a.positions, g_plain["positions"].numpy()))
        energy, forces, _ = dispersion.compute(frame, d3)
        d3_energies.append(energy)
        assert float(g_d3["energy"]) == pytest.approx(float(g_plain["energy"]) - energy, rel=1e-12)
        np.testing.assert_allclose(g_d3["forces"].numpy(), g_plain["forces"].numpy() - forces, rtol=0, atol=1e-12)
    # Every frame has the same composition here: the offset moves by the pool's mean D3 energy.
    for g_plain, g_d3 in zip(replays["plain"].graphs, replays["d3"].graphs):
        assert float(g_d3["energy_offset"]) == pytest.approx(float(g_plain["energy_offset"]) - np.mean(d3_energies), rel=1e-10)
