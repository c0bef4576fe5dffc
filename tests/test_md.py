"""MD and optimisation through ASE with TPaiNNCalculator: NVE energy conservation, BFGS, Langevin, NPT."""

import numpy as np
import pytest
import torch
from ase import units
from ase.md.langevin import Langevin
from ase.md.nptberendsen import NPTBerendsen
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS

from helpers.models import make_model
from tpainn import TPaiNNCalculator
from tpainn.data import load_frames
from tpainn.export import export_model


@pytest.fixture
def one_thread():
    """The suite shares 2 loaded cores: one intra-op thread avoids oversubscription (restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def liquid(data_dir):
    """A revPBE0-D3 liquid water frame: 64 molecules, 192 atoms, 12.4 Å box."""
    return load_frames("water-revpbe0-d3")[0].copy()


@pytest.fixture(scope="module")
def small_model(tmp_path_factory, data_dir):
    """A random (untrained) model, F=8, 2 layers, 3 Å cutoff: smooth but with eV-scale energy changes. Its
    short-range repulsion, fitted to the liquid frames, keeps the random network's atoms from collapsing."""
    model = make_model(n_features=8, cutoff=3.0, n_interactions=2, n_rbf=4, repulsion="none")
    model.set_repulsion("zbl", load_frames("water-revpbe0-d3")[:10])
    model.energy_scale.fill_(0.1)
    return export_model(model, tmp_path_factory.mktemp("md") / "small.pt")


def test_nve_conserves_energy(liquid, small_model, one_thread):
    """1,000 VelocityVerlet steps of 0.25 fs from 300 K: |E_total(t) − E_total(0)| < 2e-3 eV (1e-5 eV/atom).

    The model's potential energy must change by ≥ 100× the bound, so forces that are not −∇E (a 5 % error
    already drifts by ~0.02 eV here) fail the test.
    """
    atoms = liquid.copy()
    atoms.calc = model = TPaiNNCalculator(small_model, skin=0.5)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    total, model_energy = [], []

    def record():
        total.append(atoms.get_total_energy())
        model_energy.append(model.results["energy"])

    dynamics = VelocityVerlet(atoms, 0.25 * units.fs)
    dynamics.attach(record, interval=1)
    dynamics.run(1000)
    deviation = np.abs(np.array(total) - total[0]).max()
    print(f"NVE: max |E(t) - E(0)| = {deviation:.2e} eV over 1000 steps; model energy range {np.ptp(model_energy):.3f} eV")
    assert len(total) == 1001
    assert deviation < 2e-3
    assert np.ptp(model_energy) > 100 * 2e-3
    assert 1 < model.engine.neighbor_list_builds < 1000  # the skin was used


def test_optimizer_lowers_energy(liquid, small_model, one_thread):
    atoms = liquid.copy()
    atoms.calc = TPaiNNCalculator(small_model)
    start = atoms.get_potential_energy()
    BFGS(atoms, logfile=None).run(fmax=1e-4, steps=5)
    assert atoms.get_potential_energy() < start - 1e-4


def test_langevin_and_npt_run(liquid, small_model, one_thread):
    atoms = liquid.copy()
    atoms.calc = TPaiNNCalculator(small_model)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(1))
    Langevin(atoms, 0.25 * units.fs, temperature_K=300, friction=0.01, rng=np.random.default_rng(2)).run(10)
    volume = atoms.get_volume()
    npt = NPTBerendsen(atoms, 0.25 * units.fs, temperature_K=300, pressure_au=1e4 * units.bar, taut=10 * units.fs,
                       taup=50 * units.fs, compressibility_au=4.6e-5 / units.bar)
    npt.run(10)
    assert atoms.get_volume() != volume  # the barostat acted on the engine's stress
    assert np.isfinite(atoms.get_potential_energy()) and np.isfinite(atoms.get_stress()).all()
