"""MMFF94 (RDKit) labels for QM9: the calculator, the conformer generator, its resumption and its check."""

import json
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from tpainn.classical import qm9_sampling
from tpainn.classical.mmff import SKIP_REASONS, MMFF94Calculator, MMFFSetupError, mmff_molecule
from tpainn.classical.qm9_sampling import generate_qm9, qm9_test_ids, select_qm9
from tpainn.classical.units import KCAL_MOL_TO_EV
from tpainn.classical.verification import verify_frames
from tpainn.data import H5Frames, read_qm9, standard_split, write_frames

N_MOLECULES, CONFORMERS = 10, 2
# Real QM9 molecules that cannot be given an MMFF94 force field (found by scanning 30,000 molecules):
# 133831's strained cage leaves an N with no valid bond order; 128228's geometry is ring-opened
# relative to its SMILES (the N-O bond of the ring is 2.4 Å long).
QM9_BONDS_UNDETERMINED = 133831
QM9_BONDS_DISAGREE = 128228


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """One uninterrupted run: (path, report)."""
    path = tmp_path_factory.mktemp("mmff") / "qm9_mmff.h5"
    report = generate_qm9(path, n_molecules=N_MOLECULES, conformers_per_molecule=CONFORMERS, progress=False)
    return path, report


def _arrays(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        n_frames = int(f.attrs["n_frames"])
        n_atoms = int(f["offsets"][n_frames])
        rows = {name: f[name][:n_atoms] for name in ("numbers", "positions", "forces")}
        rows.update({name: f[name][:n_frames] for name in ("energy", "cell", "pbc")})
        rows["offsets"] = f["offsets"][: n_frames + 1]
        rows["metadata"] = json.loads(f.attrs["metadata"])
    return rows


# ------------------------------------------------------------------------------------------ calculator


def test_calculator_forces_are_the_gradient_of_the_energy():
    (atoms,) = read_qm9([1000])
    atoms.positions += np.random.default_rng(0).normal(scale=0.05, size=atoms.positions.shape)
    atoms.calc = MMFF94Calculator()
    forces = atoms.get_forces()
    step = 1e-4
    fd = np.empty_like(forces)
    for i in range(len(atoms)):
        for k in range(3):
            energies = []
            for sign in (1, -1):
                displaced = atoms.copy()
                displaced.calc = atoms.calc
                displaced.positions[i, k] += sign * step
                energies.append(displaced.get_potential_energy())
            fd[i, k] = -(energies[0] - energies[1]) / (2 * step)
    assert np.max(np.abs(forces)) > 0.1  # a distorted molecule: the test is not 0 == 0
    np.testing.assert_allclose(forces, fd, atol=1e-5)


def test_calculator_energy_is_rdkit_mmff94_in_ev():
    from rdkit.Chem import rdForceFieldHelpers

    assert KCAL_MOL_TO_EV == pytest.approx(0.0433641, rel=1e-5)
    (atoms,) = read_qm9([1000])
    mol = mmff_molecule(atoms)
    properties = rdForceFieldHelpers.MMFFGetMoleculeProperties(mol, mmffVariant="MMFF94")
    kcal = rdForceFieldHelpers.MMFFGetMoleculeForceField(mol, properties).CalcEnergy()
    atoms.calc = MMFF94Calculator(mol)
    assert atoms.get_potential_energy() == pytest.approx(kcal * KCAL_MOL_TO_EV, rel=1e-12)


def test_calculator_keeps_its_molecule():
    (atoms,) = read_qm9([1000])
    atoms.calc = MMFF94Calculator()
    atoms.get_potential_energy()
    reordered = atoms[::-1]
    assert not np.array_equal(reordered.numbers, atoms.numbers)
    reordered.calc = atoms.calc
    with pytest.raises(ValueError, match="do not match"):
        reordered.get_potential_energy()
    periodic = atoms.copy()
    periodic.calc = MMFF94Calculator()
    periodic.set_cell(np.eye(3) * 20)
    periodic.pbc = True
    with pytest.raises(ValueError, match="isolated molecules"):
        periodic.get_potential_energy()


# --------------------------------------------------------------------------------------- typing, skips


def test_molecule_keeps_the_qm9_atom_order():
    (atoms,) = read_qm9([2000])
    mol = mmff_molecule(atoms)
    assert [atom.GetAtomicNum() for atom in mol.GetAtoms()] == atoms.numbers.tolist()
    np.testing.assert_array_equal(mol.GetConformer().GetPositions(), atoms.positions)


def test_real_qm9_molecules_that_cannot_be_typed_are_named():
    undetermined, disagree = read_qm9([QM9_BONDS_UNDETERMINED, QM9_BONDS_DISAGREE])
    with pytest.raises(MMFFSetupError, match=f"QM9 {QM9_BONDS_UNDETERMINED}: cannot determine the bonds") as err:
        mmff_molecule(undetermined)
    assert err.value.reason == "bonds_undetermined"
    with pytest.raises(MMFFSetupError, match=f"QM9 {QM9_BONDS_DISAGREE}: the bonds perceived") as err:
        mmff_molecule(disagree)
    assert err.value.reason == "bonds_disagree_with_smiles"


def test_constructed_molecules_that_cannot_be_typed():
    # Boron has no MMFF94 atom type: the bonds are fine, the typing fails.
    with pytest.raises(MMFFSetupError, match="no atom type") as err:
        mmff_molecule(molecule("BF3"))
    assert err.value.reason == "mmff_untyped"
    # Ethanol's geometry with dimethyl ether's SMILES.
    with pytest.raises(MMFFSetupError) as err:
        mmff_molecule(molecule("CH3CH2OH"), smiles="COC")
    assert err.value.reason == "bonds_disagree_with_smiles"
    assert set(SKIP_REASONS) >= {"bonds_undetermined", "bonds_disagree_with_smiles", "mmff_untyped"}


def test_generator_skips_and_counts_molecules_it_cannot_type(tmp_path, monkeypatch):
    chosen = np.array([1, QM9_BONDS_UNDETERMINED, 2, QM9_BONDS_DISAGREE, 3])
    monkeypatch.setattr(qm9_sampling, "select_qm9", lambda n_molecules, seed, exclude_test: chosen[:n_molecules])
    path = tmp_path / "skips.h5"
    report = generate_qm9(path, n_molecules=5, conformers_per_molecule=2, progress=False)
    assert report["skipped"] == {"bonds_undetermined": 1, "bonds_disagree_with_smiles": 1}
    assert report["skipped_qm9_index"] == {
        "bonds_undetermined": [QM9_BONDS_UNDETERMINED],
        "bonds_disagree_with_smiles": [QM9_BONDS_DISAGREE],
    }
    assert report["molecules_used"] == 3 and report["molecules_skipped"] == 2 and report["frames"] == 6
    frames = H5Frames(path)
    assert frames.metadata["skip_counts"] == report["skipped"]
    assert frames.metadata["skipped"] == report["skipped_qm9_index"]
    assert frames.metadata["qm9_index"] == [1, 1, 2, 2, 3, 3]
    assert len(frames) == 6


# ------------------------------------------------------------------------------------------ generation


def test_generated_file_holds_labelled_non_periodic_frames(generated):
    path, report = generated
    assert report["molecules_done"] == N_MOLECULES and report["complete"]
    assert report["molecules_used"] + report["molecules_skipped"] == N_MOLECULES
    assert report["frames"] == CONFORMERS * report["molecules_used"]
    assert isinstance(report["skipped"], dict) and report["seconds_per_molecule"] > 0

    frames = H5Frames(path)
    assert len(frames) == report["frames"]
    with h5py.File(path, "r") as f:
        assert (f.attrs["energy_unit"], f.attrs["length_unit"], f.attrs["force_unit"]) == (
            b"eV",
            b"Angstrom",
            b"eV/Angstrom",
        )
    metadata = frames.metadata
    assert metadata["units"]["energy"] == "eV" and metadata["units"]["forces"] == "eV/Angstrom"
    assert metadata["force_field"] == "MMFF94" and metadata["rdkit_version"]
    assert metadata["temperature_K"] == 500.0 and metadata["timestep_fs"] == 0.5
    assert metadata["friction_per_fs"] == 0.01 and metadata["conformers_per_molecule"] == CONFORMERS
    assert metadata["seed"] == 0 and metadata["skip_counts"] == report["skipped"] and "skipped" in metadata
    qm9_index = metadata["qm9_index"]
    assert len(qm9_index) == len(frames)
    used = qm9_index[::CONFORMERS]
    assert qm9_index == [q for q in used for _ in range(CONFORMERS)]
    assert used == [q for q in select_qm9(N_MOLECULES, 0).tolist() if q in used]

    for i, frame in enumerate(frames):
        (reference,) = read_qm9([qm9_index[i]])
        assert np.array_equal(frame.numbers, reference.numbers)
        assert not frame.pbc.any() and not frame.cell.array.any()
        energy, forces = frame.calc.results["energy"], frame.calc.results["forces"]
        assert math.isfinite(energy) and np.all(np.isfinite(forces)) and np.all(np.isfinite(frame.positions))
        # Thermal conformers of the same molecule: the geometry moved (distances, as the molecule
        # may turn), and every bond stayed near its equilibrium length (nothing exploded).
        assert np.max(np.abs(frame.get_all_distances() - reference.get_all_distances())) > 0.01
        bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mmff_molecule(reference).GetBonds()])
        lengths = [np.linalg.norm(atoms.positions[bonds[:, 0]] - atoms.positions[bonds[:, 1]], axis=1)
                   for atoms in (frame, reference)]
        assert np.max(np.abs(lengths[0] - lengths[1])) < 0.3
    # The two conformers of a molecule differ.
    assert not np.array_equal(frames[0].positions, frames[1].positions)


def test_verify_frames_recomputes_the_labels(generated):
    path, report = generated
    result = verify_frames(path, range(report["frames"]), fd_step=1e-4, energy_tol=1e-9, force_tol=1e-9, fd_tol=1e-5)
    assert result["passed"], result
    assert len(result["frames"]) == report["frames"]
    assert result["max_energy_error_eV"] <= 1e-9 and result["max_fd_error_eV_per_A"] <= 1e-5


def test_verify_frames_notices_wrong_labels(generated, tmp_path):
    path, _ = generated
    frames = list(H5Frames(path))
    metadata = H5Frames(path).metadata
    frames[1].calc.results["forces"][0, 0] += 1e-3
    tampered = tmp_path / "tampered.h5"
    write_frames(tampered, frames, metadata=metadata)
    result = verify_frames(tampered, [0, 1])
    assert not result["passed"]
    assert result["frames"][0]["force_error_eV_per_A"] == 0.0
    assert result["frames"][1]["force_error_eV_per_A"] == pytest.approx(1e-3, rel=1e-6)


def test_test_molecules_are_excluded(generated):
    path, _ = generated
    # standard_split numbers frames in load order (QM9 ids ascending; ids are not contiguous, as
    # 3054 of 1..133885 are absent), so the test ids are the ids at those positions.
    all_ids = qm9_sampling._qm9_ids()
    assert len(all_ids) == 130_831 and np.all(np.diff(all_ids) > 0) and all_ids[-1] == 133_885
    _, test_frames = standard_split("qm9", 130_831, seed=0)
    test_ids = qm9_test_ids()
    assert len(test_ids) == 13_083
    np.testing.assert_array_equal(test_ids, all_ids[test_frames])
    assert not set(H5Frames(path).metadata["qm9_index"]) & set(test_ids.tolist())
    selected = select_qm9(20_000, seed=0)
    assert len(set(selected.tolist())) == 20_000 and not set(selected.tolist()) & set(test_ids.tolist())
    everything = select_qm9(20_000, seed=0, exclude_test=False)
    assert set(everything.tolist()) & set(test_ids.tolist())
    # A larger selection extends a smaller one with the same seed.
    np.testing.assert_array_equal(select_qm9(N_MOLECULES, seed=0), selected[:N_MOLECULES])


def test_resumed_run_equals_uninterrupted_run(generated, tmp_path, monkeypatch):
    path, _ = generated
    resumed = tmp_path / "resumed.h5"
    monkeypatch.setattr(qm9_sampling, "CHUNK_MOLECULES", 3)
    real_task, calls = qm9_sampling._sample_task, []

    def dying_task(task):
        if len(calls) == 7:  # killed while sampling the 8th molecule: molecules 1-6 are on disk
            raise KeyboardInterrupt
        calls.append(task)
        return real_task(task)

    monkeypatch.setattr(qm9_sampling, "_sample_task", dying_task)
    with pytest.raises(KeyboardInterrupt):
        generate_qm9(resumed, n_molecules=N_MOLECULES, conformers_per_molecule=CONFORMERS, progress=False)
    partial = H5Frames(resumed).metadata
    assert partial["molecules_done"] == 6 and not partial["complete"]

    monkeypatch.setattr(qm9_sampling, "_sample_task", real_task)
    # The rest in two worker processes: the frames of a molecule do not depend on who makes them.
    report = generate_qm9(
        resumed, n_molecules=N_MOLECULES, conformers_per_molecule=CONFORMERS, progress=False, workers=2
    )
    assert report["resumed_after_molecules"] == 6 and report["complete"]
    assert report["frames_written_this_run"] == report["frames"] - len(partial["qm9_index"])

    expected, actual = _arrays(path), _arrays(resumed)
    assert expected.keys() == actual.keys()
    for name in expected:
        if name == "metadata":
            assert actual[name] == expected[name]
        else:
            np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
            assert actual[name].tobytes() == expected[name].tobytes(), name

    # Re-running a complete file adds nothing.
    again = generate_qm9(resumed, n_molecules=N_MOLECULES, conformers_per_molecule=CONFORMERS, progress=False)
    assert again["frames_written_this_run"] == 0 and again["frames"] == report["frames"]


def test_larger_n_molecules_extends_the_file(generated, tmp_path):
    """The selection is a prefix of one permutation: asking for more molecules appends the next ones."""
    path, report = generated
    extended = tmp_path / "extended.h5"
    shutil.copy(path, extended)
    again = generate_qm9(extended, n_molecules=N_MOLECULES + 2, conformers_per_molecule=CONFORMERS, progress=False)
    assert again["resumed_after_molecules"] == N_MOLECULES and again["complete"]
    before, after = _arrays(path), _arrays(extended)
    n_atoms = before["offsets"][-1]
    np.testing.assert_array_equal(after["positions"][:n_atoms], before["positions"])
    new_ids = after["metadata"]["qm9_index"][report["frames"] :]
    assert sorted(set(new_ids)) == sorted(select_qm9(N_MOLECULES + 2)[N_MOLECULES:].tolist())
    assert after["metadata"]["n_molecules"] == N_MOLECULES + 2 and len(new_ids) == 2 * CONFORMERS


def test_existing_file_with_other_settings_is_refused(generated, tmp_path):
    path, _ = generated
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"other settings \(temperature_K: file has 500.0, this run 300.0\)"):
        generate_qm9(path, n_molecules=N_MOLECULES, conformers_per_molecule=CONFORMERS, temperature=300, progress=False)
    with pytest.raises(ValueError, match="already holds 10 molecules, more than this run's n_molecules=9"):
        generate_qm9(path, n_molecules=N_MOLECULES - 1, conformers_per_molecule=CONFORMERS, progress=False)
    with pytest.raises(ValueError, match="conformers_per_molecule"):
        generate_qm9(path, n_molecules=N_MOLECULES, conformers_per_molecule=3, progress=False)
    assert path.read_bytes() == before

    foreign = tmp_path / "foreign.h5"
    (atoms,) = read_qm9([1])
    write_frames(foreign, [atoms])
    with pytest.raises(ValueError, match="not written by generate_qm9"):
        generate_qm9(foreign, n_molecules=2, progress=False)
    not_hdf5 = tmp_path / "text.h5"
    not_hdf5.write_text("hello")
    with pytest.raises(ValueError, match="not a tpainn frame file"):
        generate_qm9(not_hdf5, n_molecules=2, progress=False)
    assert not_hdf5.read_text() == "hello"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"n_molecules": 0}, "n_molecules must be an integer >= 1, got 0"),
        ({"n_molecules": 2.5}, "n_molecules must be an integer >= 1"),
        ({"n_molecules": 117_749}, "n_molecules=117749 exceeds the 117748 QM9 molecules available outside"),
        ({"n_molecules": 130_832, "exclude_test": False}, "n_molecules=130832 exceeds the 130831"),
        ({"conformers_per_molecule": 0}, "conformers_per_molecule must be an integer >= 1"),
        ({"temperature": 0}, "temperature must be positive"),
        ({"temperature": -300.0}, "temperature must be positive"),
        ({"temperature": float("nan")}, "temperature must be positive and finite"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"workers": 0}, "workers must be an integer >= 1"),
    ],
)
def test_bad_arguments_are_value_errors_naming_them(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        generate_qm9(tmp_path / "out.h5", **{"n_molecules": 2, "progress": False, **arguments})
    assert not (tmp_path / "out.h5").exists()


def test_unwritable_outputs_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="output .*missing.*does not exist"):
        generate_qm9(tmp_path / "missing" / "out.h5", n_molecules=2, progress=False)
    with pytest.raises(ValueError, match="output .*: is a folder"):
        (tmp_path / "folder.h5").mkdir()
        generate_qm9(tmp_path / "folder.h5", n_molecules=2, progress=False)
    with pytest.raises(ValueError, match="output .*must be an HDF5 file"):
        generate_qm9(tmp_path / "out.xyz", n_molecules=2, progress=False)
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ValueError, match="output .*does not exist"):
        generate_qm9(a_file / "out.h5", n_molecules=2, progress=False)
    if Path("/proc/self").is_dir():  # a folder nobody can create files in, root included
        with pytest.raises(ValueError, match="output /proc/tpainn-test.h5"):
            generate_qm9("/proc/tpainn-test.h5", n_molecules=2, progress=False)


def test_mmff_molecule_rejects_periodic_or_empty_atoms():
    with pytest.raises(ValueError, match="isolated molecules"):
        mmff_molecule(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], cell=np.eye(3) * 5, pbc=True))
    with pytest.raises(ValueError, match="no atoms"):
        mmff_molecule(Atoms())


def test_verify_command_dispatches_to_rdkit(generated, capsys):
    from tpainn.cli import main as cli

    path, _ = generated
    assert cli(["classical", "verify", str(path), "--frames", "0", "-1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and [f["frame"] for f in report["frames"]] == [0, len(H5Frames(path)) - 1]
