"""The CUDA path against the CPU path: the engine (unfused and fused exports, float64 and float32), the ASE
calculator, the fused operator's ATen composite with its first and second derivatives, a training loss gradient,
and `pair_style tpainn ... device cuda` in LAMMPS. Needs a GPU: skipped (with that reason) where torch sees none;
benchmarks/gpu/run.sh runs it on the lent GPU machine."""

import copy

import numpy as np
import pytest
import torch

from conftest import batch_of, water_box
from helpers.models import make_model
from helpers.systems import SYSTEMS
from tpainn import TPaiNNCalculator, _C
from tpainn.data.graph import model_inputs
from tpainn.export import export_model
from tpainn.model.fused import fuse_messages
from test_fused_ops import operator_inputs

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible to torch")

FLOAT64_TOL = 1e-10  # relative to the largest magnitude compared
FLOAT32_TOL = 1e-5


def assert_close(got, want, tol, name):
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale, err_msg=name)


def engine_results(path, device, dtype, atoms):
    engine = _C.Engine(str(path), device=device, dtype=dtype)
    assert engine.device.startswith(device)
    return engine.compute(atoms.positions, atoms.numbers, atoms.cell.array, list(atoms.pbc), bool(atoms.pbc.all()))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("dtype, tol", [("float64", FLOAT64_TOL), ("float32", FLOAT32_TOL)])
@pytest.mark.parametrize("system", ["periodic water", "triclinic water", "molecule", "box < cutoff"])
def test_engine_on_cuda_matches_cpu(tmp_path, fused, dtype, tol, system):
    path = export_model(make_model(), tmp_path / "model.pt", fused=fused)
    atoms = SYSTEMS[system]()
    cpu, cuda = (engine_results(path, device, dtype, atoms) for device in ("cpu", "cuda"))
    assert abs(cuda["energy"] - cpu["energy"]) <= tol * abs(cpu["energy"])
    for key in ("energies", "forces") + (("virial",) if atoms.pbc.all() else ()):
        assert_close(cuda[key], cpu[key], tol, key)
    assert np.abs(cpu["forces"]).max() > 1e-3  # the comparison is not between zeros


def test_calculator_on_cuda_matches_cpu(tmp_path):
    path = export_model(make_model(), tmp_path / "model.pt", fused=True)
    results = {}
    for device in ("cpu", "cuda"):
        atoms = SYSTEMS["triclinic water"]()
        atoms.calc = TPaiNNCalculator(path, device=device, skin=0.5)
        results[device] = [atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()]
        atoms.positions += 0.05  # reuse of the neighbour list within the skin on the device as well
        results[device] += [atoms.get_potential_energy(), atoms.get_forces()]
    for k, (got, want) in enumerate(zip(results["cuda"], results["cpu"])):
        assert_close(np.asarray(got), np.asarray(want), FLOAT64_TOL, f"result {k}")


def operator_inputs_on(device, **sizes):
    """test_fused_ops' random operator inputs (float64), on `device`."""
    features, centres, neighbours = operator_inputs(**sizes)
    return [t.to(device) for t in features], centres.to(device), neighbours.to(device)


def test_fused_operator_on_cuda_matches_the_cpu_kernel():
    sizes = dict(n_atoms=40, n_edges=400, n_features=16, n_radial=8)
    (cpu, ci, cj), (gpu, gi, gj) = operator_inputs_on("cpu", **sizes), operator_inputs_on("cuda", **sizes)
    want = torch.ops.tpainn.painn_message(*cpu, ci, cj)
    got = torch.ops.tpainn.painn_message(*gpu, gi, gj)
    assert got[0].device.type == "cuda"
    for a, b in zip(got, want):
        torch.testing.assert_close(a.cpu(), b, rtol=0, atol=1e-12)
    g = torch.Generator().manual_seed(1)
    grads = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in want]
    want_b = torch.ops.tpainn.painn_message_backward(*grads, *cpu[1:], ci, cj, True)
    got_b = torch.ops.tpainn.painn_message_backward(*(t.cuda() for t in grads), *gpu[1:], gi, gj, True)
    for name, a, b in zip(["v", "x", "radial", "unit_vectors", "weight"], got_b, want_b):
        torch.testing.assert_close(a.cpu(), b, rtol=0, atol=1e-11, msg=name)


def test_fused_operator_gradcheck_and_gradgradcheck_on_cuda():
    features, centres, neighbours = operator_inputs_on("cuda")  # test_fused_ops' sizes: 6 atoms, 30 edges
    leaves = [t.requires_grad_(True) for t in features]
    operator = lambda *f: torch.ops.tpainn.painn_message(*f, centres, neighbours)  # noqa: E731
    # index_add on CUDA sums with atomics, in no fixed order: a repeated backward may differ in the last bits.
    assert torch.autograd.gradcheck(operator, leaves, nondet_tol=1e-12)
    assert torch.autograd.gradgradcheck(operator, leaves, nondet_tol=1e-12)


@pytest.mark.parametrize("fused", [True, False])
def test_training_loss_gradient_on_cuda_matches_cpu(fused):
    """Energy, forces and stress in the loss (second derivatives), the model on the GPU."""
    model = make_model().train()
    if fused:
        fuse_messages(model)
    frames = [SYSTEMS["triclinic water"](), water_box(6, 5.0, seed=3)]
    inputs = model_inputs(batch_of(frames, model.cutoff))
    gradients = {}
    for device, net in (("cpu", model), ("cuda", copy.deepcopy(model).to("cuda"))):
        out = net(*(t.to(device) if torch.is_tensor(t) else t for t in inputs), compute_forces=True, compute_stress=True)
        loss = out["energy"].square().sum() + out["forces"].square().sum() + out["stress"].square().sum()
        gradients[device] = [g.cpu() for g in torch.autograd.grad(loss, list(net.parameters()))]
    for (name, _), got, want in zip(model.named_parameters(), gradients["cuda"], gradients["cpu"]):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10, msg=name)


def test_lammps_pair_style_on_cuda_matches_cpu(tmp_path):
    from test_lammps_plugin import run_lammps

    path = export_model(make_model(), tmp_path / "model.pt", fused=True)
    atoms = water_box(64, 12.4, seed=5)
    cpu = run_lammps(atoms, path, pair_style=f"pair_style tpainn {path} device cpu")
    cuda = run_lammps(atoms, path, pair_style=f"pair_style tpainn {path} device cuda")
    assert abs(cuda["energy"] - cpu["energy"]) <= FLOAT64_TOL * abs(cpu["energy"])
    for key in ("energies", "forces", "pressure"):
        assert_close(cuda[key], cpu[key], FLOAT64_TOL, key)
    assert np.abs(cpu["pressure"]).max() > 1.0  # bar: the comparison is not between zeros
