"""D3 dispersion outside the network (tpainn/dispersion.py): against dftd3 and LAMMPS' dispersion/d3, finite
differences, the label round trip and its cache, the exported metadata, the ASE calculator, `tpainn md` and
pair_style tpainn's refusal to run a D3-trained model without D3."""

import json

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from conftest import strain_derivative
from helpers.lammps import box_commands, lower_triangular
from helpers.models import make_model
from tpainn import TPaiNNCalculator, dispersion, load_exported
from tpainn.classical.lammps_runtime import new_lammps
from tpainn.data import load_frames
from tpainn.data.labels import attach_labels, stress_of
from tpainn.export import FORMAT_FILE, METADATA_FILE, export_model
from tpainn.md.potentials import resolve_potential
from tpainn.train import autotune, load_config
from tpainn.train.checkpoint import model_file, save_atomic
from tpainn.train.trainer import split_frames

SPEC = "d3(zero):revpbe0"  # the D3 of the revPBE0-D3 set, at the default 15 Å cutoff
NKTV2P = 1.6021765e6  # eV/Å³ -> bar (LAMMPS metal)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TPAINN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def frame(data_dir):
    """The first revPBE0-D3 frame, wrapped into its cubic box (LAMMPS wants atoms inside it)."""
    return lower_triangular(load_frames("water-revpbe0-d3")[0].copy())


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The same small network exported with and without D3."""
    folder = tmp_path_factory.mktemp("d3-models")
    return {
        kind: export_model(make_model(dispersion=spec), folder / f"{kind}.pt")
        for kind, spec in (("plain", "none"), ("d3", SPEC))
    }


def lammps_run(atoms, pair_commands):
    """LAMMPS `run 0` (metal units, types 1 = H, 2 = O): energy (eV), forces (eV/Å), stress (3×3, eV/Å³, ASE
    sign)."""
    with new_lammps() as lmp:
        lmp.commands_list(box_commands(atoms))
        types = [1 if s == "H" else 2 for s in atoms.get_chemical_symbols()]
        lmp.create_atoms(len(atoms), list(range(1, len(atoms) + 1)), types, atoms.positions.ravel().tolist())
        lmp.commands_list([*pair_commands, "thermo_style custom step pe pxx pyy pzz pxy pxz pyz", "run 0"])
        order = np.argsort(lmp.numpy.extract_atom("id")[: len(atoms)])
        xx, yy, zz, xy, xz, yz = (lmp.get_thermo(k) / NKTV2P for k in ("pxx", "pyy", "pzz", "pxy", "pxz", "pyz"))
        return lmp.get_thermo("pe"), lmp.numpy.extract_atom("f")[: len(atoms)][order].copy(), -np.array(
            [[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]]
        )


def test_d3_equals_dftd3_and_lammps_dispersion_d3(frame):
    d3 = dispersion.parse(SPEC)
    energy, forces, stress = dispersion.compute(frame, d3)
    assert energy < -10.0 and np.abs(forces).max() > 0.03 and np.trace(stress) > 0.01  # liquid water, 15 Å

    # dftd3 directly, through its own ASE calculator, with CP2K's revPBE0 zero-damping parameters written out.
    from dftd3.ase import DFTD3

    direct = frame.copy()
    direct.calc = DFTD3(damping="d3zero", params_tweaks={"s6": 1.0, "rs6": 0.949, "s8": 0.792, "s9": 0.0},
                        realspace_cutoff={"disp2": d3.cutoff, "cn": d3.cn_cutoff})  # fmt: skip
    assert direct.get_potential_energy() == pytest.approx(energy, rel=1e-12)
    np.testing.assert_allclose(direct.get_forces(), forces, rtol=0, atol=1e-12)
    np.testing.assert_allclose(direct.get_stress(voigt=False), stress, rtol=0, atol=1e-14)

    # LAMMPS' own implementation; it and dftd3 differ only in the bohr and hartree constants (~1e-6).
    lmp_energy, lmp_forces, lmp_stress = lammps_run(frame, [f"pair_style {d3.lammps_style()}", "pair_coeff * * H O"])
    assert lmp_energy == pytest.approx(energy, rel=1e-5)
    np.testing.assert_allclose(lmp_forces, forces, rtol=0, atol=1e-5 * np.abs(forces).max())
    np.testing.assert_allclose(lmp_stress, stress, rtol=0, atol=1e-5 * np.abs(stress).max())


def cluster() -> Atoms:
    """Three water molecules within 6 Å, in a 25 Å periodic box: with a 10 Å cutoff no pair (image pairs are
    > 19 Å apart) lies near the cutoff, so the energy is smooth under the finite-difference steps."""
    atoms = Atoms(cell=np.eye(3) * 25.0, pbc=True)
    for shift in ([10.0, 10.0, 10.0], [12.8, 10.4, 10.3], [11.1, 12.6, 11.2]):
        water = molecule("H2O")
        water.rotate(np.sum(shift) * 7.0, "z")
        water.translate(shift)
        atoms += water
    return atoms


def test_forces_and_stress_are_derivatives_of_the_energy():
    d3 = dispersion.parse("d3(zero):revpbe0:10")
    atoms = cluster()
    _, forces, stress = dispersion.compute(atoms, d3)
    energy = lambda a: dispersion.compute(a, d3)[0]  # noqa: E731
    h = 1e-4
    for i in (0, 4, 7):
        for k in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, k] += h
            minus.positions[i, k] -= h
            assert -(energy(plus) - energy(minus)) / (2 * h) == pytest.approx(forces[i, k], abs=1e-7)
    np.testing.assert_allclose(strain_derivative(atoms, energy, h=1e-5), stress, rtol=0, atol=1e-9)
    assert np.abs(stress).max() > 1e-6


def test_labels_subtract_and_add_back_through_the_cache(frame, cache_dir):
    labelled = attach_labels(frame.copy(), -30000.0, np.full((len(frame), 3), 0.25), np.diag([0.01, 0.02, 0.03]))
    d3 = dispersion.parse(SPEC)
    energy, forces, stress = dispersion.compute(frame, d3)

    (without,) = dispersion.without_dispersion([labelled], SPEC, "water-revpbe0-d3")
    assert without.get_potential_energy() == pytest.approx(-30000.0 - energy, abs=1e-9)
    np.testing.assert_allclose(without.get_forces(), 0.25 - forces, rtol=0, atol=1e-12)
    np.testing.assert_allclose(stress_of(without, "frame"), np.diag([0.01, 0.02, 0.03]) - stress, rtol=0, atol=1e-15)
    (back,) = dispersion.with_dispersion([without], SPEC)
    assert back.get_potential_energy() == pytest.approx(-30000.0, abs=1e-9)
    np.testing.assert_allclose(back.get_forces(), labelled.get_forces(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(stress_of(back, "frame"), stress_of(labelled, "frame"), rtol=0, atol=1e-15)

    # Computed once: the cache holds one file for the frame and the spec, and returns identical values.
    files = list((cache_dir / "dispersion").glob("*.npz"))
    assert len(files) == 1
    cached = dispersion.cached(frame, d3)
    assert cached[0] == energy and np.array_equal(cached[1], forces) and np.array_equal(cached[2], stress)
    dispersion.cached(frame, dispersion.parse("d3(zero):revpbe0:10"))  # another spec, another entry
    assert len(list((cache_dir / "dispersion").glob("*.npz"))) == 2
    assert dispersion.without_dispersion([labelled], "none") == [labelled]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("d3:revpbe0", "expected 'none' or 'd3(zero|bj)"),
        ("d3(zero):nosuchfunctional", "dftd3 has no zero-damping D3 parameters"),
        ("d3(zero):revpbe0:-1", "expected 'none'"),
        ("d3(bj):revpbe0", "differs from the D3 that water-revpbe0-d3 was computed with (d3(zero):revpbe0:30)"),
    ],
)
def test_bad_or_mismatched_specs_are_refused_in_one_line(frame, spec, message):
    labelled = attach_labels(frame.copy(), 0.0)
    with pytest.raises(ValueError) as error:
        dispersion.without_dispersion([labelled], spec, "water-revpbe0-d3")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_training_splits_are_dft_minus_d3(data_dir):
    spec = "d3(zero):revpbe0:8"  # a short cutoff: all 111 frames in a second or two
    config = load_config(None, [f"model.dispersion={spec}", "split.n_train=4", "split.n_val=2"])
    train, _, test = split_frames(config)
    raw = load_frames("water-revpbe0-d3")
    for frame, index in ((train[0], train.indices[0]), (test[-1], test.indices[-1])):
        energy, forces, _ = dispersion.compute(raw[index], dispersion.parse(spec))
        assert frame.get_potential_energy() == pytest.approx(raw[index].get_potential_energy() - energy, abs=1e-9)
        np.testing.assert_allclose(frame.get_forces(), raw[index].get_forces() - forces, rtol=0, atol=1e-12)


def test_autotuning_may_add_dispersion_to_a_pretrained_model(tmp_path):
    pretrained = tmp_path / "model.pt"
    save_atomic(model_file(make_model(), {}), pretrained)
    overrides = ["model.cutoff=4.0", "model.n_features=16", "model.n_interactions=2", "model.n_rbf=8",
                 "model.dtype=float64", f"model.dispersion={SPEC}", f"autotune.from={pretrained}"]  # fmt: skip
    model = autotune.load_pretrained(load_config(None, overrides), ["H", "O"])
    assert model.hyperparameters["dispersion"] == "d3(zero):revpbe0:15"


def test_exported_metadata_records_the_dispersion(models, tmp_path):
    assert load_exported(models["d3"]).metadata["dispersion"] == "d3(zero):revpbe0:15"
    assert load_exported(models["plain"]).metadata["dispersion"] == "none"
    assert make_model(dispersion=SPEC).hyperparameters["dispersion"] == "d3(zero):revpbe0:15"
    # A file exported before the key existed reads as "none".
    extra = {FORMAT_FILE: "", METADATA_FILE: ""}
    module = torch.jit.load(str(models["plain"]), _extra_files=extra)
    metadata = json.loads(extra[METADATA_FILE])
    del metadata["dispersion"]
    old = tmp_path / "old.pt"
    extra[METADATA_FILE] = json.dumps(metadata)
    torch.jit.save(module, str(old), _extra_files=extra)
    assert load_exported(old).metadata["dispersion"] == "none"


def test_calculator_adds_d3(models, frame):
    plain, with_d3 = frame.copy(), frame.copy()
    plain.calc, with_d3.calc = TPaiNNCalculator(models["plain"]), TPaiNNCalculator(models["d3"])
    energy, forces, stress = dispersion.compute(frame, dispersion.parse(SPEC))
    assert with_d3.get_potential_energy() - plain.get_potential_energy() == pytest.approx(energy, abs=1e-8)
    np.testing.assert_allclose(with_d3.get_forces() - plain.get_forces(), forces, rtol=0, atol=1e-10)
    added_stress = with_d3.get_stress(voigt=False) - plain.get_stress(voigt=False)
    np.testing.assert_allclose(added_stress, stress, rtol=0, atol=1e-12)
    assert with_d3.get_potential_energies().sum() == pytest.approx(with_d3.get_potential_energy(), abs=1e-8)


def test_md_input_overlays_dispersion_d3(models):
    plain, d3 = resolve_potential(str(models["plain"]), 128), resolve_potential(str(models["d3"]), 128)
    assert not any("dispersion/d3" in c for c in plain.style_commands + plain.coefficient_commands)
    style = next(c for c in d3.style_commands if c.startswith("pair_style"))
    assert style.startswith("pair_style hybrid/overlay tpainn ")
    assert style.endswith(" dispersion/d3 original revpbe0 15.0 15.0")
    assert {"pair_coeff * * tpainn O H", "pair_coeff * * dispersion/d3 O H"} <= set(d3.coefficient_commands)


def test_pair_style_tpainn_refuses_a_d3_model_without_d3(models, frame):
    with pytest.raises(Exception, match=r"trained without D3 dispersion \(d3\(zero\):revpbe0:15\)"):
        lammps_run(frame, [f"pair_style tpainn {models['d3']}", "pair_coeff * * H O"])
    # Overlaid with the D3 it was trained without, it gives what the ASE calculator gives.
    d3 = dispersion.parse(SPEC)
    energy, forces, stress = lammps_run(frame, [
        f"pair_style hybrid/overlay tpainn {models['d3']} {d3.lammps_style()}",
        "pair_coeff * * tpainn H O", "pair_coeff * * dispersion/d3 H O", "neigh_modify one 4000 page 40000",
    ])  # fmt: skip
    reference = frame.copy()
    reference.calc = TPaiNNCalculator(models["d3"])
    assert energy == pytest.approx(reference.get_potential_energy(), rel=1e-6)
    np.testing.assert_allclose(forces, reference.get_forces(), rtol=0, atol=1e-5 * np.abs(forces).max())
    np.testing.assert_allclose(stress, reference.get_stress(voigt=False), rtol=0, atol=1e-5 * np.abs(stress).max())
