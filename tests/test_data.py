"""tpainn.data on the real reference data: readers, units, registry, splits, HDF5 store and failure modes.

The shared data comes through TPAINN_DATA_DIR (the `data_dir` fixture fails, not skips, without it).
"""

import dataclasses
import functools
import http.server
import multiprocessing
import pickle
import shutil
import threading
from pathlib import Path

import ase.io
import h5py
import numpy as np
import pytest
from ase.units import Bohr, Hartree

from tpainn.data import (
    DataError,
    H5Frames,
    convert,
    dataset_path,
    info,
    list_table,
    load_dataset,
    load_frames,
    read,
    read_deepmd,
    read_extxyz,
    read_n2p2,
    read_qm9,
    standard_split,
    write_frames,
)
from tpainn.data import registry
from tpainn.data.labels import attach_labels

REVPBE_SHA256 = "8f5bded8fdd5b9e321b71f8da52a733df0e5d197326e053bdddb2be7012616fc"
# Per-frame total energy of water-revpbe0-d3 as stated in the data README, Hartree.
REVPBE_ENERGY_HA = -1103.97


@pytest.fixture(scope="session")
def revpbe_file(data_dir) -> Path:
    return data_dir / "water-revpbe0-d3" / "input.data"


@pytest.fixture(scope="session")
def revpbe_frames(data_dir):
    return load_dataset("water-revpbe0-d3")


@pytest.fixture(scope="session")
def deepmd_frames(data_dir):
    return load_dataset("water-deepmd")


def energies_eV(frames) -> np.ndarray:
    return np.array([atoms.get_potential_energy() for atoms in frames])


# ------------------------------------------------------------------------------------- water-revpbe0-d3


def test_revpbe_frames_are_64_waters_in_a_periodic_cubic_box(revpbe_frames):
    assert len(revpbe_frames) == 111
    for atoms in revpbe_frames:
        assert len(atoms) == 192
        assert atoms.symbols.formula.count() == {"O": 64, "H": 128}
        assert atoms.pbc.all()
        # 23.470398 bohr as written in the file.
        np.testing.assert_allclose(atoms.cell.array, np.eye(3) * 23.470398 * Bohr, atol=1e-12)
    assert revpbe_frames[0].cell.lengths() == pytest.approx([12.42] * 3, abs=1e-6)


def test_revpbe_energy_is_converted_from_hartree(revpbe_frames):
    per_water_eV = energies_eV(revpbe_frames) / 64
    # First frame of the file: "energy -1103.966370" (Hartree).
    assert per_water_eV[0] == pytest.approx(-1103.966370 * Hartree / 64, rel=1e-12)
    assert per_water_eV[0] == pytest.approx(-469.3821, abs=1e-3)
    np.testing.assert_allclose(per_water_eV, REVPBE_ENERGY_HA * Hartree / 64, atol=0.1)
    assert per_water_eV.mean() == pytest.approx(-469.376, abs=0.01)


def test_revpbe_forces_are_converted_from_hartree_per_bohr(revpbe_frames):
    forces = revpbe_frames[0].get_forces()
    # First atom line: fx fy fz = 0.038718 0.000377 0.005666 Ha/bohr.
    np.testing.assert_allclose(forces[0], np.array([0.038718, 0.000377, 0.005666]) * Hartree / Bohr, rtol=1e-12)
    all_forces = np.concatenate([atoms.get_forces() for atoms in revpbe_frames])
    mean_norm = np.linalg.norm(all_forces, axis=1).mean()
    assert 0.3 < mean_norm < 3.0, f"mean |F| = {mean_norm} eV/Å is not a liquid-water magnitude"
    assert np.abs(all_forces).max() < 15.0
    # The DFT net force is not exactly zero (README: ~0.005 eV/Å per atom), but it is small.
    net_per_atom = [np.linalg.norm(atoms.get_forces().sum(axis=0)) / len(atoms) for atoms in revpbe_frames]
    assert max(net_per_atom) < 0.02


def test_revpbe_positions_are_kept_unwrapped(revpbe_frames):
    atoms = revpbe_frames[0]
    first_atom_bohr = np.array([46.754470, 29.975781, 12.063747])
    np.testing.assert_allclose(atoms.positions[0], first_atom_bohr * Bohr, rtol=1e-12)
    length = atoms.cell.lengths()[0]
    assert ((atoms.positions < 0) | (atoms.positions >= length)).any(), "the file's positions are unwrapped"
    wrapped = atoms.copy()
    wrapped.wrap()
    assert (wrapped.positions >= 0).all() and (wrapped.positions < length).all()
    assert not np.allclose(wrapped.positions, atoms.positions)


def test_revpbe_comment_is_kept(revpbe_frames):
    assert revpbe_frames[0].info["comment"].startswith("# CELL(abcABC):")
    assert "Step:       42035" in revpbe_frames[0].info["comment"]


# ------------------------------------------------------------------------------------------ water-deepmd


def test_deepmd_frames_are_64_waters_in_eV(deepmd_frames):
    assert len(deepmd_frames) == 400
    for atoms in deepmd_frames:
        assert len(atoms) == 192
        assert atoms.symbols.formula.count() == {"O": 64, "H": 128}
        assert atoms.pbc.all()
        assert atoms.cell.lengths() == pytest.approx([12.4447] * 3, abs=1e-3)
        assert atoms.positions.dtype == np.float64
    per_water_eV = energies_eV(deepmd_frames) / 64
    assert per_water_eV.mean() == pytest.approx(-467.87, abs=0.01)
    np.testing.assert_allclose(per_water_eV, -467.87, atol=0.1)
    mean_norm = np.linalg.norm(np.concatenate([a.get_forces() for a in deepmd_frames]), axis=1).mean()
    assert 0.3 < mean_norm < 3.0


def test_deepmd_reads_systems_in_order_and_sets_in_order(data_dir, deepmd_frames):
    root = data_dir / "water-deepmd"
    data_1 = read_deepmd(root / "data_1")
    assert len(data_1) == 160  # set.000 and set.001
    first_set_energies = np.load(root / "data_1" / "set.000" / "energy.npy")
    np.testing.assert_array_equal(energies_eV(data_1[:80]), first_set_energies.astype(np.float64))
    data_3 = read_deepmd(root / "data_3")
    np.testing.assert_array_equal(energies_eV(deepmd_frames[-80:]), energies_eV(data_3))
    np.testing.assert_array_equal(deepmd_frames[-1].positions, data_3[-1].positions)


# ------------------------------------------------------------------------------------------------ splits


def test_standard_splits_of_the_water_sets():
    pool, test = standard_split("water-revpbe0-d3", 111)
    np.testing.assert_array_equal(test, np.arange(90, 111))
    np.testing.assert_array_equal(pool, np.arange(90))
    pool, test = standard_split("water-deepmd", 400)
    np.testing.assert_array_equal(test, np.arange(320, 400))  # data_3
    np.testing.assert_array_equal(pool, np.arange(320))
    assert test.dtype == np.int64


def test_qm9_split_is_a_seeded_permutation():
    pool, test = standard_split("qm9", 130_831)
    assert len(test) == 13_083 and len(pool) + len(test) == 130_831
    assert np.intersect1d(pool, test).size == 0
    np.testing.assert_array_equal(test, standard_split("qm9", 130_831, seed=0)[1])
    assert not np.array_equal(test, standard_split("qm9", 130_831, seed=1)[1])


def test_standard_split_needs_the_complete_dataset():
    with pytest.raises(DataError, match="all its 111 frames"):
        standard_split("water-revpbe0-d3", 100)


# --------------------------------------------------------------------------------------------------- QM9


def test_qm9_energies_and_atomization():
    methane, water = read_qm9([1, 3])
    assert methane.info["smiles"] == "C" and methane.info["qm9_index"] == 1
    assert methane.get_potential_energy() == pytest.approx(-40.47893 * Hartree, rel=1e-12)
    assert methane.info["U0_eV"] == methane.get_potential_energy()
    c_h_distances = methane.get_distances(0, [1, 2, 3, 4])
    np.testing.assert_allclose(c_h_distances, 1.09, atol=0.01)
    assert not methane.pbc.any() and not methane.cell.array.any()
    assert "forces" not in methane.calc.results
    assert water.get_chemical_formula() == "H2O"
    expected_atomization_Ha = -76.404702 - (-75.064579 + 2 * -0.500273)
    assert water.info["atomization_energy_eV"] == pytest.approx(expected_atomization_Ha * Hartree, rel=1e-9)
    assert water.info["atomization_energy_eV"] == pytest.approx(-9.24, abs=0.005)


def test_qm9_loads_every_molecule_in_id_order():
    molecules = load_dataset("qm9")
    assert len(molecules) == registry.DATASETS["qm9"].n_frames == 130_831
    ids = [atoms.info["qm9_index"] for atoms in molecules[:5]]
    assert ids == [1, 2, 3, 4, 5]
    assert max(len(atoms) for atoms in molecules) == 29
    assert set(np.concatenate([atoms.numbers for atoms in molecules[::100]])) <= {1, 6, 7, 8, 9}


def test_qm9_unknown_index_is_a_data_error():
    with pytest.raises(DataError, match="no molecule with index"):
        read_qm9([0])


# ---------------------------------------------------------------------------------------------- extxyz


def test_extxyz_round_trip(revpbe_frames, tmp_path):
    path = tmp_path / "water.xyz"
    ase.io.write(path, revpbe_frames[:3], format="extxyz")
    frames = read_extxyz(path)
    assert len(frames) == 3
    for original, loaded in zip(revpbe_frames[:3], frames):
        np.testing.assert_allclose(loaded.positions, original.positions, atol=1e-7)
        np.testing.assert_allclose(loaded.get_forces(), original.get_forces(), atol=1e-7)
        assert loaded.get_potential_energy() == pytest.approx(original.get_potential_energy(), abs=1e-6)
        np.testing.assert_allclose(loaded.cell.array, original.cell.array, atol=1e-7)
    assert len(read(path)) == 3
    assert len(read_extxyz(path, index="1:")) == 2


# -------------------------------------------------------------------------------------------------- HDF5


def assert_same_frames(loaded, original):
    assert len(loaded) == len(original)
    for a, b in zip(loaded, original):
        np.testing.assert_array_equal(a.numbers, b.numbers)
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.cell.array, b.cell.array)
        np.testing.assert_array_equal(a.pbc, b.pbc)
        assert a.get_potential_energy() == b.get_potential_energy()
        np.testing.assert_array_equal(a.get_forces(), b.get_forces())


def test_hdf5_round_trip_is_bit_identical(revpbe_frames, tmp_path):
    path = tmp_path / "water.h5"
    assert write_frames(path, revpbe_frames, metadata={"dataset": "water-revpbe0-d3", "temperature_K": 300}) == 111
    frames = H5Frames(path)
    assert_same_frames(frames, revpbe_frames)
    assert frames.metadata == {"dataset": "water-revpbe0-d3", "temperature_K": 300}
    assert isinstance(frames[10:13], list) and len(frames[10:13]) == 3
    np.testing.assert_array_equal(frames[-1].positions, revpbe_frames[-1].positions)
    with pytest.raises(IndexError):
        frames[111]
    with h5py.File(path, "r") as f:  # fixed-length UTF-8 text attributes, read by h5py as bytes
        assert f.attrs["energy_unit"] == b"eV"
        assert f.attrs["length_unit"] == b"Angstrom"
        assert f.attrs["force_unit"] == b"eV/Angstrom"
        assert f.attrs["format"] == b"tpainn-frames"
        assert f["positions"].fletcher32 and f["offsets"].fletcher32


def energy_of_frame(frames: H5Frames, index: int) -> float:
    return frames[index].get_potential_energy()


def test_hdf5_reads_lazily_and_survives_pickle_and_fork(revpbe_frames, tmp_path):
    path = tmp_path / "water.h5"
    write_frames(path, revpbe_frames)
    frames = H5Frames(path)
    assert frames._file is None, "the constructor reads the header only"
    frames[0]  # opens the handle in this process, which the workers must not reuse
    unpickled = pickle.loads(pickle.dumps(frames))
    assert unpickled[5].get_potential_energy() == revpbe_frames[5].get_potential_energy()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        energies = pool.map(functools.partial(energy_of_frame, frames), range(0, 111, 10))
    assert energies == [atoms.get_potential_energy() for atoms in revpbe_frames[::10]]


def test_hdf5_append_extends_the_file_and_merges_metadata(revpbe_frames, tmp_path):
    path = tmp_path / "water.h5"
    write_frames(path, revpbe_frames[:50], metadata={"step": 1, "source": "test"})
    assert write_frames(path, revpbe_frames[50:], metadata={"step": 2}, append=True) == 111
    frames = H5Frames(path)
    assert_same_frames(frames, revpbe_frames)
    assert frames.metadata == {"step": 2, "source": "test"}


def test_hdf5_append_interrupted_before_commit_keeps_stored_frames(revpbe_frames, tmp_path):
    path = tmp_path / "water.h5"
    write_frames(path, revpbe_frames[:10])
    # What an append that died before its commit leaves behind: rows beyond the committed frames.
    with h5py.File(path, "a") as f:
        for name in ("positions", "forces", "numbers"):
            f[name].resize(f[name].shape[0] + 192, axis=0)
        f["positions"][-192:] = np.nan
        f["energy"].resize(11, axis=0)
        f["energy"][10] = np.nan
    assert_same_frames(H5Frames(path), revpbe_frames[:10])
    write_frames(path, revpbe_frames[10:20], append=True)
    assert_same_frames(H5Frames(path), revpbe_frames[:20])


def test_hdf5_frames_without_forces(revpbe_frames, tmp_path):
    molecules = read_qm9([1, 2, 3])
    path = tmp_path / "qm9.h5"
    write_frames(path, molecules)
    frames = H5Frames(path)
    assert not frames.has_forces
    assert [a.get_potential_energy() for a in frames] == [a.get_potential_energy() for a in molecules]
    assert not frames[0].pbc.any()
    frames.close()  # HDF5 refuses to open a file for writing that this process holds open for reading
    with pytest.raises(DataError, match="forces"):
        write_frames(path, revpbe_frames[:1], append=True)


def test_hdf5_rejects_files_that_are_not_frame_files(tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(DataError, match="foreign.h5: not a tpainn frame file"):
        H5Frames(foreign)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(DataError, match="text.h5: cannot be opened as an HDF5 file"):
        H5Frames(text)
    with pytest.raises(DataError, match="no such file"):
        H5Frames(tmp_path / "absent.h5")


def test_hdf5_needs_labelled_frames(revpbe_frames, tmp_path):
    with pytest.raises(DataError, match="w.h5: frame 1 of the 2 to write: the frame has no energy label"):
        write_frames(tmp_path / "w.h5", [revpbe_frames[0], ase.Atoms("H2O")])


def test_hdf5_reads_files_with_variable_length_text_attributes(revpbe_frames, tmp_path):
    """Files written before the text attributes became fixed-length (h5py's default str attributes) still read."""
    path = tmp_path / "old.h5"
    write_frames(path, revpbe_frames[:2], metadata={"dataset": "x"})
    with h5py.File(path, "r+") as f:
        for name in ("format", "energy_unit", "metadata"):
            f.attrs[name] = f.attrs[name].decode()
        assert isinstance(f.attrs["format"], str)
    frames = H5Frames(path)
    assert len(frames) == 2 and frames.metadata == {"dataset": "x"}
    write_frames(path, revpbe_frames[2:3], append=True)
    assert len(H5Frames(path)) == 3 and H5Frames(path).metadata == {"dataset": "x"}


def test_hdf5_refuses_non_finite_values_and_keeps_the_stored_frames(revpbe_frames, tmp_path):
    path = tmp_path / "w.h5"
    write_frames(path, revpbe_frames[:2])
    bad = attach_labels(revpbe_frames[2].copy(), revpbe_frames[2].get_potential_energy(), revpbe_frames[2].get_forces())
    bad.calc.results["forces"][4, 2] = np.inf
    with pytest.raises(DataError, match=r"w.h5: frame 1 of the 2 to write: forces are not finite: inf \(row 4:"):
        write_frames(path, [revpbe_frames[3], bad], append=True)
    with pytest.raises(DataError, match="w.h5: frame 0 of the 1 to write: the energy is not a finite number"):
        write_frames(path, [attach_labels(revpbe_frames[3].copy(), np.nan)], append=True)
    assert len(H5Frames(path)) == 2


def test_convert_registry_name_and_file(revpbe_file, deepmd_frames, tmp_path):
    assert convert("water-deepmd", tmp_path / "deepmd.h5") == 400
    frames = H5Frames(tmp_path / "deepmd.h5")
    assert_same_frames(frames, deepmd_frames)
    assert frames.metadata["dataset"] == "water-deepmd"
    assert frames.metadata["source_revision"] == "bc902daf747d93c5d7314338d287fd2dd0a7e32c"
    assert convert(revpbe_file, tmp_path / "revpbe.hdf5") == 111
    assert convert(tmp_path / "deepmd.h5", tmp_path / "copy.h5") == 400
    with pytest.raises(DataError, match="must be an HDF5 file"):
        convert("water-deepmd", tmp_path / "deepmd.xyz")


def test_load_frames_dispatches_on_the_spec(revpbe_file, tmp_path):
    assert isinstance(load_frames("water-revpbe0-d3"), list)
    assert len(load_frames(revpbe_file)) == 111
    write_frames(tmp_path / "w.h5", load_frames(revpbe_file)[:2])
    assert isinstance(load_frames(tmp_path / "w.h5"), H5Frames)
    assert len(read(tmp_path / "w.h5")) == 2


# ---------------------------------------------------------------------------------------- malformed data


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(lines))
    return path


@pytest.fixture
def revpbe_lines(revpbe_file) -> list[str]:
    return revpbe_file.read_text().splitlines(keepends=True)


def test_truncated_input_data(revpbe_lines, tmp_path):
    # Frame 0 is lines 1-200; stop in the middle of frame 1's atoms.
    path = write_lines(tmp_path / "input.data", revpbe_lines[:300])
    with pytest.raises(DataError, match=r"input.data: the file ends inside frame 1 \(begun at line 201\).*truncated"):
        read_n2p2(path)


def test_input_data_frame_without_energy(revpbe_lines, tmp_path):
    lines = [line for number, line in enumerate(revpbe_lines, 1) if number != 198]  # frame 0's energy line
    with pytest.raises(DataError, match=r"input.data:199: frame 0 has no 'energy' line"):
        read_n2p2(write_lines(tmp_path / "input.data", lines))


def test_input_data_unparsable_number(revpbe_lines, tmp_path):
    lines = list(revpbe_lines)
    lines[5] = lines[5].replace("0.038718", "0.03x718")  # the first atom line
    with pytest.raises(DataError, match=r"input.data:6: cannot parse a number"):
        read_n2p2(write_lines(tmp_path / "input.data", lines))


def test_input_data_unknown_element(revpbe_lines, tmp_path):
    lines = list(revpbe_lines)
    lines[5] = lines[5].replace(" O ", " Qx ")
    with pytest.raises(DataError, match=r"input.data:6: unknown element symbol 'Qx'"):
        read_n2p2(write_lines(tmp_path / "input.data", lines))


def test_missing_files_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="absent.data: no such file"):
        read_n2p2(tmp_path / "absent.data")
    with pytest.raises(DataError, match="no such file or folder"):
        read(tmp_path / "absent.xyz")
    with pytest.raises(DataError, match="no such folder"):
        read_deepmd(tmp_path / "absent")


def copy_writable(source: Path, destination: Path) -> Path:
    """A copy of the read-only shared data that the test may corrupt."""
    shutil.copytree(source, destination, copy_function=shutil.copyfile)
    return destination


def test_deepmd_force_count_must_match_atom_count(data_dir, tmp_path):
    system = copy_writable(data_dir / "water-deepmd" / "data_0", tmp_path / "data_0")
    forces = np.load(system / "set.000" / "force.npy")
    np.save(system / "set.000" / "force.npy", forces[:, :-3])
    with pytest.raises(DataError, match=r"force.npy: shape \(80, 573\), expected \(80, 576\)"):
        read_deepmd(system)


def test_deepmd_frame_count_must_agree_between_files(data_dir, tmp_path):
    system = copy_writable(data_dir / "water-deepmd" / "data_0", tmp_path / "data_0")
    np.save(system / "set.000" / "energy.npy", np.load(system / "set.000" / "energy.npy")[:79])
    with pytest.raises(DataError, match=r"energy.npy: shape \(79, 1\), expected \(80, 1\)"):
        read_deepmd(system)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError, match="unknown dataset 'water'.*water-revpbe0-d3, water-deepmd, qm9"):
        load_dataset("water")


def test_checksum_mismatch_in_the_data_dir(data_dir, tmp_path, monkeypatch):
    copy = copy_writable(data_dir / "water-revpbe0-d3", tmp_path / "data" / "water-revpbe0-d3")
    corrupted = bytearray((copy / "input.data").read_bytes())
    corrupted[1000] ^= 0x01
    (copy / "input.data").write_bytes(bytes(corrupted))
    monkeypatch.setenv("TPAINN_DATA_DIR", str(tmp_path / "data"))
    expected = f"input.data: checksum mismatch.*expected {REVPBE_SHA256}, actual [0-9a-f]{{64}}"
    with pytest.raises(DataError, match=expected):
        load_dataset("water-revpbe0-d3")


def test_list_and_info_texts():
    table = list_table()
    for name in ("water-revpbe0-d3", "water-deepmd", "qm9"):
        assert name in table
    text = info("water-revpbe0-d3")
    assert REVPBE_SHA256 in text and "CC-BY-SA-4.0" in text and "frames 90-110" in text
    assert "data_3/set.000/force.npy" in info("water-deepmd")
    assert "Sci. Data 1, 140022" in info("qm9")


# ---------------------------------------------------------------------------------------------- download


@pytest.fixture
def http_root(tmp_path):
    """A folder served on 127.0.0.1 for the test; yields (folder, base URL, list of request paths)."""
    root = tmp_path / "served"
    root.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass  # keep the request log out of the captured stderr that the progress test reads

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def serve_revpbe_from(monkeypatch, url: str, cache_dir: Path) -> None:
    """Point the registry's water-revpbe0-d3 file at `url` and isolate the environment from the shared data."""
    dataset = registry.DATASETS["water-revpbe0-d3"]
    (file,) = dataset.files
    monkeypatch.setitem(
        registry.DATASETS, dataset.name, dataclasses.replace(dataset, files=(dataclasses.replace(file, url=url),))
    )
    monkeypatch.delenv("TPAINN_DATA_DIR", raising=False)
    monkeypatch.setenv("TPAINN_CACHE_DIR", str(cache_dir))


def test_download_verifies_and_caches(revpbe_file, http_root, tmp_path, monkeypatch, capsys):
    root, base_url, requests = http_root
    shutil.copyfile(revpbe_file, root / "input.data")
    serve_revpbe_from(monkeypatch, f"{base_url}/input.data", tmp_path / "cache")
    path = dataset_path("water-revpbe0-d3")
    assert path == tmp_path / "cache" / "water-revpbe0-d3" / "input.data"
    assert path.read_bytes() == revpbe_file.read_bytes()
    progress = capsys.readouterr().err
    assert "water-revpbe0-d3/input.data" in progress and "100%" in progress
    assert len(load_dataset("water-revpbe0-d3")) == 111
    assert requests == ["/input.data"], "the second use reads the cache"
    assert sorted(p.name for p in path.parent.iterdir()) == ["input.data"]


def test_download_with_wrong_checksum_is_discarded(revpbe_file, http_root, tmp_path, monkeypatch):
    root, base_url, _ = http_root
    corrupted = bytearray(revpbe_file.read_bytes())
    corrupted[-10] ^= 0x01
    (root / "input.data").write_bytes(bytes(corrupted))
    serve_revpbe_from(monkeypatch, f"{base_url}/input.data", tmp_path / "cache")
    expected = f"has sha256 [0-9a-f]{{64}}, expected {REVPBE_SHA256}; the download was discarded"
    with pytest.raises(DataError, match=expected):
        dataset_path("water-revpbe0-d3")
    assert list((tmp_path / "cache" / "water-revpbe0-d3").iterdir()) == []


def test_download_failure_names_the_url(http_root, tmp_path, monkeypatch):
    _, base_url, _ = http_root
    serve_revpbe_from(monkeypatch, f"{base_url}/missing/input.data", tmp_path / "cache")
    with pytest.raises(DataError, match=r"could not download http://127.0.0.1:\d+/missing/input.data.*TPAINN_DATA_DIR"):
        load_dataset("water-revpbe0-d3")
