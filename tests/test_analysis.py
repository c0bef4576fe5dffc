"""`tpainn analyze` and tpainn.analysis against synthetic run directories with known answers.

The runs are written in the run-directory contract's own formats (LAMMPS data, log and dump text, DCD
via MDAnalysis), so the readers are tested together with the analysis.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from helpers.runs import (
    BOX_A, MASS_H, MASS_O, N_MOLECULES, TEMPERATURE_K, THERMO_EVERY, TIMESTEP_FS, brownian_frames, lattice_molecules,
    molecules, write_run,
)  # fmt: skip
from tpainn.analysis import analyze, block_average, first_peak, open_run, yeh_hummer_correction
from tpainn.analysis.density import density
from tpainn.analysis.report import write_report
from tpainn.cli import main
from tpainn.md.settings import MDSettings


# --- tests -------------------------------------------------------------------------------------------

# Atom ids O, O, ..., H, H, ...: with atom_style atomic molecules are found by distance, not by ids or order.
@pytest.mark.parametrize("trajectory, style", [("dcd", "full"), ("xu", "atomic"), ("images", "full")])
def test_brownian_diffusion_recovered_within_error(tmp_path, trajectory, style):
    d_true = 2.3  # 1e-9 m²/s = 0.23 Å²/ps
    frames = brownian_frames(d_true / 10, n_frames=201, seed=1)
    order = np.argsort(np.arange(frames.shape[1]) % 3, kind="stable")  # O, O, ..., H, H, ...
    run = write_run(tmp_path / "run", frames, BOX_A, trajectory=trajectory, style=style, order=order)
    result = analyze(run, properties=("diffusion",))["diffusion"]
    d, error = result["D_pbc_1e-9_m2_s"], result["D_pbc_error_1e-9_m2_s"]
    assert 0.01 * d_true < error < 0.2 * d_true
    assert abs(d - d_true) < 3 * error
    assert result["fit_window_ps"] == pytest.approx([2.0, 10.0])
    assert result["msd_exponent"] == pytest.approx(1.0, abs=0.1)
    expected = yeh_hummer_correction(result["temperature_K"], BOX_A, 0.896)
    assert result["correction_1e-9_m2_s"] == pytest.approx(expected)
    assert result["D_inf_1e-9_m2_s"] == pytest.approx(d + expected)
    assert result["temperature_K"] == pytest.approx(TEMPERATURE_K, abs=2.0)


def test_ideal_gas_rdfs_are_one_and_have_no_peak(tmp_path):
    rng = np.random.default_rng(2)
    frames = np.stack([molecules(rng, N_MOLECULES, BOX_A) for _ in range(60)])
    # Overlapping molecules: only molecule IDs (atom_style full) tell which hydrogens are intramolecular.
    run = write_run(tmp_path / "gas", frames, BOX_A, trajectory="images")
    rdfs = analyze(run, properties=("rdf",))["rdf"]
    for pair, rdf in rdfs.items():
        r, g = np.asarray(rdf["r_A"]), np.asarray(rdf["g"])
        assert r[-1] < BOX_A / 2
        # 0.5 Å windows from 0.5 Å: a missed intramolecular exclusion would put g ≈ 10 near 1 Å (O–H, H–H).
        windows = [g[(r >= lo) & (r < lo + 0.5)].mean() for lo in np.arange(0.5, r[-1] - 0.5, 0.5)]
        assert np.allclose(windows, 1.0, atol=0.15), (pair, np.round(windows, 2))
        assert g[r > 2.0].mean() == pytest.approx(1.0, abs=0.02), pair
        assert rdf["first_peak_A"] is None


def test_first_peak_of_a_water_like_curve():
    r = np.arange(0.025, 6.0, 0.05)
    g = np.where(r < 2.4, 0.0, 1.0) + 1.5 * np.exp(-((r - 2.8) ** 2) / 0.02) - 0.3 * np.exp(-((r - 3.4) ** 2) / 0.05)
    counts = np.full(len(r), 10_000)
    g += 0.02 * np.random.default_rng(3).normal(size=len(r))
    peak = first_peak(r, g, counts)
    assert peak["first_peak_A"] == pytest.approx(2.8, abs=0.05)
    assert peak["first_peak_height"] == pytest.approx(2.5, abs=0.1)
    # The same curve from a handful of pairs per bin: its peak is not distinguishable from counting noise.
    assert first_peak(r, g, np.full(len(r), 4))["first_peak_A"] is None


def test_density_of_a_box_of_known_mass_and_volume_is_exact(tmp_path):
    frames = brownian_frames(0.23, n_frames=21, seed=4)
    volume_A3 = 1900.0
    run = write_run(tmp_path / "run", frames, BOX_A, npt_volumes=np.full(40, volume_A3))
    result = density(open_run(run))
    avogadro = 6.02214076e23
    mass_g = N_MOLECULES * (MASS_O + 2 * MASS_H) / avogadro
    # rel 1e-8: since 2019 the dalton is 1/N_A g only to ~1e-9 (scipy uses the CODATA dalton).
    assert result["mean_g_cm3"] == pytest.approx(mass_g / (volume_A3 * 1e-24), rel=1e-8)
    assert result["error_g_cm3"] == pytest.approx(0.0, abs=1e-12)


def test_density_discards_a_detected_or_configured_equilibration(tmp_path):
    rng = np.random.default_rng(5)
    time_ps = np.arange(400) * THERMO_EVERY * TIMESTEP_FS / 1000  # 20 ps
    plateau_A3 = 1920.0
    volumes = plateau_A3 + 300 * np.exp(-time_ps / 0.5) + rng.normal(0, 5, len(time_ps))
    run = open_run(write_run(tmp_path / "run", brownian_frames(0.23, 21, seed=5), BOX_A, npt_volumes=volumes))
    mass_amu = N_MOLECULES * (MASS_O + 2 * MASS_H)
    expected = mass_amu / plateau_A3 * 1.66053906660
    detected = density(run)
    assert 1.0 < detected["equilibration_ps"] < 10.0
    assert abs(detected["mean_g_cm3"] - expected) < 4 * detected["error_g_cm3"]
    configured = density(run, equilibration_ps=5.0)
    assert configured["equilibration_ps"] == pytest.approx(5.0)
    assert abs(configured["mean_g_cm3"] - expected) < 4 * configured["error_g_cm3"]
    no_discard = density(run, equilibration_ps=0.0)
    assert no_discard["mean_g_cm3"] < expected - 4 * configured["error_g_cm3"]  # the transient biases it
    assert not detected["drifting"] and not configured["drifting"]


def test_a_drifting_density_is_flagged(tmp_path):
    """A box that keeps expanding (a model with no liquid at this pressure) has no equilibrium density."""
    rng = np.random.default_rng(8)
    time_ps = np.arange(400) * THERMO_EVERY * TIMESTEP_FS / 1000  # 20 ps
    volumes = 1920.0 * (1 + 0.01 * time_ps) + rng.normal(0, 5, len(time_ps))  # ~ −0.01 g/cm³ per ps
    run = open_run(write_run(tmp_path / "run", brownian_frames(0.23, 21, seed=8), BOX_A, npt_volumes=volumes))
    detected = density(run)  # pymbar would discard nearly all of a drifting series: at most half is
    assert detected["equilibration_ps"] <= 10.0 and detected["drifting"]
    result = density(run, equilibration_ps=0.0)
    assert result["drifting"]
    mass_amu = N_MOLECULES * (MASS_O + 2 * MASS_H)
    slope = np.polyfit(time_ps, mass_amu / volumes * 1.66053906660, 1)[0]
    assert result["drift_g_cm3_per_ps"] == pytest.approx(slope, rel=0.05)
    paths = write_report([{"model": "expanding", "run_dir": "r", "density": result}], tmp_path / "report")
    assert "not stationary: drifts -0.0" in paths["markdown"].read_text()


def test_block_average_error_of_a_correlated_series():
    # AR(1) with φ = 0.9: the standard error of the mean is sqrt(var/n · (1 + φ)/(1 − φ)), 4.4× the naive one.
    rng, phi, n = np.random.default_rng(6), 0.9, 20000
    noise = rng.normal(size=n)
    series = np.empty(n)
    series[0] = noise[0] / np.sqrt(1 - phi**2)
    for i in range(1, n):
        series[i] = phi * series[i - 1] + noise[i]
    exact = np.sqrt(1 / (1 - phi**2) / n * (1 + phi) / (1 - phi))
    mean, error = block_average(series, n_blocks=10)
    assert 0.6 * exact < error < 1.5 * exact
    assert abs(mean) < 3 * exact
    assert series.std() / np.sqrt(n) < 0.3 * exact  # why blocks: the naive error is far too small


def test_yeh_hummer_correction_by_hand():
    k_b, temperature, viscosity, length = 1.380649e-23, 300.0, 0.896e-3, 12.4e-10  # J/K, K, Pa·s, m
    by_hand = 2.837297 * k_b * temperature / (6 * np.pi * viscosity * length) / 1e-9
    assert yeh_hummer_correction(300.0, 12.4, 0.896) == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(0.561, abs=0.001)  # the note's "≈ 0.6e-9 m²/s" for 64 H2O


def test_run_without_trajectory_is_a_clear_error(tmp_path):
    volumes = np.random.default_rng(7).normal(1900.0, 5.0, 40)
    run = write_run(tmp_path / "run", brownian_frames(0.23, 21, seed=7), BOX_A, trajectory=None, npt_volumes=volumes)
    with pytest.raises(FileNotFoundError, match=r"run: no trajectory found \(expected one of trajectory.dcd"):
        analyze(run, properties=("diffusion",))
    assert analyze(run, properties=("density",))["density"]["mean_g_cm3"] > 0  # needs only the log and topology


def test_trajectory_shorter_than_the_fit_window_is_a_clear_error(tmp_path):
    run = write_run(tmp_path / "run", brownian_frames(0.23, 16, seed=8), BOX_A)  # 1.5 ps
    with pytest.raises(ValueError, match=r"trajectory.dcd: the trajectory spans 1.50 ps .* shorter than the MSD fit window"):
        analyze(run, properties=("diffusion",))
    with pytest.raises(ValueError, match="shorter than the MSD fit window 0.50–2.00 ps"):
        analyze(run, properties=("diffusion",), fit_window_ps=(0.5, 2.0))


def test_density_of_an_nvt_only_run_is_a_clear_error(tmp_path):
    run = write_run(tmp_path / "run", brownian_frames(0.23, 21, seed=9), BOX_A, npt_volumes=None)
    with pytest.raises(ValueError, match=r"summary.json: a density needs a stage in NPT, .*equilibration \(nvt\)"):
        analyze(run, properties=("density",))


def test_cli_reports_two_runs_in_one_table(tmp_path, capsys):
    runs = []
    for i, (model, d) in enumerate([("autotuned", 0.23), ("dft-only", 0.15)]):
        volumes = np.random.default_rng(i).normal(1900.0, 5.0, 100)
        runs.append(write_run(tmp_path / model, brownian_frames(d, 101, seed=10 + i), BOX_A, model=model, npt_volumes=volumes))
    out = tmp_path / "report"
    assert main(["analyze", *map(str, runs), "-o", str(out)]) == 0
    for name in ("report.md", "report.html", "results.json", "density.png", "msd.png", "rdf.png"):
        assert (out / name).stat().st_size > 0, name
    markdown = (out / "report.md").read_text()
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert [line.split("|")[1].strip() for line in table[1:]] == ["autotuned", "dft-only", "experiment (298 K)"]
    assert "0.997" in table[-1] and "2.30" in table[-1] and "≈ 2.4" in table[-1]
    results = json.loads((out / "results.json").read_text())
    hh_column = table[0].split("|").index(" H–H peak r (Å) ")
    hh = results[0]["rdf"]["H-H"]["first_peak_A"]
    assert table[1].split("|")[hh_column].strip() == ("—" if hh is None else f"{hh:.2f}")
    assert "<td>dft-only</td>" in (out / "report.html").read_text()
    results = json.loads((out / "results.json").read_text())
    assert results[0]["diffusion"]["D_pbc_1e-9_m2_s"] > results[1]["diffusion"]["D_pbc_1e-9_m2_s"]
    assert str(out / "report.md") in capsys.readouterr().out


def test_cli_names_runs_it_cannot_analyse_in_the_report(tmp_path, capsys):
    """An MD run that crashed is a row saying why, next to the runs that finished and one without NPT."""
    good = write_run(tmp_path / "good", brownian_frames(0.23, 101, seed=12), BOX_A, model="finished",
                     npt_volumes=np.random.default_rng(3).normal(1900.0, 5.0, 100))  # fmt: skip
    crashed = write_run(tmp_path / "crashed", brownian_frames(0.23, 101, seed=13), BOX_A, model="crashed model",
                        npt_volumes=np.full(100, 1900.0))  # fmt: skip
    with open(crashed / "log.lammps", "a") as log:
        log.write("ERROR: Pair tpainn: atoms 3 and 7 overlap (0.05 A)\n")
    nvt_only = write_run(tmp_path / "nvt", brownian_frames(0.23, 101, seed=14), BOX_A, model="nvt only", npt_volumes=None)
    out = tmp_path / "report"
    assert main(["analyze", str(good), str(crashed), str(nvt_only), "-o", str(out)]) == 0
    rows = [line for line in (out / "report.md").read_text().splitlines() if line.startswith("| ")]
    assert rows[1].startswith("| finished |") and rows[2].startswith("| crashed model | — |")
    # A run held at one density (no NPT stage) is a row with that density, not a density error.
    mass_amu = N_MOLECULES * (MASS_O + 2 * MASS_H)
    assert rows[3].startswith(f"| nvt only | {mass_amu / BOX_A**3 * 1.66053906660:.3f} (NVT, fixed) | ")
    assert "not analysed" not in rows[3] and "± " in rows[3]
    assert "not analysed: " in rows[2] and "the LAMMPS run failed: ERROR: Pair tpainn: atoms 3 and 7 overlap" in rows[2]
    assert "atoms 3 and 7 overlap" in capsys.readouterr().err
    assert json.loads((out / "results.json").read_text())[1]["error"].startswith(str(crashed / "log.lammps"))


def test_cli_error_names_the_problem(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "missing"), "-o", str(tmp_path / "report")]) == 1
    assert "missing: run directory does not exist" in capsys.readouterr().err


# --- pressure and short contacts ---------------------------------------------------------------------

def production_pressures(run: Path) -> np.ndarray:
    """The `Press` column of the log's last thermo block (the production stage), read here by hand."""
    lines = (run / "log.lammps").read_text().splitlines()
    header = max(i for i, line in enumerate(lines) if line.split()[:1] == ["Step"])
    end = next(i for i in range(header, len(lines)) if lines[i].startswith("Loop time of"))
    return np.array([float(line.split()[3]) for line in lines[header + 1 : end]])


def test_pressure_is_the_block_averaged_production_press(tmp_path):
    run = write_run(tmp_path / "run", np.stack([lattice_molecules(4, BOX_A)] * 21), BOX_A, seed=20)
    logged = production_pressures(run)
    assert len(logged) == 41 and logged.std() > 100  # the synthetic log's pressure is noise around 1 bar
    result = analyze(run, properties=("pressure",))["pressure"]
    assert result["mean_bar"] == pytest.approx(logged.mean(), rel=1e-12)
    assert result["error_bar"] == pytest.approx(block_average(logged, 10)[1], rel=1e-12)
    assert 0 < result["error_bar"] < logged.std()
    assert (result["stage"], result["ensemble"], result["n_samples"]) == ("production", "nvt", 41)
    mass_amu = N_MOLECULES * (MASS_O + 2 * MASS_H)
    assert result["density_g_cm3"] == pytest.approx(mass_amu / BOX_A**3 * 1.66053906660, rel=1e-8)
    # `real` units log atm: reported in bar.
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "units": "real"}))
    real = analyze(run, properties=("pressure",))["pressure"]
    assert real["mean_bar"] == pytest.approx(1.01325 * logged.mean(), rel=1e-12)
    assert real["log_units"] == "real"


def test_pressure_of_a_production_too_short_to_block_average_is_a_clear_error(tmp_path):
    run = write_run(tmp_path / "run", np.stack([lattice_molecules(4, BOX_A)] * 5), BOX_A)  # 9 thermo rows
    with pytest.raises(ValueError, match=r"log.lammps: the production stage 'production' has 9 thermo rows"):
        analyze(run, properties=("pressure",))


def planted_frames(n_frames: int = 12) -> np.ndarray:
    """Lattice water (no intermolecular pair closer than 2.1 Å; each molecule's own O–H, 0.97 Å here, and H–H,
    1.5 Å, are shorter than the limits) with one intermolecular H–H pair at 1.2 Å planted in frames 4 and 7."""
    frames = np.stack([lattice_molecules(4, BOX_A)] * n_frames)
    oh = frames[:, 1::3] - frames[:, 0::3]
    frames[:, 1::3] = frames[:, 0::3] + oh * 0.97 / np.linalg.norm(oh, axis=-1, keepdims=True)  # bonded O–H 0.97 Å
    h_of_molecule_0 = frames[0, 1]  # (0.97, 0, 0); molecule 1 is the lattice neighbour at z = BOX/4
    frames[4, 3 * 1 + 1] = h_of_molecule_0 + [0.0, 0.0, 1.2]
    # Frame 7: across the periodic boundary, from molecule 3 (z = 3 BOX/4), unwrapped one box along x.
    frames[7, 3 * 3 + 1] = h_of_molecule_0 + [0.0, 0.0, -1.2 + BOX_A]
    frames[7, 9:12] += [BOX_A, 0.0, 0.0]
    return frames


@pytest.mark.parametrize("trajectory, style, shuffled", [("dcd", "full", False), ("xu", "atomic", True)])
def test_short_contacts_count_the_planted_intermolecular_pair_only(tmp_path, trajectory, style, shuffled):
    frames = planted_frames()
    order = np.argsort(np.arange(frames.shape[1]) % 3, kind="stable") if shuffled else None  # O, O, ..., H, H, ...
    run = write_run(tmp_path / "run", frames, BOX_A, trajectory=trajectory, style=style, order=order)
    result = analyze(run, properties=("contacts", "rdf"))
    contacts = result["contacts"]
    expected = np.zeros(len(frames), int)
    expected[[4, 7]] = 1
    assert contacts["n_frames"] == len(frames)
    assert contacts["H-H"]["per_frame"] == expected.tolist()
    assert contacts["H-H"]["mean_per_frame"] == pytest.approx(2 / 12)
    assert contacts["H-H"]["fraction_of_frames"] == pytest.approx(2 / 12)
    assert contacts["H-H"]["min_distance_A"] == pytest.approx(1.2, abs=1e-3)
    # The bonded O–H (0.97 Å) of every molecule is not counted; the planted H is 1.54 Å from molecule 0's O.
    assert contacts["O-H"]["per_frame"] == [0] * len(frames)
    assert contacts["O-H"]["fraction_of_frames"] == 0 and contacts["O-H"]["min_distance_A"] is None
    assert result["rdf"]["H-H"]["max_g_below_1.6_A"] > 0.01  # one pair in 6 frames at 1.2 Å: g ≈ 0.04
    lattice = write_run(tmp_path / "lattice", np.stack([lattice_molecules(4, BOX_A)] * 12), BOX_A, style=style)
    clean = analyze(lattice, properties=("contacts", "rdf"))
    assert clean["contacts"]["H-H"]["mean_per_frame"] == 0 and clean["contacts"]["O-H"]["mean_per_frame"] == 0
    assert clean["rdf"]["H-H"]["max_g_below_1.6_A"] == 0.0


def test_short_contacts_equal_a_brute_force_count(tmp_path):
    """Overlapping random molecules (an ideal gas): many contacts of both kinds, counted by hand."""
    rng = np.random.default_rng(21)
    frames = np.stack([molecules(rng, N_MOLECULES, BOX_A) + rng.integers(-1, 2, (1, 3)) * BOX_A for _ in range(8)])
    contacts = analyze(write_run(tmp_path / "gas", frames, BOX_A), properties=("contacts",))["contacts"]
    molecule = np.arange(frames.shape[1]) // 3
    is_h = np.arange(frames.shape[1]) % 3 > 0
    expected = {"H-H": [], "O-H": []}
    for positions in frames:
        delta = positions[:, None] - positions[None, :]
        distance = np.linalg.norm(delta - BOX_A * np.round(delta / BOX_A), axis=-1)
        other = molecule[:, None] != molecule[None, :]
        expected["H-H"].append(int(np.sum(np.triu(other & (distance < 1.6) & is_h[:, None] & is_h[None, :]))))
        expected["O-H"].append(int(np.sum(other & (distance < 1.3) & ~is_h[:, None] & is_h[None, :])))
    for kind in ("H-H", "O-H"):
        assert contacts[kind]["per_frame"] == expected[kind], kind
        assert contacts[kind]["mean_per_frame"] == pytest.approx(np.mean(expected[kind]))
        assert contacts[kind]["fraction_of_frames"] == pytest.approx(np.mean(np.asarray(expected[kind]) > 0))
    assert sum(expected["H-H"]) > 8 and sum(expected["O-H"]) > 8  # the test has contacts to count


def test_max_g_below_takes_only_bins_wholly_below_the_limit():
    from tpainn.analysis.rdf import max_g_below

    r = np.arange(0.025, 3.0, 0.05)
    g = np.where(r > 1.8, 1.0, 0.0)
    g[np.argmin(np.abs(r - 1.175))] = 7.7  # the autotuned model's spike
    g[np.argmin(np.abs(r - 1.625))] = 9.0  # the bin 1.60–1.65 Å is not below 1.6 Å
    assert max_g_below(r, g, 1.6) == pytest.approx(7.7)
    assert max_g_below(r, np.where(r > 1.8, 1.0, 0.0), 1.6) == 0.0


def test_report_shows_pressure_and_short_contacts(tmp_path):
    run = write_run(tmp_path / "run", planted_frames(21), BOX_A, model="spiky", seed=22)
    out = tmp_path / "report"
    assert main(["analyze", str(run), "-o", str(out), "--properties", "pressure", "contacts", "rdf"]) == 0
    table = [line.split("|")[1:-1] for line in (out / "report.md").read_text().splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in table[0]]
    row, experiment = ([cell.strip() for cell in line] for line in table[1:])
    results = json.loads((out / "results.json").read_text())[0]
    pressure = results["pressure"]
    assert row[header.index("P (bar)")] == f"{pressure['mean_bar']:.0f} ± {pressure['error_bar']:.0f}"
    assert pressure["mean_bar"] == pytest.approx(production_pressures(run).mean())
    contacts_column = header.index("short contacts per frame: H–H < 1.6 Å / O–H < 1.3 Å (% of frames)")
    assert row[contacts_column] == "0.10 (10 %) / 0 (0 %)"  # 2 of 21 frames have the planted pair
    assert results["contacts"]["H-H"]["per_frame"][4] == 1
    g_hh = results["rdf"]["H-H"]["max_g_below_1.6_A"]
    assert g_hh > 0 and row[header.index("max g_HH < 1.6 Å")] == f"{g_hh:.2f}"
    assert experiment[0] == "experiment (298 K)" and experiment[contacts_column] == "0 (0 %) / 0 (0 %)"
    assert "<th>P (bar)</th>" in (out / "report.html").read_text()


def test_a_run_stopped_within_npt_has_the_density_of_its_logged_chunks(tmp_path):
    """`tpainn md water` killed 20 ps into a 40 ps NPT stage: summary.json lists the stage as remaining, the log
    holds its finished 1-ps chunks (complete thermo blocks) and the chunk in progress (no `Loop time`)."""
    rng = np.random.default_rng(11)
    volume_A3 = 1920.0
    path = write_run(tmp_path / "run", brownian_frames(0.23, 21, seed=11), BOX_A,
                     npt_volumes=volume_A3 + rng.normal(0, 5, 400))  # fmt: skip
    log = (path / "log.lammps").read_text()
    in_progress = "\n   Step          Temp          PotEng         Press          Volume    \n" + "".join(
        f"{step:10d}   300.0  -3000.0  1.0  {2 * volume_A3:14.6f}\n" for step in range(40900, 41200, 100))
    (path / "log.lammps").write_text(log[: log.rindex("\nrun ")] + in_progress)  # production never started
    summary = json.loads((path / "summary.json").read_text())
    finished, remaining = summary["stages"][:1], [stage["name"] for stage in summary["stages"][1:]]
    settings = MDSettings(npt_ps=40.0, timestep_fs=TIMESTEP_FS, thermo_every_fs=THERMO_EVERY * TIMESTEP_FS)
    (path / "summary.json").write_text(json.dumps({**summary, "stages": finished, "stages_remaining": remaining,
                                                   "settings": dataclasses.asdict(settings)}))  # fmt: skip
    result = density(open_run(path), equilibration_ps=0.0)
    mass_amu = N_MOLECULES * (MASS_O + 2 * MASS_H)
    assert abs(result["mean_g_cm3"] - mass_amu / volume_A3 * 1.66053906660) < 4 * result["error_g_cm3"]
    assert result["averaged_ps"] == pytest.approx(399 * THERMO_EVERY * TIMESTEP_FS / 1000)  # the chunk in progress is not
    assert not result["stage_complete"]
    paths = write_report([{"model": "killed", "run_dir": "r", "density": result}], tmp_path / "report")
    assert "(run stopped within NPT: 19.9 ps logged)" in paths["markdown"].read_text()
    # Without the settings that plan the stages, only finished stages count.
    (path / "summary.json").write_text(json.dumps({**summary, "stages": finished, "stages_remaining": remaining}))
    with pytest.raises(ValueError, match="a density needs a stage in NPT"):
        density(open_run(path))
