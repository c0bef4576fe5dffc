"""examples/own-data/README.md runs as written: every command of its bash blocks, in order, in a fresh folder,
with options appended that make it tiny (fewer frames, a smaller network, one epoch; later options win)."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from tpainn.cli import main as cli

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "own-data"
TINY_NET = ["model.n_features=8", "model.n_interactions=1", "model.n_rbf=4", "model.cutoff=3.0", "threads=1"]
# Appended to the README's command that starts with the key.
TINY = {
    "python examples/own-data/make_user_file.py": ["--n-pool", "10", "--n-test", "3"],
    "tpainn data info": [],
    "tpainn classical for": [],
    "mkdir -p runs/own": [],
    "tpainn classical water": ["--n-molecules", "16", "--temperatures", "300", "--densities", "1.0",
                               "--frames-per-state", "6", "--equilibration-ps", "0.05"],  # fmt: skip
    "tpainn pretrain": [*TINY_NET, "split.n_train=4", "split.n_val=2", "epochs=1"],
    "tpainn experiment learning-curve": ["sizes=[4]", "seeds=[0]", "min_steps=0",
                                         f"overrides=[{', '.join([*TINY_NET, 'epochs=1', 'autotune.replay.n_frames=4'])}]"],
    "tpainn autotune": [*TINY_NET, "split.n_train=4", "split.n_val=2", "epochs=1", "autotune.replay.n_frames=4"],
    "tpainn evaluate": [],
    "tpainn export": [],
    "tpainn md input": ["--steps", "5"],
    "cd runs/own/lammps && lmp": [],
}


def readme_commands() -> list:
    text = (EXAMPLE / "README.md").read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                lines.append(" ".join(line.split()))
    return lines


def test_every_readme_command_is_known():
    prefixes = [next((p for p in TINY if command.startswith(p)), None) for command in readme_commands()]
    assert None not in prefixes and len(set(prefixes)) == len(TINY)  # a new or changed step needs its tiny options


def test_walkthrough_runs_as_written(tmp_path, monkeypatch, data_dir, capsys):
    (tmp_path / "examples").symlink_to(EXAMPLE.parent)
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    for command in readme_commands():
        extra = next(options for prefix, options in TINY.items() if command.startswith(prefix))
        if command.startswith("tpainn "):
            assert cli([*shlex.split(command)[1:], *extra]) == 0, command
        else:
            python = command.replace("python ", f"{sys.executable} ", 1)
            result = subprocess.run(f"{python} {shlex.join(extra)}", shell=True, env=env, capture_output=True, text=True)
            assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    out = capsys.readouterr().out
    assert "water, 64 H2O per frame" in out and "forces:          10 of 10 frames" in out
    curve = tmp_path / "runs" / "own" / "learning-curve"
    table = (curve / "results.md").read_text()
    assert "| 4 | scratch |" in table and "| 4 | autotuned |" in table and "test set: " in table
    assert yaml.safe_load((curve / "autotuned-N4-seed0" / "config.yaml").read_text())["data"]["energy_key"] == "dft_energy"
    assert (tmp_path / "runs" / "own" / "water.pt").stat().st_size > 10_000
    log = (tmp_path / "runs" / "own" / "lammps" / "log.lammps").read_text()
    assert "pair_style tpainn" in log and "Loop time" in log
