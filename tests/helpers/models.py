"""A small random PaiNN whose forces and stress are non-trivial, for the model, engine, export and LAMMPS tests."""

import torch

from conftest import batch_of
from tpainn.data.graph import model_inputs
from tpainn.model import PaiNN

CUTOFF = 4.0


# Short-range repulsion onsets (Å; rows and columns H, O) that the random test boxes' close pairs fall below,
# so that every comparison (eager, TorchScript, engine, LAMMPS, MPI, finite differences) includes the term.
TEST_ONSETS = [[1.4, 0.9], [0.9, 2.4]]


def make_model(seed=0, **kwargs):
    torch.manual_seed(seed)
    options = dict(cutoff=CUTOFF, n_features=16, n_interactions=2, n_rbf=8, dtype="float64", repulsion="zbl")
    options.update(kwargs)
    model = PaiNN(["H", "O"], **options)
    model.repulsion.onsets.copy_(torch.tensor(TEST_ONSETS, dtype=torch.float64))
    # The readout's last layer starts at zero (energy = reference energies); randomise it so that
    # forces and stress are non-trivial functions of the geometry.
    torch.nn.init.normal_(model.readout[-1].weight, std=0.5)
    model.reference_energies.copy_(torch.tensor([-13.6, -430.0], dtype=torch.float64))
    model.energy_scale.fill_(0.7)
    return model.eval()


def evaluate(model, atoms, stress=False):
    out = model(*model_inputs(batch_of([atoms], model.cutoff)), compute_forces=True, compute_stress=stress)
    return {k: v.detach() for k, v in out.items()}
