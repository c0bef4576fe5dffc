"""tpainn.neighbors.neighbor_list against an O(N^2) search over explicit periodic images, and against ASE."""

import itertools
import math

import numpy as np
import pytest
import torch

from tpainn.neighbors import neighbor_list, neighbor_list_atoms


def brute_force(positions, cell, pbc, cutoff):
    """{(i, j, s0, s1, s2): distance} over every image shift that can possibly be within the cutoff."""
    positions, cell = np.asarray(positions, float), np.asarray(cell, float)
    pbc = np.broadcast_to(np.asarray(pbc, bool), (3,))
    ranges = [range(1)] * 3
    if pbc.any():
        volume = abs(np.linalg.det(cell))
        frac = np.linalg.solve(cell.T, positions.T).T
        for k in np.flatnonzero(pbc):
            height = volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))
            # Unwrapped positions can be several cells apart: widen the range by their fractional spread.
            n = math.ceil(cutoff / height) + math.ceil(np.ptp(frac[:, k])) + 1
            ranges[k] = range(-n, n + 1)
    pairs = {}
    for shift in itertools.product(*ranges):
        vectors = positions[None, :, :] - positions[:, None, :] + np.asarray(shift, float) @ cell
        distances = np.linalg.norm(vectors, axis=-1)
        mask = distances < cutoff
        if shift == (0, 0, 0):
            np.fill_diagonal(mask, False)
        for i, j in zip(*np.nonzero(mask)):
            pairs[(int(i), int(j), *shift)] = distances[i, j]
    return pairs


def as_dict(result):
    edge_index, shifts, distances = result
    keys = zip(edge_index[0].tolist(), edge_index[1].tolist(), *shifts.T.tolist())
    return dict(zip(keys, distances.tolist()))


def check(positions, cell, pbc, cutoff):
    """Compare with the brute force, check dtypes, order and i<->j symmetry; return the result."""
    result = neighbor_list(positions, cell, pbc, cutoff)
    edge_index, shifts, distances = result
    n_edges = distances.shape[0]
    assert edge_index.dtype == shifts.dtype == torch.int64 and distances.dtype == torch.float64
    assert edge_index.shape == (2, n_edges) and shifts.shape == (n_edges, 3)
    assert bool((edge_index[0, 1:] >= edge_index[0, :-1]).all()), "edges must be sorted by centre atom"
    got, expected = as_dict(result), brute_force(positions, cell, pbc, cutoff)
    assert len(got) == n_edges, "duplicate edges"
    assert got.keys() == expected.keys()
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), rtol=0, atol=1e-12)
    for i, j, *s in got:
        assert (j, i, -s[0], -s[1], -s[2]) in got
    return result


def random_triclinic(rng, lengths=(6.0, 10.0), skew=0.35):
    """Skewed but well-conditioned cell: random lengths, off-diagonal parts up to `skew` of the diagonal."""
    while True:
        diag = rng.uniform(*lengths, size=3)
        cell = np.diag(diag) + rng.uniform(-skew, skew, size=(3, 3)) * diag[:, None]
        if abs(np.linalg.det(cell)) / np.prod(np.linalg.norm(cell, axis=1)) > 0.5:
            return cell


def random_atoms(rng, cell, n):
    return rng.uniform(size=(n, 3)) @ cell


@pytest.mark.parametrize("seed", range(5))
def test_random_triclinic(seed):
    rng = np.random.default_rng(seed)
    cell = random_triclinic(rng)
    check(random_atoms(rng, cell, 60), cell, True, rng.uniform(3.0, 6.0))


def test_water_box():
    rng = np.random.default_rng(10)
    cell = np.eye(3) * 12.4
    _, _, distances = check(random_atoms(rng, cell, 192), cell, True, 5.0)
    # ~ 4/3 pi 5^3 * 0.1 atoms/A^3 neighbours per atom
    assert 40 < len(distances) / 192 < 65


def test_cell_smaller_than_cutoff():
    rng = np.random.default_rng(11)
    cell = np.array([[3.0, 0.0, 0.0], [0.4, 3.1, 0.0], [-0.3, 0.5, 2.9]])
    edge_index, shifts, _ = check(random_atoms(rng, cell, 3), cell, True, 5.0)
    pairs = list(zip(edge_index[0].tolist(), edge_index[1].tolist()))
    assert any(i == j for i, j in pairs), "an atom must see its own images"
    assert pairs.count((0, 1)) > 5, "several images of the same neighbour"


def test_one_short_vector():
    rng = np.random.default_rng(12)
    cell = np.array([[10.0, 0.0, 0.0], [1.0, 1.8, 0.0], [0.5, 0.3, 9.0]])
    check(random_atoms(rng, cell, 40), cell, True, 4.0)


def test_mixed_pbc():
    rng = np.random.default_rng(13)
    cell = random_triclinic(rng)
    # The non-periodic direction extends beyond the cell on both sides; the periodic ones are unwrapped too.
    frac = rng.uniform([0.0, -1.5, 0.0], [1.0, 2.5, 1.0], size=(80, 3))
    check(frac @ cell, cell, (True, False, True), 4.5)
    frac[:, 1] = 0.5  # a flat layer: no extent at all in the non-periodic direction
    check(frac @ cell, cell, (True, False, True), 4.5)


def test_molecule_zero_cell():
    rng = np.random.default_rng(14)
    positions = rng.normal(scale=3.0, size=(40, 3))
    check(positions, np.zeros((3, 3)), False, 3.0)
    check(positions, np.zeros((3, 3)), [False] * 3, 100.0)  # everything within the cutoff: one bin
    positions[:, 2] = rng.normal(scale=1e-12, size=40)  # almost flat: the bin search must not span cutoff / 1e-12
    check(positions, np.zeros((3, 3)), False, 3.0)


def test_sparse_molecule_keeps_bins_bounded():
    # Without the O(N) bin cap this would allocate (4000 / 2)^3 bins.
    rng = np.random.default_rng(15)
    centres = rng.uniform(-2000.0, 2000.0, size=(6, 3))
    positions = (centres[:, None, :] + rng.normal(size=(6, 5, 3))).reshape(-1, 3)
    check(positions, np.zeros((3, 3)), False, 2.0)


def test_unwrapped_positions():
    rng = np.random.default_rng(16)
    cell = random_triclinic(rng)
    wrapped = random_atoms(rng, cell, 50)
    images = rng.integers(-6, 7, size=(50, 3))
    result = check(wrapped + images @ cell, cell, True, 5.0)
    # Same pairs as for the wrapped positions, shifts corrected by the images each atom was moved by.
    edge_index, shifts, distances = neighbor_list(wrapped, cell, True, 5.0)
    i, j = edge_index
    corrected = (shifts + torch.from_numpy(images[i] - images[j])).numpy()
    expected = as_dict((edge_index, torch.from_numpy(corrected), distances))
    got = as_dict(result)
    assert got.keys() == expected.keys()
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), rtol=0, atol=1e-12)


def test_single_atom_small_cell():
    edge_index, shifts, distances = check([[0.7, -0.2, 5.0]], np.eye(3) * 3.0, True, 5.0)
    # Lattice points of a 3 A simple cubic lattice closer than 5 A: |n|^2 in {1, 2} -> 6 + 12.
    assert len(distances) == 18 and bool((edge_index == 0).all())
    assert sorted((shifts**2).sum(1).tolist()) == [1] * 6 + [2] * 12
    # The cutoff is strict: images at exactly the cutoff distance are not neighbours.
    assert neighbor_list([[0.0, 0.0, 0.0]], np.eye(3) * 3.0, True, 3.0)[2].numel() == 0
    assert neighbor_list([[0.0, 0.0, 0.0]], np.eye(3) * 3.0, True, 3.0 + 1e-9)[2].numel() == 6


def test_empty_and_isolated():
    for positions, pbc in ((np.zeros((0, 3)), True), (np.zeros((0, 3)), False), ([[1.0, 2.0, 3.0]], False)):
        edge_index, shifts, distances = neighbor_list(positions, np.eye(3) * 10.0, pbc, 3.0)
        assert edge_index.shape == (2, 0) and shifts.shape == (0, 3) and distances.shape == (0,)


def test_against_ase():
    from ase import Atoms
    from ase.neighborlist import primitive_neighbor_list

    rng = np.random.default_rng(17)
    cell = random_triclinic(rng)
    pbc = (True, True, False)
    atoms = Atoms("H100", positions=random_atoms(rng, cell, 100), cell=cell, pbc=pbc)
    i, j, s, d = primitive_neighbor_list("ijSd", pbc, cell, atoms.positions, 5.0, self_interaction=False)
    expected = dict(zip(zip(i.tolist(), j.tolist(), *s.T.tolist()), d.tolist()))
    got = as_dict(neighbor_list_atoms(atoms, 5.0))
    assert got.keys() == expected.keys()
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), rtol=0, atol=1e-12)


def test_input_types_agree():
    rng = np.random.default_rng(18)
    cell = random_triclinic(rng)
    positions = random_atoms(rng, cell, 30)
    reference = neighbor_list(positions, cell, True, 4.0)
    tensors = neighbor_list(torch.tensor(positions, requires_grad=True), torch.tensor(cell), [1, 1, 1], 4.0)
    for a, b in zip(reference, tensors):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "positions, cell, pbc, cutoff, message",
    [
        (np.zeros((4, 2)), np.eye(3), True, 3.0, r"shape \(N, 3\)"),
        ([[0.0, 0.0, 0.0], [1.0, np.nan, 0.0]], np.eye(3), True, 3.0, "atom 1 are not finite"),
        (np.zeros((2, 3)), np.eye(3), True, 0.0, "cutoff must be positive"),
        (np.zeros((2, 3)), np.eye(3), True, float("nan"), "cutoff must be positive"),
        (np.zeros((2, 3)), np.eye(2), True, 3.0, r"cell must have shape \(3, 3\)"),
        (np.zeros((2, 3)), [[1.0, 0, 0], [0, 1, 0], [1, 1, 0]], True, 3.0, "singular"),
        (np.zeros((2, 3)), np.zeros((3, 3)), (False, True, False), 3.0, "singular"),
        (np.zeros((2, 3)), np.eye(3), (True, True), 3.0, "pbc must be a bool or a sequence of 3"),
    ],
)
def test_invalid_input(positions, cell, pbc, cutoff, message):
    with pytest.raises(ValueError, match=message):
        neighbor_list(positions, cell, pbc, cutoff)
