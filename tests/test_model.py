"""PaiNN: symmetries, forces and stress against finite differences, TorchScript, dtypes."""

import io

import numpy as np
import pytest
import torch
from ase import Atoms
from scipy.spatial.transform import Rotation

from conftest import batch_of, strain_derivative, water_box
from helpers.models import CUTOFF, evaluate, make_model
from tpainn.data.graph import model_inputs
from tpainn.model import PaiNN


@pytest.fixture(params=["periodic", "molecule"])
def system(request):
    if request.param == "periodic":
        atoms = water_box(6, 6.0, seed=1)
        atoms.set_cell(atoms.cell.array + np.array([[0, 0, 0], [1.2, 0, 0], [0.4, -0.8, 0]]), scale_atoms=False)
        return atoms
    return water_box(4, 4.0, seed=2, pbc=False)


def test_rotation_translation_permutation(system):
    model = make_model()
    ref = evaluate(model, system)
    rng = np.random.default_rng(3)

    rotation = Rotation.random(random_state=rng).as_matrix()
    rotated = system.copy()
    rotated.positions = system.positions @ rotation.T
    if system.pbc.any():
        rotated.set_cell(system.cell.array @ rotation.T, scale_atoms=False)
    out = evaluate(model, rotated)
    assert abs(out["energy"] - ref["energy"]).item() < 1e-10
    torch.testing.assert_close(out["forces"], ref["forces"] @ torch.tensor(rotation.T), rtol=0, atol=1e-10)

    translated = system.copy()
    translated.positions += rng.uniform(-7, 7, 3)
    out = evaluate(model, translated)
    assert abs(out["energy"] - ref["energy"]).item() < 1e-10
    torch.testing.assert_close(out["forces"], ref["forces"], rtol=0, atol=1e-10)

    order = rng.permutation(len(system))
    out = evaluate(model, system[order])
    assert abs(out["energy"] - ref["energy"]).item() < 1e-10
    torch.testing.assert_close(out["forces"], ref["forces"][order], rtol=0, atol=1e-10)
    torch.testing.assert_close(out["energies"], ref["energies"][order], rtol=0, atol=1e-10)


def test_energy_depends_on_geometry(system):
    """Guards the invariance test against a model that ignores positions."""
    model = make_model()
    moved = system.copy()
    moved.positions[0] += [0.2, -0.1, 0.05]
    assert abs(evaluate(model, moved)["energy"] - evaluate(model, system)["energy"]).item() > 1e-4


@pytest.mark.parametrize("options", [{}, {"rbf": "bessel"}, {"shared_filters": True}])
def test_forces_match_finite_differences(system, options):
    model = make_model(**options)
    forces = evaluate(model, system)["forces"].numpy()
    h = 1e-5
    rng = np.random.default_rng(0)
    for atom in rng.choice(len(system), 4, replace=False):
        for axis in range(3):
            energies = []
            for sign in (1, -1):
                displaced = system.copy()
                displaced.positions[atom, axis] += sign * h
                energies.append(evaluate(model, displaced)["energy"].item())
            assert forces[atom, axis] == pytest.approx(-(energies[0] - energies[1]) / (2 * h), abs=1e-7)


def test_stress_matches_strain_derivative():
    model = make_model()
    atoms = water_box(6, 6.0, seed=4)
    atoms.set_cell(atoms.cell.array + [[0, 0, 0], [0.9, 0, 0], [0.3, 0.5, 0]], scale_atoms=False)
    out = evaluate(model, atoms, stress=True)
    volume = atoms.get_volume()
    expected = strain_derivative(atoms, lambda strained: evaluate(model, strained)["energy"].item())
    for a in range(3):
        for b in range(3):
            # The model reports the symmetrised stress; dE/dε is symmetric for a rotation-invariant energy.
            assert out["stress"][0, a, b].item() == pytest.approx(expected[a, b], abs=1e-8)
    torch.testing.assert_close(out["virial"][0], -out["stress"][0] * volume, rtol=1e-12, atol=0)


def test_torchscript_matches_eager():
    model = make_model()
    scripted = torch.jit.script(model)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    atoms = water_box(6, 6.0, seed=5)
    inputs = model_inputs(batch_of([atoms], CUTOFF))
    eager = model(*inputs, compute_forces=True, compute_stress=True)
    for module in (scripted, loaded):
        out = module(*inputs, compute_forces=True, compute_stress=True)
        for key in ("energy", "energies", "forces", "stress", "virial"):
            torch.testing.assert_close(out[key], eager[key], rtol=0, atol=1e-12)


def test_batch_equals_single_frames():
    model = make_model()
    frames = [water_box(5, 5.5, seed=6), water_box(3, 4.0, seed=7, pbc=False)]
    out = model(*model_inputs(batch_of(frames, CUTOFF)), compute_forces=True)
    for k, atoms in enumerate(frames):
        single = evaluate(model, atoms)
        assert out["energy"][k].item() == pytest.approx(single["energy"].item(), abs=1e-10)
    torch.testing.assert_close(out["forces"][: len(frames[0])], evaluate(model, frames[0])["forces"], rtol=0, atol=1e-10)


def test_float32_network_keeps_float64_boundary():
    model64 = make_model()
    model32 = make_model(dtype="float32")
    model32.load_state_dict(model64.state_dict())
    atoms = water_box(6, 6.0, seed=8)
    out32, out64 = evaluate(model32, atoms), evaluate(model64, atoms)
    assert out32["energy"].dtype == torch.float64 and out32["forces"].dtype == torch.float64
    assert model32.representation.embedding.weight.dtype == torch.float32
    assert model32.reference_energies.dtype == torch.float64
    # float32 network error only: the large reference energies are added in float64.
    assert abs(out32["energy"] - out64["energy"]).item() < 1e-4
    torch.testing.assert_close(out32["forces"], out64["forces"], rtol=0, atol=1e-4)


def test_unknown_element_is_rejected_by_name():
    model = make_model()
    atoms = Atoms("CH4", positions=np.random.default_rng(0).uniform(0, 2, (5, 3)))
    with pytest.raises(ValueError, match=r"atomic numbers \[6\] are not among this model's species"):
        evaluate(model, atoms)
    with pytest.raises(ValueError, match="unknown element"):
        PaiNN(["H", "Xx"])


def test_untrained_model_predicts_the_reference_energies():
    model = PaiNN(["H", "O"], cutoff=CUTOFF, n_features=8, n_interactions=1, n_rbf=4)
    model.reference_energies.copy_(torch.tensor([-13.6, -430.0], dtype=torch.float64))
    out = evaluate(model.eval(), water_box(3, 4.0, seed=9))
    assert out["energy"].item() == pytest.approx(3 * (-430.0 - 2 * 13.6), abs=1e-12)


def test_isolated_atom_has_zero_force():
    model = make_model()
    atoms = Atoms("OH", positions=[[0, 0, 0], [0, 0, 10.0]])
    out = evaluate(model, atoms)
    assert torch.all(out["forces"] == 0)
    assert out["energy"].item() == pytest.approx(sum(out["energies"].tolist()), abs=1e-12)
