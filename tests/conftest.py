import os
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from scipy.spatial.transform import Rotation

from tpainn.data.graph import atoms_to_graph, collate
from tpainn.train import load_config, train


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real DFT data: tests that need it fail (not skip) when TPAINN_DATA_DIR is not set."""
    path = os.environ.get("TPAINN_DATA_DIR")
    if not path or not Path(path).is_dir():
        pytest.fail("TPAINN_DATA_DIR must point to the shared data directory (make test / .ci/run set it)")
    return Path(path)


def water_box(n_molecules: int, length: float, seed: int = 0, pbc: bool = True) -> Atoms:
    """Randomly placed and oriented water molecules (overlaps allowed: a test geometry, not a liquid)."""
    rng = np.random.default_rng(seed)
    water = molecule("H2O")
    positions, symbols = [], []
    for _ in range(n_molecules):
        rotated = Rotation.random(random_state=rng).apply(water.positions)
        positions.append(rotated + rng.uniform(0, length, 3))
        symbols += water.get_chemical_symbols()
    atoms = Atoms(symbols, positions=np.concatenate(positions), cell=np.eye(3) * length if pbc else None, pbc=pbc)
    return atoms


def batch_of(frames, cutoff):
    return collate([atoms_to_graph(a, cutoff) for a in frames])


def tiny_config(tmp_path, name, epochs):
    overrides = [
        "model.n_features=8", "model.n_interactions=1", "model.n_rbf=4", "model.cutoff=3.0", "model.dtype=float64",
        "split.n_train=4", "split.n_val=2", "optimizer.batch_size=2", "optimizer.lr=0.005", "schedule.kind=plateau",
        "schedule.patience=1", f"epochs={epochs}", "early_stopping_patience=1000", "threads=1",
        f"output_dir={tmp_path / name}",
    ]  # fmt: skip
    return load_config(None, overrides), overrides


@pytest.fixture(scope="session")
def pretrained_model(tmp_path_factory, data_dir) -> Path:
    """A tiny model trained on revPBE0-D3 water, standing in for a classical pretraining run."""
    tmp_path = tmp_path_factory.mktemp("pretrain")
    config, _ = tiny_config(tmp_path, "pretrain", 2)
    config["model"]["n_interactions"] = 2
    train(config)
    return tmp_path / "pretrain" / "model.pt"


def strain_derivative(atoms: Atoms, energy, h: float = 1e-6) -> np.ndarray:
    """(1/V) ∂E/∂ε by central differences of `energy(strained_atoms)` (eV/Å³, the ASE stress convention)."""
    derivative = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1, -1):
                strain = np.eye(3)
                strain[a, b] += sign * h
                strained = atoms.copy()
                strained.set_cell(atoms.cell.array @ strain, scale_atoms=True)
                energies.append(energy(strained))
            derivative[a, b] = (energies[0] - energies[1]) / (2 * h) / atoms.get_volume()
    return derivative
