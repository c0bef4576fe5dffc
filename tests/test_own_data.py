"""A user's own data: frame sources for the pool and the test set, label keys, ASE databases, mixed cells and
compositions, `tpainn data info` and `tpainn classical for` on any file."""

import json

import ase.db
import ase.io
import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from conftest import tiny_config
from tpainn.cli import main as cli
from tpainn.data import DataError, load_dataset, read, write_frames
from tpainn.data.sources import source_record
from tpainn.experiments.learning_curve import load_experiment, run_learning_curve
from tpainn.train.reference_energies import fit_reference_energies
from tpainn.train.trainer import split_frames

TINY_MODEL = {"n_features": 8, "n_interactions": 1, "n_rbf": 4, "cutoff": 3.0, "dtype": "float64"}


@pytest.fixture(scope="module")
def revpbe0_files(tmp_path_factory, data_dir):
    """The 111 revPBE0-D3 frames as the user might have them: pool (frames 0-89) and test (90-110) files, in
    extended XYZ (as ase writes them) and in HDF5, and all 111 frames in one extended XYZ file."""
    out = tmp_path_factory.mktemp("sources")
    frames = load_dataset("water-revpbe0-d3")
    files = {}
    for name, part in (("pool", frames[:90]), ("test", frames[90:]), ("all", frames)):
        ase.io.write(out / f"{name}.xyz", part, format="extxyz")
        write_frames(out / f"{name}.h5", part)
        files[name] = {"xyz": out / f"{name}.xyz", "h5": out / f"{name}.h5"}
    return files


def _curve(tmp_path, name, dataset, test, epochs=2):
    config, _ = tiny_config(tmp_path, "unused", epochs)
    config["model"].update(TINY_MODEL)
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    experiment = {"train_config": "train.yaml", "dataset": str(dataset), "test": test, "sizes": [4], "seeds": [1],
                  "variants": {"scratch": {}}, "output_dir": str(tmp_path / name)}  # fmt: skip
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(experiment))
    return load_experiment(tmp_path / f"{name}.yaml")


def test_registry_extxyz_and_hdf5_give_the_same_learning_curve(tmp_path, revpbe0_files):
    """Same frames by registry name (standard split), as pool + test extxyz files and as pool + test HDF5 files:
    the same training, validation and test frames, and the same test errors to round-off (extxyz stores 8 decimals)."""
    sources = {
        "registry": ("water-revpbe0-d3", "standard"),
        "xyz": (revpbe0_files["pool"]["xyz"], str(revpbe0_files["test"]["xyz"])),
        "h5": (revpbe0_files["pool"]["h5"], str(revpbe0_files["test"]["h5"])),
    }
    rows, splits = {}, {}
    for name, (dataset, test) in sources.items():
        experiment = _curve(tmp_path, name, dataset, test)
        (row,) = run_learning_curve(experiment)
        rows[name] = row
        config = yaml.safe_load((tmp_path / name / "scratch-N4-seed1" / "config.yaml").read_text())
        splits[name] = [np.array([a.positions for a in part]) for part in split_frames(config)]
        recorded = json.loads((tmp_path / name / "sources.json").read_text())
        assert recorded["pool"]["sha256"] == source_record(dataset)["sha256"]
        assert (tmp_path / name / "results.md").read_text().startswith(f"DFT pool: {recorded['pool']['source']} (sha256 ")
    for name in ("xyz", "h5"):
        for reference, part in zip(splits["registry"], splits[name]):  # train, validation, test
            np.testing.assert_allclose(part, reference, atol=1e-8)
        assert rows[name]["n_test_frames"] == 21
        for metric in ("energy_per_atom_mae", "forces_mae", "energy_mae"):
            np.testing.assert_allclose(rows[name][metric], rows["registry"][metric], rtol=1e-9 if name == "h5" else 1e-5)
    assert rows["registry"]["forces_mae"] > 0.05  # two epochs of a tiny model: errors far above round-off


def test_a_test_fraction_is_the_same_split_of_any_source(tmp_path, revpbe0_files):
    configs = {}
    for name, dataset in (("registry", "water-revpbe0-d3"), ("xyz", revpbe0_files["all"]["xyz"])):
        config, _ = tiny_config(tmp_path, name, 1)
        config["data"].update(dataset=str(dataset), test=0.2, test_seed=3)
        configs[name] = [np.array([a.positions for a in part]) for part in split_frames(config)]
    expected_test = np.sort(np.random.default_rng(3).permutation(111)[:22])  # round(0.2 · 111) = 22
    frames = load_dataset("water-revpbe0-d3")
    np.testing.assert_allclose(configs["registry"][2], [frames[i].positions for i in expected_test])
    for reference, part in zip(configs["registry"], configs["xyz"]):
        np.testing.assert_allclose(part, reference, atol=1e-8)
    test_keys = {a.tobytes() for a in configs["registry"][2]}
    assert not any(a.tobytes() in test_keys for a in [*configs["registry"][0], *configs["registry"][1]])


def test_refusals_of_test_settings(tmp_path, revpbe0_files):
    config, _ = tiny_config(tmp_path, "x", 1)
    config["data"].update(dataset=str(revpbe0_files["pool"]["xyz"]), test="standard")
    with pytest.raises(ValueError, match="is not a registry dataset and has no standard split"):
        split_frames(config)
    config["data"].update(test=str(revpbe0_files["all"]["h5"]))
    with pytest.raises(ValueError, match="90 of the 111 test frames .* are also in the pool"):
        split_frames(config)
    assert cli(["train", "/dev/null", "data.test=1.5"]) == 1


def _labelled(atoms, energy, forces=None, stress=None):
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
    return atoms


def test_extxyz_label_keys_chosen_by_the_user(tmp_path, capsys):
    rng = np.random.default_rng(0)
    frames = []
    for i in range(3):
        atoms = bulk("Cu", cubic=True)
        atoms.rattle(0.05, seed=i)
        atoms.info.update(REF_energy=-10.0 - i, REF_stress=rng.normal(size=6) * 1e-3)
        atoms.arrays["REF_forces"] = rng.normal(size=(4, 3))
        frames.append(_labelled(atoms, 99.0, np.zeros((4, 3))))  # ASE's own keys hold other (wrong) values
    path = tmp_path / "ref.xyz"
    ase.io.write(path, frames, format="extxyz")
    read_back = read(path, energy_key="REF_energy", forces_key="REF_forces", stress_key="REF_stress")
    for atoms, original in zip(read_back, frames):
        assert atoms.get_potential_energy() == original.info["REF_energy"]
        np.testing.assert_allclose(atoms.get_forces(), original.arrays["REF_forces"], atol=1e-8)
        np.testing.assert_allclose(atoms.get_stress(), original.info["REF_stress"], atol=1e-12)
    assert read(path)[0].get_potential_energy() == 99.0
    with pytest.raises(DataError, match="no column 'dft_forces' for the forces .*REF_forces"):
        read(path, forces_key="dft_forces")
    with pytest.raises(DataError, match="energy_key apply to extxyz and ase-db files, not to h5"):
        read(tmp_path / "x.h5", format="h5", energy_key="e")
    assert cli(["data", "info", str(path), "--energy-key", "REF_energy", "--forces-key", "REF_forces",
                "--stress-key", "REF_stress"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "frames:          3" in out and "energy:          -12 to -10 eV" in out and "stress:          3 of 3 frames" in out


def _emt_frames(n_frames: int, seed: int = 0) -> list:
    """Cu/Au/Ni structures of varying composition, periodicity and cell: triclinic bulk, slabs periodic in x and y,
    tetrahedral clusters; EMT energies plus per-element offsets far larger than EMT's own (like DFT's atomic energies)."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_frames):
        kind = i % 3
        if kind == 0:
            atoms = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)  # primitive (triclinic) cell, 2 atoms
        elif kind == 1:
            atoms = fcc111("Cu", size=(2, 2, 2), vacuum=6.0)  # periodic in x, y only
        else:
            atoms = Atoms("Cu4", positions=[[0, 0, 0], [2.5, 0, 0], [1.25, 2.17, 0], [1.25, 0.72, 2.04]])  # a tetrahedron
        atoms.info.pop("adsorbate_info", None)  # fcc111 bookkeeping, not a label
        atoms.numbers = rng.choice([29, 79, 28], size=len(atoms))
        atoms.rattle(0.1, seed=seed * 1000 + i)
        atoms.calc = EMT()
        energy = atoms.get_potential_energy() + sum(OFFSETS[s] for s in atoms.get_chemical_symbols())
        frames.append(_labelled(atoms, energy, atoms.get_forces()))
    return frames


OFFSETS = {"Cu": -1000.0, "Au": -2000.0, "Ni": -500.0}


def test_mixed_compositions_separate_the_elements_and_train(tmp_path, capsys):
    frames = _emt_frames(24)
    assert len({a.get_chemical_formula() for a in frames}) > 10
    references = fit_reference_energies(frames, ["Ni", "Cu", "Au"])
    # EMT's own energies are a few eV per atom (random clusters): the offsets come back within that, where a fit that
    # shared the energy out by counts (as for (H2O)64) would miss them by hundreds of eV.
    np.testing.assert_allclose(references, [OFFSETS["Ni"], OFFSETS["Cu"], OFFSETS["Au"]], atol=5.0)
    path = tmp_path / "alloys.xyz"
    ase.io.write(path, frames, format="extxyz")
    assert cli(["data", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "reference fit:   separates the elements" in out and "periodic in xy, triclinic" in out
    assert "triclinic" in out and "no periodicity" in out
    config, overrides = tiny_config(tmp_path, "alloys", 3)
    overrides += [f"model.{k}={v}" for k, v in TINY_MODEL.items()]
    assert cli(["train", "/dev/null", *overrides, f"data.dataset={path}", "data.test=0.25", "split.n_train=12",
                "split.n_val=6"]) == 0  # fmt: skip
    metrics = json.loads((tmp_path / "alloys" / "test_metrics.json").read_text())
    assert metrics["n_frames"] == 6 and metrics["data"]["test"] == "fraction 0.25 of the pool"
    # The energy per atom is learnt on the right scale: far below the offsets' hundreds of eV per atom.
    assert metrics["energy_per_atom_mae"] < 1.0


def test_ase_database_rows_with_their_own_cells_and_keys(tmp_path):
    path = tmp_path / "user.db"
    water = _labelled(molecule("H2O"), -14.2, np.full((3, 3), 0.1))
    copper = _labelled(bulk("Cu", cubic=True), -15.0, np.zeros((4, 3)), stress=np.arange(6) * 1e-3)
    with ase.db.connect(path) as db:
        db.write(water, dft_e=-1.5, data={"dft_f": np.ones((3, 3))})
        db.write(copper, dft_e=-2.5, data={"dft_f": np.full((4, 3), 2.0)})
    default, keyed = read(path), read(path, energy_key="dft_e", forces_key="dft_f")
    assert [a.pbc.all() for a in default] == [False, True]
    assert [a.get_potential_energy() for a in default] == [-14.2, -15.0]
    assert [a.get_potential_energy() for a in keyed] == [-1.5, -2.5]
    np.testing.assert_array_equal(keyed[1].get_forces(), np.full((4, 3), 2.0))
    np.testing.assert_allclose(default[1].get_stress(), np.arange(6) * 1e-3)
    with pytest.raises(DataError, match="row id 1: no energy under 'missing'"):
        read(path, energy_key="missing")
    (tmp_path / "broken.db").write_text("not a database")
    with pytest.raises(DataError, match="not a readable ASE database"):
        read(tmp_path / "broken.db")


def test_classical_for_names_the_water_models_or_says_there_is_none(tmp_path, data_dir, capsys):
    water = tmp_path / "water.xyz"
    ase.io.write(water, load_dataset("water-deepmd")[:2], format="extxyz")
    assert cli(["classical", "for", str(water)]) == 0
    out = capsys.readouterr().out
    assert "64 H2O per frame at 0.99" in out and "--model qtip4pf --n-molecules 64" in out
    alloys = tmp_path / "alloys.xyz"
    ase.io.write(alloys, _emt_frames(3), format="extxyz")
    assert cli(["classical", "for", str(alloys)]) == 1
    assert "tpainn has no classical model for these frames" in capsys.readouterr().err
    peroxide = tmp_path / "h2o2.xyz"  # only H and O, but not water molecules
    ase.io.write(peroxide, _labelled(molecule("H2O2"), -1.0), format="extxyz")
    assert cli(["classical", "for", str(peroxide)]) == 1


def test_a_checkpoint_from_before_new_config_keys_still_resumes(tmp_path):
    from tpainn.train.trainer import _check_same_run

    config, _ = tiny_config(tmp_path, "x", 1)
    saved = yaml.safe_load(yaml.safe_dump(config))
    for key in ("test_seed", "format", "energy_key"):  # keys added later: the old checkpoint lacks them
        del saved["data"][key]
    _check_same_run(saved, config)
    config["data"]["test"] = 0.2
    with pytest.raises(ValueError, match="cannot resume: config 'data' differs"):
        _check_same_run(saved, config)
