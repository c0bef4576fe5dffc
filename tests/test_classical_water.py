"""Classical flexible water in LAMMPS: generated frames, their labels, resumption and bad input."""

import json
import math
import warnings

import h5py
import numpy as np
import pytest
from ase import units

from tpainn.classical import water_sampling
from tpainn.classical.units import KCAL_MOL_TO_EV
from tpainn.classical.verification import verify_frames
from tpainn.classical.water_model import box_length, water_model
from tpainn.classical.water_sampling import frame_states, generate_water, initial_positions
from tpainn.cli import main as cli
from tpainn.data import H5Frames

# Small but real: 16 molecules (box 7.8 Å at 1 g/cm³), two states, short runs.
SETTINGS = dict(n_molecules=16, temperatures=[300.0], densities=[0.95, 1.05], frames_per_state=3,
                equilibration_ps=0.05, sample_interval_fs=100.0, progress=False)  # fmt: skip


@pytest.fixture(scope="module", params=["spcfw", "qtip4pf"])
def generated(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("water") / f"{request.param}.h5"
    n = generate_water(path, model=request.param, **SETTINGS)
    return path, n


def test_frames_are_labelled_water_boxes_at_the_requested_densities(generated):
    path, n = generated
    frames = H5Frames(path)
    assert n == len(frames) == 6
    temperatures, densities = frame_states(path)
    np.testing.assert_array_equal(densities, [0.95] * 3 + [1.05] * 3)
    np.testing.assert_array_equal(temperatures, [300.0] * 6)
    for atoms, density in zip(frames, densities):
        assert atoms.get_chemical_symbols() == ["O", "H", "H"] * 16
        assert atoms.pbc.all()
        volume_cm3 = atoms.get_volume() * 1e-24
        assert atoms.get_masses().sum() * units._amu * 1e3 / volume_cm3 == pytest.approx(density, rel=1e-9)
        lengths = np.diag(atoms.cell.array)
        assert np.all(atoms.positions >= 0) and np.all(atoms.positions < lengths)
        # Intact molecules: O-H bonds near the model's r0 (minimum image), not dissociated.
        o = atoms.positions[0::3]
        for h in (atoms.positions[1::3], atoms.positions[2::3]):
            d = h - o
            d -= lengths * np.round(d / lengths)
            assert np.all(np.linalg.norm(d, axis=1) < 1.3)
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        assert math.isfinite(energy) and forces.shape == (48, 3)
        # Liquid-water force scale, eV/Å (a missed kcal/mol → eV conversion would be ~23× larger).
        assert 0.3 < np.sqrt(np.mean(forces**2)) < 3.0
        # Instantaneous virial stress of a 16-molecule box: kbar scale (1 kbar = 6.2e-4 eV/Å³); a missed atm → eV/Å³
        # conversion would be ~1e3× larger, and the tensor is symmetric.
        stress = atoms.get_stress(voigt=False)
        assert 1e-5 < np.abs(stress).max() < 0.05 and np.allclose(stress, stress.T)
    metadata = frames.metadata
    assert metadata["units"]["energy"] == "eV" and metadata["units"]["forces"] == "eV/Angstrom"
    assert metadata["units"]["stress"].startswith("eV/Angstrom^3")
    assert metadata["state_counts"] == [3, 3]
    assert "pppm" in " ".join(metadata["force_field"]["lammps_commands"])


def test_labels_equal_an_independent_lammps_run_and_finite_differences(generated):
    path, _ = generated
    result = verify_frames(path, [0, 5], fd_atoms=2)
    assert result["passed"], result
    assert result["fd_components"] == 12
    assert result["forces_max_abs_eV_per_A"] < 1e-6 and result["fd_max_abs_eV_per_A"] < 2e-3
    # The stored stress is the strain derivative of the stored energy (central differences of LAMMPS' energy).
    assert result["stress_max_abs_eV_per_A3"] < 1e-9 and result["fd_stress_max_abs_eV_per_A3"] < 1e-6


def test_verification_notices_a_wrong_stress(generated, tmp_path):
    path, _ = generated
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(path.read_bytes())
    with h5py.File(corrupt, "r+") as f:
        f["stress"][0] *= -1.0  # pressure stored with the stress sign
    result = verify_frames(corrupt, [0], fd_atoms=0)
    assert not result["passed"] and result["fd_stress_max_abs_eV_per_A3"] > 1e-5


def test_verification_notices_wrong_labels(generated, tmp_path):
    path, _ = generated
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(path.read_bytes())
    with h5py.File(corrupt, "r+") as f:
        f["forces"][0] *= 1.0 / KCAL_MOL_TO_EV  # forces left in kcal/mol/Å
    result = verify_frames(corrupt, [0], fd_atoms=1)
    assert not result["passed"] and result["forces_max_abs_eV_per_A"] > 0.1


def test_killed_run_resumes_and_keeps_its_frames(generated, tmp_path, monkeypatch):
    path, _ = generated
    model = H5Frames(path).metadata["settings"]["model"]
    resumed = tmp_path / "resumed.h5"
    monkeypatch.setattr(water_sampling, "FLUSH_FRAMES", 2)
    real_sample, produced = water_sampling._sample_state, []

    def dying_sample(*args, **kwargs):
        for item in real_sample(*args, **kwargs):
            if len(produced) == 4:  # killed while sampling the 2nd frame of the 2nd state
                raise KeyboardInterrupt
            produced.append(item)
            yield item

    monkeypatch.setattr(water_sampling, "_sample_state", dying_sample)
    with pytest.raises(KeyboardInterrupt):
        generate_water(resumed, model=model, **SETTINGS)
    kept = H5Frames(resumed)
    assert len(kept) == 4
    kept_positions = [a.positions.copy() for a in kept]
    kept.close()

    monkeypatch.setattr(water_sampling, "_sample_state", real_sample)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        assert generate_water(resumed, model=model, **SETTINGS) == 6
    # Same LAMMPS build and seed: the re-run part of the state regenerates identical frames.
    assert not [w for w in records if "differs" in str(w.message)]
    complete, reference = H5Frames(resumed), H5Frames(path)
    for i in range(4):  # what was written before the kill is still there, bit for bit
        np.testing.assert_array_equal(complete[i].positions, kept_positions[i])
    for i in range(6):  # and the seeded run reproduces the uninterrupted file
        np.testing.assert_array_equal(complete[i].positions, reference[i].positions)
        assert complete[i].get_potential_energy() == reference[i].get_potential_energy()
    assert generate_water(resumed, model=model, **SETTINGS) == 6  # complete: nothing added


def test_other_settings_are_refused_by_name(generated):
    path, _ = generated
    model = H5Frames(path).metadata["settings"]["model"]
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"other settings \(frames_per_state: file has 3, this run 4\)"):
        generate_water(path, model=model, **{**SETTINGS, "frames_per_state": 4})
    with pytest.raises(ValueError, match="seed"):
        generate_water(path, model=model, **SETTINGS, seed=1)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"model": "tip5p"}, "unknown water model 'tip5p'"),
        ({"n_molecules": 0}, "n_molecules must be an integer >= 1"),
        ({"temperatures": []}, "temperatures must not be empty"),
        ({"temperatures": [-5.0]}, "temperatures must be positive"),
        ({"densities": [1.0, 1.0]}, "densities must not repeat"),
        ({"sample_interval_fs": 100.25}, "sample_interval_fs .* whole number of timesteps"),
        ({"timestep_fs": 0}, "timestep_fs must be positive"),
    ],
)
def test_bad_arguments_name_the_parameter(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        generate_water(tmp_path / "out.h5", **{**SETTINGS, **arguments})
    assert not (tmp_path / "out.h5").exists()


def test_output_must_be_a_writable_hdf5_file(tmp_path):
    with pytest.raises(ValueError, match="must be an HDF5 file"):
        generate_water(tmp_path / "out.xyz", **SETTINGS)
    with pytest.raises(ValueError, match="does not exist"):
        generate_water(tmp_path / "missing" / "out.h5", **SETTINGS)


def test_model_names_and_box_geometry():
    assert water_model("SPC/Fw").title == "SPC/Fw" and water_model("q-TIP4P/F").om_distance == 0.1471
    # 64 H2O at 0.997 g/cm³: the 12.42 Å box of the DFT sets.
    assert box_length(64, 0.997) == pytest.approx(12.42, abs=0.01)
    rng = np.random.default_rng(0)
    length = box_length(64, 1.0)
    x = initial_positions(water_model("spcfw"), 64, length, rng)
    o = x[0::3]
    d = o[:, None] - o[None]
    d -= length * np.round(d / length)
    r = np.linalg.norm(d, axis=-1) + np.eye(64) * 100
    assert r.min() > 2.0  # placed without clashes


def test_verify_command_checks_the_file(generated, capsys):
    path, _ = generated
    assert cli(["classical", "verify", str(path), "--frames", "0", "-1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["frames"] == [0, 5]
    assert cli(["classical", "verify", str(path), "--frames", "6"]) == 1
    assert "frame index 6 out of range" in capsys.readouterr().err
