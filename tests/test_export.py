"""Export: metadata, the CLI round trip, tpainn.load_exported, and clear errors for bad files and inputs."""

import json

import numpy as np
import pytest
import torch
from ase import Atoms

from conftest import batch_of, water_box
from helpers.models import make_model
from tpainn import TPaiNNCalculator, load_exported
from tpainn.cli import main as cli
from tpainn.data.graph import model_inputs
from tpainn.export import FORMAT_FILE, FORMAT_VERSION, export_model
from tpainn.train import load_trained


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_model(make_model(), tmp_path_factory.mktemp("export") / "model.pt")


def test_cli_export_round_trip(tmp_path, pretrained_model):
    output = tmp_path / "water.pt"
    assert cli(["export", str(pretrained_model), "-o", str(output)]) == 0
    loaded = load_exported(output)
    meta = loaded.metadata
    assert meta["format"] == "tpainn-exported-model" and meta["format_version"] == FORMAT_VERSION == 4
    assert meta["repulsion"].startswith("ZBL below the training data")
    assert meta["species"] == ["H", "O"] and meta["atomic_numbers"] == [1, 8]
    assert meta["cutoff"] == 3.0 and meta["n_interactions"] == 2 and meta["receptive_field"] == 6.0
    assert meta["units"] == {"energy": "eV", "length": "Å", "forces": "eV/Å", "virial": "eV", "stress": "eV/Å^3"}
    assert meta["dtype"] == "float64" and meta["tpainn_version"] and meta["torch_version"] == torch.__version__
    assert meta["provenance"]["datasets"] == ["water-revpbe0-d3"] and meta["provenance"]["mode"] == "from-scratch"
    # The C++ engine reads the same metadata and runs the same function as the trained model.
    atoms = water_box(8, 6.0, seed=1)
    calc = TPaiNNCalculator(output)
    assert list(calc.engine.species) == ["H", "O"] and calc.engine.cutoff == 3.0 and calc.engine.n_interactions == 2
    assert json.loads(calc.engine.metadata_json) == meta
    atoms.calc = calc
    trained = load_trained(pretrained_model)
    ref = trained(*model_inputs(batch_of([atoms], 3.0)), compute_forces=True)
    assert atoms.get_potential_energy() == pytest.approx(ref["energy"].item(), abs=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), ref["forces"].detach().numpy(), rtol=0, atol=1e-10)
    assert meta["fused_operators"] == ["tpainn::painn_message", "tpainn::ghost_exchange"]
    # --unfused: plain TorchScript operators, the same function.
    assert cli(["export", str(pretrained_model), "-o", str(tmp_path / "plain.pt"), "--unfused"]) == 0
    assert load_exported(tmp_path / "plain.pt").metadata["fused_operators"] == []
    plain = water_box(8, 6.0, seed=1)
    plain.calc = TPaiNNCalculator(tmp_path / "plain.pt")
    assert plain.get_potential_energy() == pytest.approx(atoms.get_potential_energy(), abs=1e-10)


def bad_files(tmp_path, pretrained_model):
    linear = tmp_path / "linear.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 1)), str(linear))
    text = tmp_path / "notes.pt"
    text.write_text("not a model")
    future = tmp_path / "future.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 1)), str(future), _extra_files={FORMAT_FILE: "tpainn-exported-model 99"})
    return [
        (tmp_path / "missing.pt", FileNotFoundError, "no such file"),
        (linear, ValueError, "TorchScript file but not a T-PaiNN model"),
        (text, ValueError, "is not a TorchScript file"),
        (pretrained_model, ValueError, r"is not a TorchScript file \(training outputs are converted with `tpainn export"),
        (future, ValueError, "format version 99"),
    ]


def test_bad_model_files_give_clear_errors(tmp_path, pretrained_model):
    for path, error, message in bad_files(tmp_path, pretrained_model):
        for load in (load_exported, TPaiNNCalculator):
            with pytest.raises(error, match=message) as info:
                load(path)
            assert str(path) in str(info.value)


def test_bad_inputs_give_clear_errors(exported):
    calc = TPaiNNCalculator(exported)
    methane = Atoms("CH4", positions=np.random.default_rng(0).uniform(0, 2, (5, 3)))
    with pytest.raises(ValueError, match=r"element\(s\) C not in the model's species \['H', 'O'\]"):
        calc.get_potential_energy(methane)
    with pytest.raises(ValueError, match=r"atom 0 has atomic number 6, which is not among the model's species \[H, O\]"):
        calc.engine.compute(methane.positions, methane.numbers, np.zeros((3, 3)), [False] * 3, False)
    atoms = water_box(4, 5.0, seed=2)
    atoms.positions[3] = np.nan
    with pytest.raises(ValueError, match="position of atom 3 is not finite"):
        TPaiNNCalculator(exported).get_forces(atoms)
    atoms = water_box(4, 5.0, seed=2)
    atoms.positions[5] = atoms.positions[1] + [0.05, 0, 0]
    with pytest.raises(ValueError, match=r"atoms (1 and 5|5 and 1) are 0.05\d* Å apart.*overlapping atoms"):
        TPaiNNCalculator(exported).get_forces(atoms)
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
        TPaiNNCalculator(exported, dtype="float16")
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cuda:K'"):
        TPaiNNCalculator(exported, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="built without CUDA or sees no GPU"):
            TPaiNNCalculator(exported, device="cuda")
