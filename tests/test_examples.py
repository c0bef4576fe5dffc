"""The configs of `make demo` (examples/water/demo.sh) at both scales fit together: a mismatch would only show
after the (hours of) pretraining."""

import math
import re
import subprocess
from pathlib import Path

import pytest

from tpainn.experiments.learning_curve import load_experiment, run_config
from tpainn.train import load_config

WATER = Path(__file__).resolve().parent.parent / "examples" / "water"
DEMO = (WATER / "demo.sh").read_text()


@pytest.mark.parametrize("scale, configs", [("quick", "demo"), ("paper", "paper")])
def test_demo_configs_chain(scale, configs):
    block = re.search(rf"^  {scale}\)\n(.*?);;", DEMO, re.S | re.M)[1]
    out = re.search(r"out=(\S+)", block)[1]
    assert re.search(rf"configs=\$here/{configs}\b", block)
    n_frames = int(re.search(r"n_frames=(\d+)", block)[1])
    pretrain = load_config(WATER / configs / "pretrain.yaml")
    experiment = load_experiment(WATER / configs / "learning-curve.yaml")
    assert pretrain["data"]["dataset"] == f"{out}/classical/qtip4pf-64-contacts.h5"  # what step 1 writes
    assert re.search(r"^tpainn classical contacts \S+ -o \$out/classical/qtip4pf-64-contacts.h5$", DEMO, re.M)
    assert experiment["pretrained"] == f"{pretrain['output_dir']}/model.pt"
    assert experiment["sizes"] == [n_frames] and experiment["seeds"] == [0]  # the models step 4 exports
    assert experiment["output_dir"] == f"{out}/learning-curve"
    autotuned = run_config(experiment, "autotuned", n_frames, 0)
    assert autotuned["model"] == pretrain["model"]  # autotuning keeps the pretrained architecture
    assert autotuned["autotune"]["from"] == experiment["pretrained"]


def test_demo_refuses_an_unknown_scale():
    result = subprocess.run(["bash", str(WATER / "demo.sh"), "huge"], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown scale 'huge'" in result.stderr


def test_production_configs_chain():
    """examples/water/production: the F=128 x 3 recipe on 2 cores pretrains on the file transfer.sh writes, and
    every arm of its learning curve trains the pretrained architecture for the same number of optimizer steps."""
    production = WATER / "production"
    pretrain = load_config(production / "pretrain.yaml")
    experiment = load_experiment(production / "learning-curve.yaml")
    assert re.search(rf"-o {pretrain['data']['dataset']}$", (WATER / "transfer.sh").read_text(), re.M)
    assert (pretrain["model"]["n_features"], pretrain["model"]["n_interactions"]) == (128, 3)
    assert experiment["pretrained"] == f"{pretrain['output_dir']}/model.pt"
    arms = {name: run_config(experiment, name, 10, 0) for name in experiment["variants"]}
    assert arms["autotuned"]["autotune"]["from"] == experiment["pretrained"]
    assert all(arm["autotune"]["from"] is None for name, arm in arms.items() if name.startswith("scratch"))
    for arm in arms.values():
        assert arm["model"] == pretrain["model"]
        n_train = arm["split"]["n_train"]
        assert arm["epochs"] * math.ceil(n_train / arm["optimizer"]["batch_size"]) >= experiment["min_steps"] == 250


def test_production_liquid_config_replays_the_pretraining_frames_at_equal_cpu():
    """production/liquid.yaml: the replay arm autotunes the production pretraining with the classical frames
    replayed as ../autotune.yaml does; the from-scratch arm sees as many frames (its steps are twice as many, each
    without the replayed half), and so does the L2-SP arm."""
    production = WATER / "production"
    experiment = load_experiment(production / "liquid.yaml")
    assert experiment["pretrained"] == f"{load_config(production / 'pretrain.yaml')['output_dir']}/model.pt"
    replay, scratch = (run_config(experiment, arm, 50, 0) for arm in ("replay-w2", "scratch"))
    assert replay["autotune"]["replay"] == load_config(WATER / "autotune.yaml")["autotune"]["replay"]
    assert replay["autotune"]["from"] == experiment["pretrained"] and scratch["autotune"]["from"] is None
    assert replay["model"] == scratch["model"] and replay["model"]["n_features"] == 128

    def frames_seen(arm, per_batch):
        return arm["epochs"] * math.ceil(arm["split"]["n_train"] / arm["optimizer"]["batch_size"]) * per_batch

    batch = replay["optimizer"]["batch_size"]
    assert frames_seen(scratch, batch) == frames_seen(replay, batch + replay["autotune"]["replay"]["per_batch"])
    # L2-SP: no replayed frames, so the from-scratch arm's steps; the penalty is toward the same pretrained model.
    l2sp = run_config(experiment, "l2sp-1e-2", 50, 0)
    assert l2sp["autotune"]["l2sp"] > 0 and l2sp["autotune"]["replay"]["data"] is None
    assert l2sp["autotune"]["from"] == experiment["pretrained"] and l2sp["model"] == scratch["model"]
    assert frames_seen(l2sp, batch) == frames_seen(scratch, batch)
