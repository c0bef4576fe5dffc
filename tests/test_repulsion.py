"""The short-range repulsion (model/repulsion.py): LAMMPS' own ZBL, onsets from the data, zero on the training frames."""

import numpy as np
import pytest
import torch

from conftest import tiny_config
from tpainn.classical.lammps_runtime import new_lammps
from helpers.models import evaluate
from tpainn.data import load_frames
from tpainn.model import PaiNN
from tpainn.model.repulsion import ShortRangeRepulsion
from tpainn.train import load_trained, train
from tpainn.train.trainer import split_frames


def pair_energy_and_force(repulsion, species, r):
    """Energy (eV) and force on the second atom along the pair axis (eV/Å) of a dimer at distance r (Å)."""
    vector = torch.tensor([[r, 0.0, 0.0], [-r, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    energy = repulsion(vector, torch.tensor(species), torch.tensor([0, 1]), torch.tensor([1, 0]), 2).sum()
    if not energy.requires_grad:  # no pair below its onset
        return float(energy), 0.0
    (gradient,) = torch.autograd.grad(energy, vector)
    # vector[0] = r_2 − r_1 and vector[1] = r_1 − r_2: the force on atom 2 is −∂E/∂r_2.
    return float(energy.detach()), float(-(gradient[0, 0] - gradient[1, 0]))


def lammps_zbl(z, r, inner, outer):
    """Energy and force on atom 2 of a dimer of charges z from LAMMPS `pair_style zbl inner outer`."""
    with new_lammps() as lmp:
        lmp.commands_list([
            "units metal", "atom_style atomic", "boundary f f f", "region box block -10 10 -10 10 -10 10",
            "create_box 2 box", "create_atoms 1 single 0 0 0", f"create_atoms 2 single {r} 0 0",
            "mass * 1.0", f"pair_style zbl {inner} {outer}", f"pair_coeff 1 1 {z[0]} {z[0]}",
            f"pair_coeff 1 2 {z[0]} {z[1]}", f"pair_coeff 2 2 {z[1]} {z[1]}", "run 0",
        ])  # fmt: skip
        return lmp.get_thermo("pe"), float(lmp.numpy.extract_atom("f")[1, 0])


@pytest.mark.parametrize("elements", [("O", "H"), ("H", "H"), ("O", "O")])
def test_zbl_matches_lammps(elements):
    """Below LAMMPS' inner radius its zbl is the bare ZBL plus a constant: equal forces, equal energy differences."""
    numbers = {"H": 1, "O": 8}
    species = ["O", "H"]
    repulsion = ShortRangeRepulsion([8, 1], "zbl")
    repulsion.onsets.fill_(3.0)  # switch = 1 below 2.5 Å
    index = [species.index(e) for e in elements]
    z = [numbers[e] for e in elements]
    ours = [pair_energy_and_force(repulsion, index, r) for r in (0.3, 0.6, 1.1, 1.7)]
    theirs = [lammps_zbl(z, r, 2.0, 2.4) for r in (0.3, 0.6, 1.1, 1.7)]
    for (_, f), (_, f_ref) in zip(ours, theirs):
        assert f == pytest.approx(f_ref, rel=1e-6)
    differences = np.diff([e for e, _ in ours])
    np.testing.assert_allclose(differences, np.diff([e for e, _ in theirs]), rtol=1e-6)
    assert all(f > 0 for _, f in ours)  # repulsive


def test_switch_is_smooth_and_ends_at_the_onset():
    repulsion = ShortRangeRepulsion([8, 1], "zbl")
    repulsion.onsets.fill_(1.0)
    energies, forces = zip(*(pair_energy_and_force(repulsion, [0, 1], r) for r in np.linspace(0.3, 1.2, 181)))
    assert all(e == 0.0 for e, r in zip(energies, np.linspace(0.3, 1.2, 181)) if r >= 1.0)
    assert np.all(np.diff(energies) <= 0)  # monotonically weaker with distance
    # Continuous forces: the largest step between neighbouring points (0.005 Å) is a small fraction of the force.
    assert np.abs(np.diff(forces)).max() < 0.05 * max(forces)
    assert pair_energy_and_force(repulsion, [0, 1], 0.9999)[1] == pytest.approx(0.0, abs=1e-4)  # C²: ∝ (onset − r)²


def test_onsets_are_the_shortest_distances_of_the_data(data_dir):
    frames = load_frames("water-revpbe0-d3")[:6]
    model = PaiNN(["O", "H"], n_features=8, n_interactions=1, n_rbf=4, repulsion="zbl")
    model.set_repulsion("zbl", frames)
    symbols = np.array(frames[0].get_chemical_symbols())
    for a, b in [("O", "O"), ("O", "H"), ("H", "H")]:
        shortest = min(
            atoms.get_all_distances(mic=True)[np.ix_(symbols == a, symbols == b)][
                ~np.eye(len(symbols), dtype=bool)[np.ix_(symbols == a, symbols == b)]
            ].min()
            for atoms in frames
        )
        onset = model.repulsion.onsets[model.species.index(a), model.species.index(b)]
        assert float(onset) == pytest.approx(shortest, abs=1e-9)
    # Zero on the frames it was fitted to (and the network alone gives the energies); active below an onset.
    bare = PaiNN.from_hyperparameters({**model.hyperparameters, "repulsion": "none"})
    bare.load_state_dict(model.state_dict(), strict=False)
    for atoms in frames:
        torch.testing.assert_close(evaluate(model, atoms)["energies"], evaluate(bare, atoms)["energies"], rtol=0, atol=1e-12)
    squeezed = frames[0].copy()
    squeezed.positions[1] = squeezed.positions[0] + 0.8 * (squeezed.positions[1] - squeezed.positions[0])
    assert float(evaluate(model, squeezed)["energy"]) > float(evaluate(bare, squeezed)["energy"]) + 0.1


def test_training_fits_the_onsets_and_autotuning_only_lowers_them(pretrained_model, tmp_path, data_dir):
    pretrained = load_trained(pretrained_model)
    assert pretrained.hyperparameters["repulsion"] == "zbl"
    config, _ = tiny_config(tmp_path, "pretrain-check", 1)
    config["model"]["n_interactions"] = 2
    train_frames, _, _ = split_frames(config)
    fresh = PaiNN(pretrained.species, repulsion="zbl", n_features=8, n_interactions=1, n_rbf=4)
    fresh.set_repulsion("zbl", train_frames)
    torch.testing.assert_close(pretrained.repulsion.onsets, fresh.repulsion.onsets, rtol=0, atol=0)

    config, _ = tiny_config(tmp_path, "autotuned", 1)
    config["model"]["n_interactions"] = 2
    config["autotune"]["from"] = str(pretrained_model)
    config["split"]["seed"] = 7  # other frames than the pretraining's
    train(config)
    autotuned = load_trained(tmp_path / "autotuned" / "model.pt")
    new_frames, _, _ = split_frames(config)
    fresh.set_repulsion("zbl", new_frames)  # the minimum over both frame sets
    torch.testing.assert_close(autotuned.repulsion.onsets, fresh.repulsion.onsets, rtol=0, atol=0)
    assert bool((autotuned.repulsion.onsets <= pretrained.repulsion.onsets).all())


def test_models_saved_without_the_term_load_with_it_off():
    model = PaiNN(["O", "H"], n_features=8, n_interactions=1, n_rbf=4)
    hyperparameters = {k: v for k, v in model.hyperparameters.items() if k != "repulsion"}
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("repulsion.")}
    old = PaiNN.from_hyperparameters(hyperparameters)
    old.load_state_dict(state)
    assert not old.repulsion.enabled
    with pytest.raises(ValueError, match="unknown kind 'lj'"):
        PaiNN(["O", "H"], repulsion="lj")
