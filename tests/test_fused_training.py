"""Training through the fused message operator (tpainn.model.fused.fuse_messages): the loss gradient of a fused
model against the eager model's, and 20 optimizer steps of `tpainn train`'s step with each."""

import copy

import pytest
import torch
from ase.calculators.singlepoint import SinglePointCalculator
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader

from conftest import batch_of, tiny_config, water_box
from helpers.models import make_model
from helpers.systems import SYSTEMS
from tpainn._C import parallel_threads_used
from tpainn.data.graph import GraphDataset, collate, elements_in, model_inputs
from tpainn.model.fused import FusedPaiNNMessage, fuse_messages
from tpainn.train import load_config, load_trained, train
from tpainn.train.trainer import build_model, ema_average_fn, train_epoch


def loss_gradients(model, frames):
    """Gradients of a loss with energy, forces and stress (second derivatives of the energy) for each parameter."""
    out = model(*model_inputs(batch_of(frames, model.cutoff)), compute_forces=True, compute_stress=True)
    loss = out["energy"].square().sum() + out["forces"].square().sum() + out["stress"].square().sum()
    return dict(zip(dict(model.named_parameters()), torch.autograd.grad(loss, list(model.parameters()))))


@pytest.mark.parametrize("options", [{}, dict(rbf="bessel", shared_filters=True, n_interactions=3)])
def test_fused_loss_gradient_matches_eager(options):
    model = make_model(**options).train()
    fused = fuse_messages(copy.deepcopy(model))
    assert all(isinstance(layer.message, FusedPaiNNMessage) for layer in fused.representation.layers)
    assert fused.state_dict().keys() == model.state_dict().keys()
    frames = [SYSTEMS["triclinic water"](), water_box(6, 5.0, seed=3)]
    want, got = loss_gradients(model, frames), loss_gradients(fused, frames)
    for name, grad in want.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-10, atol=1e-10, msg=name)
    # The filter weights' gradient comes through the force term too (double backward of the operator).
    assert want["representation.filter_nets.0.weight"].abs().max() > 1e-3


def labelled_frames(n_frames):
    """Water boxes labelled by a random float64 model: smooth targets for a few training steps."""
    teacher = make_model(seed=7)
    frames = [water_box(8, 6.0, seed=seed) for seed in range(n_frames)]
    for atoms in frames:
        out = teacher(*model_inputs(batch_of([atoms], teacher.cutoff)), compute_forces=True)
        atoms.calc = SinglePointCalculator(atoms, energy=float(out["energy"][0].detach()), forces=out["forces"].detach().numpy())
    return frames


def trained_weights(frames, fused: bool, epochs: int = 2):
    """`tpainn train`'s step (train_epoch) for `epochs` × 10 optimizer steps of a tiny float32 model from seed 0."""
    config = load_config(None, ["model.n_features=8", "model.n_interactions=2", "model.n_rbf=6", "model.cutoff=3.0",
                                "model.dtype=float32", "optimizer.batch_size=2", "optimizer.lr=0.005"])  # fmt: skip
    torch.manual_seed(0)
    model = build_model(config, frames, elements_in(frames))
    if fused:
        fuse_messages(model)
    ema = AveragedModel(model, multi_avg_fn=ema_average_fn(config["ema_decay"]), use_buffers=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["optimizer"]["lr"])
    batches = DataLoader(GraphDataset(frames, model.cutoff), batch_size=2, collate_fn=collate)
    for _ in range(epochs):
        train_epoch(model, ema, optimizer, batches, config)
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def test_twenty_fused_training_steps_match_eager_ones():
    frames = labelled_frames(20)
    start = trained_weights(frames, fused=False, epochs=0)
    eager, fused = trained_weights(frames, fused=False), trained_weights(frames, fused=True)
    for name, tensor in eager.items():
        torch.testing.assert_close(fused[name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    # The steps moved the weights far more than the tolerance (lr 0.005 × 20 steps).
    assert (eager["representation.filter_nets.0.weight"] - start["representation.filter_nets.0.weight"]).abs().max() > 1e-2


def test_tpainn_train_with_fused_messages_ends_where_the_eager_run_does(tmp_path):
    eager, _ = tiny_config(tmp_path, "eager", 3)
    fused, _ = tiny_config(tmp_path, "fused", 3)
    eager["fused_messages"], fused["fused_messages"] = False, True
    eager_metrics, fused_metrics = train(eager), train(fused)
    assert fused_metrics["forces_mae"] == pytest.approx(eager_metrics["forces_mae"], rel=1e-8)
    assert fused_metrics["energy_mae"] == pytest.approx(eager_metrics["energy_mae"], rel=1e-8)
    # The model file is the plain (eager) PaiNN with the same weights.
    model = load_trained(tmp_path / "fused" / "model.pt")
    assert not any(isinstance(layer.message, FusedPaiNNMessage) for layer in model.representation.layers)
    reference = load_trained(tmp_path / "eager" / "model.pt").state_dict()
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, reference[name], rtol=1e-8, atol=1e-10, msg=name)
    with pytest.raises(ValueError, match="fused_messages"):
        load_config(None, ["fused_messages=3"])


def test_fused_weight_gradient_is_reproducible_whatever_the_thread_count():
    """The kernels run on torch's threads, and the chunks' weight gradients are summed in a fixed order (not as
    threads finish, not chunked by thread count): a resumed run repeats, at any thread count."""
    model = fuse_messages(make_model().train())
    frames = [water_box(32, 9.9, seed=3)]  # 96 atoms: six chunks of 16 atoms, on four threads
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = loss_gradients(model, frames)
        torch.set_num_threads(4)
        assert parallel_threads_used(64) == 4  # built with the OpenMP that torch's threads need
        runs = [loss_gradients(model, frames) for _ in range(20)]
    finally:
        torch.set_num_threads(threads)
    for name, grad in single.items():
        for run in runs[1:]:
            assert torch.equal(run[name], runs[0][name]), name
        torch.testing.assert_close(runs[0][name], grad, rtol=1e-12, atol=1e-12, msg=name)
