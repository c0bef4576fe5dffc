"""Distributed training (`torchrun --nproc_per_node 2 -m tpainn train`, gloo): the same weights as one process
with the same global batch, exact resumption of a killed run, and files written by process 0 alone."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import tiny_config
from tpainn.train import train
from tpainn.train.checkpoint import load_checkpoint

EPOCHS = 8
# Batches of 4 frames, 2 per process; n_train=6 leaves a last batch of 2, one per process.
OVERRIDES = {"split": {"n_train": 6}, "optimizer": {"batch_size": 4}}


def config_for(tmp_path: Path, name: str):
    config, _ = tiny_config(tmp_path, name, EPOCHS)
    for section, values in OVERRIDES.items():
        config[section].update(values)
    return config


def torchrun(tmp_path: Path, config: dict, *extra: str) -> subprocess.Popen:
    """Two processes training `config` through the CLI, each recording the files it writes (helpers.audited_train)."""
    config_file = tmp_path / f"{Path(config['output_dir']).name}.yaml"
    config_file.write_text(yaml.safe_dump(config))
    tests = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]),
           "TPAINN_AUDIT_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}  # fmt: skip
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "helpers.audited_train", "train", str(config_file), *extra]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def kill(process: subprocess.Popen) -> None:
    """SIGKILL to the launcher and its training processes (which run in sessions of their own), as a node failure."""
    workers = [int(pid) for pid in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()]
    for pid in [process.pid, *workers]:
        os.kill(pid, signal.SIGKILL)
    process.communicate()


def finished(process: subprocess.Popen) -> None:
    try:
        _, stderr = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        kill(process)
        raise
    assert process.returncode == 0, stderr[-3000:]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, data_dir):
    """An uninterrupted two-process run: its directory and the files each process wrote."""
    tmp_path = tmp_path_factory.mktemp("ddp")
    config = config_for(tmp_path, "two")
    finished(torchrun(tmp_path, config))
    writes = {rank: json.loads((tmp_path / f"writes-{rank}.json").read_text()) for rank in (0, 1)}
    return Path(config["output_dir"]), writes


def weights(run_dir: Path):
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt")
    assert checkpoint["epoch"] == EPOCHS
    return {f"{key}.{name}": tensor for key in ("model", "ema") for name, tensor in checkpoint[key].items()}


def test_two_processes_train_as_one_with_the_same_global_batch(two_processes, tmp_path):
    run_dir, _ = two_processes
    config = config_for(tmp_path, "one")
    train(config)
    one, two = weights(Path(config["output_dir"])), weights(run_dir)
    for name, tensor in one.items():
        torch.testing.assert_close(two[name], tensor, rtol=1e-9, atol=1e-12, msg=f"{name} differs")
    # The metrics are reduced over the processes: the same losses, epoch by epoch.
    rows = [(Path(config["output_dir"]) / "metrics.csv").read_text().splitlines(), (run_dir / "metrics.csv").read_text().splitlines()]
    for one_row, two_row in zip(*(r[1:] for r in rows)):
        one_values, two_values = (list(map(float, row.split(",")[:-1])) for row in (one_row, two_row))  # all but seconds
        assert two_values == pytest.approx(one_values, rel=1e-9, nan_ok=True)


def test_process_zero_alone_writes_files(two_processes):
    run_dir, writes = two_processes
    # Atomic writes go through `<name>.<pid>.partial` (tpainn.files.replacing): count them under <name>.
    in_run = {rank: {re.sub(r"\.\d+\.partial$", "", Path(p).name) for p in paths if Path(p).parent == run_dir}
              for rank, paths in writes.items()}  # fmt: skip
    assert {"checkpoint.pt", "model.pt", "metrics.csv", "config.yaml", "test_metrics.json", "parity.png"} <= in_run[0]
    assert in_run[1] == set()


def test_killed_two_process_run_resumes_exactly(two_processes, tmp_path):
    run_dir, _ = two_processes
    config = config_for(tmp_path, "killed")
    process = torchrun(tmp_path, config)
    checkpoint = Path(config["output_dir"]) / "checkpoint.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.01)
    kill(process)
    killed_at = load_checkpoint(checkpoint)["epoch"]
    assert 1 <= killed_at < EPOCHS

    finished(torchrun(tmp_path, config, "--resume"))
    resumed, uninterrupted = weights(Path(config["output_dir"])), weights(run_dir)
    for name, tensor in uninterrupted.items():
        assert torch.equal(resumed[name], tensor), f"{name} differs after resume"
    rows = (Path(config["output_dir"]) / "metrics.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == [str(e) for e in range(1, EPOCHS + 1)]


def test_batches_too_small_to_share_are_refused():
    from tpainn.train.distributed import Distributed

    with pytest.raises(ValueError, match="split.n_train=7 leaves 1 in the last one"):
        Distributed(1, 2).check_batches(7, 2)
    Distributed(1, 2).check_batches(6, 2)


def test_process_shards_make_up_the_one_process_batches():
    from torch.utils.data import BatchSampler, RandomSampler

    from tpainn.train.distributed import Distributed

    def batches(dist):
        return list(dist.batch_sampler(range(11), 4, torch.Generator().manual_seed(3)))

    one = list(BatchSampler(RandomSampler(range(11), generator=torch.Generator().manual_seed(3)), 4, drop_last=False))
    assert batches(Distributed(0, 1)) == one
    shards = [batches(Distributed(rank, 2)) for rank in (0, 1)]
    assert [sorted(a + b) for a, b in zip(*shards)] == [sorted(batch) for batch in one]
    assert all(a and b and not set(a) & set(b) for a, b in zip(*shards))
