"""The fused message operator (csrc/ops, tpainn.model.fused): against the eager model, gradcheck and gradgradcheck,
the C++ engine, and clear errors where the operator is missing or misused."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from ase.stress import full_3x3_to_voigt_6_stress

from conftest import batch_of, water_box
from helpers.models import make_model
from helpers.systems import SYSTEMS
from tpainn import TPaiNNCalculator, _C, load_exported
from tpainn.data.graph import model_inputs
from tpainn.export import FORMAT_FILE, FORMAT_VERSION, METADATA_FILE, export_model
from tpainn.model.fused import fuse

MODELS = {
    "gaussian": {},
    "bessel, shared filters": dict(rbf="bessel", shared_filters=True, n_interactions=3),
}


def evaluate(model, atoms):
    stress = bool(atoms.pbc.all())
    out = model(*model_inputs(batch_of([atoms], model.cutoff)), compute_forces=True, compute_stress=stress)
    return {k: v.detach().numpy() for k, v in out.items()}


@pytest.mark.parametrize("options", list(MODELS))
@pytest.mark.parametrize("system", ["periodic water", "triclinic water", "molecule"])
def test_fused_model_matches_eager(options, system):
    model = make_model(**MODELS[options])
    atoms = SYSTEMS[system]()
    ref, out = evaluate(model, atoms), evaluate(fuse(model), atoms)
    assert set(out) == set(ref)
    for key in ref:
        np.testing.assert_allclose(out[key], ref[key], rtol=0, atol=1e-10, err_msg=key)
    assert np.abs(ref["forces"]).max() > 1e-3


def test_fused_float32_matches_eager_float32():
    model = make_model(dtype="float32")
    atoms = water_box(10, 7.0, seed=21)
    ref, out = evaluate(model, atoms), evaluate(fuse(model), atoms)
    np.testing.assert_allclose(out["forces"], ref["forces"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(out["stress"], ref["stress"], rtol=0, atol=1e-6)


def operator_inputs(n_atoms=6, n_edges=30, n_features=5, n_radial=4, seed=0):
    """Random inputs in float64, edges in random order; the last atom has no edges at all."""
    g = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    unit = rand(n_edges, 3)
    unit = unit / unit.norm(dim=1, keepdim=True)
    centres, neighbours = torch.randint(0, n_atoms - 1, (2, n_edges), generator=g)
    features = [rand(n_atoms, n_features), rand(n_atoms, 3, n_features), rand(n_atoms, 3 * n_features),
                rand(n_edges, n_radial), rand(n_radial, 3 * n_features), unit]  # fmt: skip
    return features, centres, neighbours


def test_operator_gradcheck_and_gradgradcheck():
    """First and second derivatives (the backward's backward: training with forces in the loss)."""
    features, centres, neighbours = operator_inputs()
    leaves = [t.requires_grad_(True) for t in features]
    operator = lambda *f: torch.ops.tpainn.painn_message(*f, centres, neighbours)  # noqa: E731
    assert torch.autograd.gradcheck(operator, leaves)
    assert torch.autograd.gradgradcheck(operator, leaves)


@pytest.mark.parametrize("weight_gradient", [True, False])
def test_backward_operator_gradcheck_and_gradgradcheck(weight_gradient):
    """The backward operator's own derivatives, and theirs (third derivatives of the message block)."""
    features, centres, neighbours = operator_inputs(n_atoms=5, n_edges=16, n_features=3, n_radial=3, seed=5)
    g = torch.Generator().manual_seed(6)
    grad_s, grad_v = (torch.randn(t.shape, generator=g, dtype=torch.float64) for t in features[:2])
    leaves = [t.requires_grad_(True) for t in (grad_s, grad_v, *features[1:])]

    def operator(*inputs):
        grads = torch.ops.tpainn.painn_message_backward(*inputs, centres, neighbours, weight_gradient)
        return tuple(grads if weight_gradient else grads[:4])

    assert torch.autograd.gradcheck(operator, leaves)
    assert torch.autograd.gradgradcheck(operator, leaves)


@pytest.mark.parametrize("edges_per_chunk", [0, 7])  # one chunk (automatic size); nine, the last one partial
@pytest.mark.parametrize("weight_gradient", [True, False])
def test_aten_kernels_of_other_devices_match_the_cpu_kernels(weight_gradient, edges_per_chunk):
    """On CUDA (any backend but the CPU) the operator runs as ATen operations, a chunk of edges at a time: same
    values and gradients."""
    features, centres, neighbours = operator_inputs(n_atoms=9, n_edges=60, seed=3)
    fused = torch.ops.tpainn.painn_message(*features, centres, neighbours)
    aten = _C.painn_message_aten(*features, centres, neighbours, edges_per_chunk=edges_per_chunk)
    for got, want in zip(aten, fused):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    g = torch.Generator().manual_seed(4)
    grad_s, grad_v = (torch.randn(t.shape, generator=g, dtype=torch.float64) for t in fused)
    arguments = (grad_s, grad_v, *features[1:], centres, neighbours, weight_gradient)
    want = torch.ops.tpainn.painn_message_backward(*arguments)
    got = _C.painn_message_backward_aten(*arguments, edges_per_chunk=edges_per_chunk)
    for name, a, b in zip(["v", "x", "radial", "unit_vectors", "weight"], got, want):
        if name == "weight" and not weight_gradient:
            assert a is None or a.numel() == 0
            continue
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12, msg=name)
        assert b.abs().max() > 1e-3, name
    # The dispatcher sends tensors of a device without a fused kernel there (the meta device stands in for CUDA).
    on_meta = torch.ops.tpainn.painn_message(*(t.to("meta") for t in features), centres.to("meta"), neighbours.to("meta"))
    assert [t.shape for t in on_meta] == [t.shape for t in fused] and on_meta[0].device.type == "meta"


def test_bad_operator_inputs_give_clear_errors():
    features, centres, neighbours = operator_inputs()
    with pytest.raises(RuntimeError, match=r"weight must be \[K, 3F\]"):
        torch.ops.tpainn.painn_message(*features[:4], features[4][:, 1:], features[5], centres, neighbours)
    with pytest.raises(RuntimeError, match="one dtype"):
        torch.ops.tpainn.painn_message(features[0].float(), *features[1:], centres, neighbours)
    with pytest.raises(IndexError, match=r"edge 3 refers to atom 6, outside \[0, 6\)"):
        torch.ops.tpainn.painn_message(*features, centres, neighbours.index_fill(0, torch.tensor([3]), 6))


@pytest.mark.parametrize("fused", [True, False])
def test_engine_matches_eager_model(fused, tmp_path):
    model = make_model()
    path = export_model(model, tmp_path / "model.pt", fused=fused)
    assert load_exported(path).metadata["fused_operators"] == (["tpainn::painn_message", "tpainn::ghost_exchange"] if fused else [])
    for system in ("triclinic water", "molecule"):
        atoms = SYSTEMS[system]()
        ref = evaluate(model, atoms)
        atoms.calc = TPaiNNCalculator(path)
        assert atoms.get_potential_energy() == pytest.approx(ref["energy"][0], abs=1e-10)
        np.testing.assert_allclose(atoms.get_forces(), ref["forces"], rtol=0, atol=1e-10)
        if atoms.pbc.all():
            stress = full_3x3_to_voigt_6_stress(ref["stress"][0])
            np.testing.assert_allclose(atoms.get_stress(), stress, rtol=0, atol=1e-10)


def test_fused_export_without_the_extension_gives_a_clear_error(tmp_path):
    path = export_model(make_model(), tmp_path / "model.pt")
    script = (
        "import tpainn.export as export\n"
        "def unavailable(): raise ImportError('tpainn._C: simulated')\n"
        "export.load_extension = unavailable\n"
        f"export.load_exported({str(path)!r})\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode != 0
    assert "fused T-PaiNN export: it calls tpainn::painn_message, which is not registered in this process " \
           "(tpainn._C: simulated)" in run.stderr and "fused=False" in run.stderr  # fmt: skip


def test_engine_names_an_operator_it_does_not_have(tmp_path):
    """A file from a newer tpainn calling an operator this build lacks (defined here only for the export)."""
    library = torch.library.Library("tpainn", "FRAGMENT")
    library.define("operator_from_the_future(Tensor x) -> Tensor")

    class Future(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ops.tpainn.operator_from_the_future(x)

    path = tmp_path / "future.pt"
    extra_files = {FORMAT_FILE: f"tpainn-exported-model {FORMAT_VERSION}", METADATA_FILE: "{}"}
    torch.jit.save(torch.jit.script(Future()), str(path), _extra_files=extra_files)
    script = f"from tpainn import _C\n_C.Engine({str(path)!r})\n"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    expected = "fused T-PaiNN export: it calls tpainn::operator_from_the_future, which this tpainn build does not have"
    assert expected in run.stderr
