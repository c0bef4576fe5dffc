"""The C++ engine (through TPaiNNCalculator and tpainn._C.Engine) against the eager model and finite differences."""

import numpy as np
import pytest
import torch
from ase.stress import full_3x3_to_voigt_6_stress

from conftest import batch_of, strain_derivative, water_box
from helpers.models import CUTOFF, make_model
from helpers.systems import SYSTEMS, triclinic
from tpainn import TPaiNNCalculator, _C
from tpainn.data.graph import model_inputs
from tpainn.export import export_model
from tpainn.neighbors import neighbor_list_atoms


@pytest.fixture(scope="module")
def model():
    return make_model()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    return export_model(model, tmp_path_factory.mktemp("engine") / "model.pt")


def eager(model, atoms):
    stress = bool(atoms.pbc.all())
    out = model(*model_inputs(batch_of([atoms], model.cutoff)), compute_forces=True, compute_stress=stress)
    return {k: v.detach().numpy() for k, v in out.items()}


@pytest.mark.parametrize("name", list(SYSTEMS))
def test_engine_matches_eager_model(model, exported, name):
    atoms = SYSTEMS[name]()
    ref = eager(model, atoms)
    atoms.calc = TPaiNNCalculator(exported, skin=0.7)
    assert atoms.get_potential_energy() == pytest.approx(ref["energy"][0], abs=1e-10)
    np.testing.assert_allclose(atoms.get_potential_energies(), ref["energies"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), ref["forces"], rtol=0, atol=1e-10)
    assert np.abs(ref["forces"]).max() > 1e-3  # the comparison is not between zeros
    if atoms.pbc.all():
        np.testing.assert_allclose(atoms.get_stress(), full_3x3_to_voigt_6_stress(ref["stress"][0]), rtol=0, atol=1e-10)


def test_prebuilt_edge_list_matches(model, exported):
    """The entry point for LAMMPS: a caller's list with a skin gives the same results as the own list."""
    atoms = triclinic(water_box(12, 8.0, seed=17), 0.9)
    engine = _C.Engine(str(exported))
    edge_index, shifts, _ = neighbor_list_atoms(atoms, CUTOFF + 1.0)
    cell = atoms.cell.array
    out = engine.compute_edges(atoms.positions, atoms.numbers, cell, edge_index.numpy(), shifts.numpy(), True)
    ref = engine.compute(atoms.positions, atoms.numbers, cell, [True] * 3, True)
    for key in ("energies", "forces", "virial"):
        np.testing.assert_allclose(out[key], ref[key], rtol=0, atol=1e-10)
    np.testing.assert_allclose(ref["virial"], -eager(model, atoms)["stress"][0] * atoms.get_volume(), rtol=0, atol=1e-9)


def test_float32_network(model, exported):
    atoms = water_box(8, 6.0, seed=18)
    calc = TPaiNNCalculator(exported, dtype="float32")
    assert calc.engine.dtype == "float32"
    model32 = make_model(dtype="float32")
    model32.load_state_dict(model.state_dict())
    ref32, ref64 = eager(model32, atoms), eager(model, atoms)
    atoms.calc = calc
    np.testing.assert_allclose(atoms.get_forces(), ref32["forces"], rtol=0, atol=1e-5)
    assert np.abs(atoms.get_forces() - ref64["forces"]).max() > 1e-9  # it really ran in float32


def test_stress_matches_strain_derivative(exported):
    atoms = triclinic(water_box(10, 7.0, seed=19), 1.1)
    atoms.calc = TPaiNNCalculator(exported)
    stress = atoms.get_stress(voigt=False)

    def energy(strained):
        strained.calc = TPaiNNCalculator(exported)
        return strained.get_potential_energy()

    expected = strain_derivative(atoms, energy)
    for a in range(3):
        for b in range(3):
            assert stress[a, b] == pytest.approx(expected[a, b], abs=1e-8)

def test_neighbor_list_reuse_gives_identical_results(exported):
    """skin 1 Å (reuse while moves < 0.5 Å) vs skin 0 (rebuilt every call), moves below and above skin/2."""
    atoms = water_box(12, 7.0, seed=20)
    reused, rebuilt = TPaiNNCalculator(exported, skin=1.0), TPaiNNCalculator(exported, skin=0.0)
    start = atoms.positions.copy()
    rng = np.random.default_rng(0)
    builds, built_at = 0, None
    for size in [0.1, 0.1, 0.1, 0.3, 0.1, 0.6, 0.05]:  # largest single-atom move of each step, Å
        delta = rng.normal(size=start.shape)
        atoms.positions += delta * size / np.linalg.norm(delta, axis=1).max()
        if built_at is None or np.linalg.norm(atoms.positions - built_at, axis=1).max() > 0.5:
            builds, built_at = builds + 1, atoms.positions.copy()
        results = []
        for calc in (reused, rebuilt):
            calc.calculate(atoms, ["energy", "forces", "stress"], ["positions"])
            results.append(dict(calc.results))
        for key in ("energy", "energies", "forces", "stress"):
            np.testing.assert_allclose(results[0][key], results[1][key], rtol=0, atol=1e-10)
    assert 1 < builds < 7  # both reuse and rebuilds happened
    assert reused.engine.neighbor_list_builds == builds
    assert rebuilt.engine.neighbor_list_builds == 7


def image_graph(atoms, cutoff):
    """The graph a domain-decomposed caller builds: the atoms, then each periodic image a neighbour list reaches,
    as an atom of its own at its image position (its owner's index in `owners`); edges start at the atoms."""
    edge_index, shifts, _ = (t.numpy() for t in neighbor_list_atoms(atoms, cutoff))
    positions, owners, node_of = list(atoms.positions), [], {}
    neighbours = edge_index[1].copy()
    for e in np.flatnonzero(np.any(shifts != 0, axis=1)):
        key = (edge_index[1, e], *shifts[e])
        if key not in node_of:
            node_of[key] = len(positions)
            positions.append(atoms.positions[key[0]] + shifts[e] @ atoms.cell.array)
            owners.append(key[0])
        neighbours[e] = node_of[key]
    numbers = atoms.numbers[np.concatenate([np.arange(len(atoms)), owners]).astype(int)]
    return np.array(positions), numbers, np.array(owners, dtype=np.int64), np.stack([edge_index[0], neighbours])


@pytest.mark.parametrize("name", ["periodic water", "box < 2 cutoffs", "box < cutoff"])
def test_decomposed_path_matches_periodic_graph(model, exported, name):
    """The pair style's path on several MPI ranks (features of copies exchanged between layers), with periodic
    images as the copies: the energies and forces of the periodic graph."""
    atoms = SYSTEMS[name]()
    ref = eager(model, atoms)
    positions, numbers, owners, edge_index = image_graph(atoms, CUTOFF)
    assert len(owners) > 0  # images carry part of the energy: the exchange is exercised
    out = _C.Engine(str(exported)).compute_images(positions, numbers, owners, edge_index)
    n = len(atoms)
    forces = out["forces"][:n].copy()
    np.add.at(forces, owners, out["forces"][n:])
    assert out["energy"] == pytest.approx(ref["energy"][0], abs=1e-10)
    np.testing.assert_allclose(out["energies"], ref["energies"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(forces, ref["forces"], rtol=0, atol=1e-10)


def test_decomposed_path_refuses_unfused_exports(model, tmp_path):
    """An unfused export's exchange step is plain TorchScript: it cannot fill in the copies."""
    unfused = export_model(model, tmp_path / "unfused.pt", fused=False)
    positions, numbers, owners, edge_index = image_graph(SYSTEMS["periodic water"](), CUTOFF)
    with pytest.raises(ValueError, match="unfused export .* export it fused"):
        _C.Engine(str(unfused)).compute_images(positions, numbers, owners, edge_index)


def test_exchange_step_without_an_exchange_returns_its_inputs():
    """The exchange step outside the decomposed path (ASE, one LAMMPS rank) passes φ(s) and v through, and refuses
    copies it cannot fill."""
    x, v, anchor = torch.randn(5, 12), torch.randn(5, 3, 4), torch.zeros(0, 3)
    x_all, v_all = torch.ops.tpainn.ghost_exchange(x, v, anchor, 5)
    assert torch.equal(x_all, x) and torch.equal(v_all, v)
    with pytest.raises(RuntimeError, match="2 atoms are copies of atoms owned elsewhere, but no exchange is installed"):
        torch.ops.tpainn.ghost_exchange(x, v, anchor, 7)


def test_decomposed_path_without_atoms(exported):
    out = _C.Engine(str(exported)).compute_images(np.zeros((0, 3)), np.zeros(0, np.int64), np.zeros(0, np.int64),
                                                  np.zeros((2, 0), np.int64))
    assert out["energy"] == 0.0 and out["forces"].shape == (0, 3)


def test_decomposed_path_refuses_edges_from_copies(exported):
    atoms = SYSTEMS["periodic water"]()
    positions, numbers, owners, edge_index = image_graph(atoms, CUTOFF)
    with pytest.raises(ValueError, match="not owned"):
        _C.Engine(str(exported)).compute_images(positions, numbers, owners, edge_index[::-1].copy())


def test_decomposed_path_in_float32(exported):
    """A float32 network exchanges float32 features: the same as its periodic graph to float32 precision."""
    atoms = SYSTEMS["box < 2 cutoffs"]()
    engine = _C.Engine(str(exported), dtype="float32")
    ref = engine.compute(atoms.positions, atoms.numbers, atoms.cell.array, [True] * 3, False)
    positions, numbers, owners, edge_index = image_graph(atoms, CUTOFF)
    out = engine.compute_images(positions, numbers, owners, edge_index)
    forces = out["forces"][: len(atoms)].copy()
    np.add.at(forces, owners, out["forces"][len(atoms) :])
    assert out["energy"] == pytest.approx(ref["energy"], abs=1e-4)
    np.testing.assert_allclose(forces, ref["forces"], rtol=0, atol=1e-5 * np.abs(ref["forces"]).max())
