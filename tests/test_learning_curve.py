"""The learning-curve experiment at a tiny scale: every run happens and the CSV, table and plots appear."""

import csv

import yaml

from conftest import tiny_config
from tpainn.cli import main as cli


def test_tiny_learning_curve_writes_results(tmp_path, pretrained_model, capsys):
    train_config, _ = tiny_config(tmp_path, "unused", 2)
    train_config["model"]["n_interactions"] = 2
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(train_config))
    experiment = {
        "train_config": "train.yaml", "pretrained": str(pretrained_model), "dataset": "water-revpbe0-d3",
        "sizes": [3, 5], "seeds": [0], "output_dir": str(tmp_path / "curve"),
        "variants": {"scratch": {}, "autotuned": {}, "l2sp": {"overrides": ["autotune.l2sp=100.0"]}},
    }  # fmt: skip
    (tmp_path / "curve.yaml").write_text(yaml.safe_dump(experiment))
    assert cli(["experiment", "learning-curve", str(tmp_path / "curve.yaml")]) == 0
    out = tmp_path / "curve"
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["arm"], r["n_frames"]) for r in rows) == [
        ("autotuned", "3"), ("autotuned", "5"), ("l2sp", "3"), ("l2sp", "5"), ("scratch", "3"), ("scratch", "5")]  # fmt: skip
    assert all(r["n_test_frames"] == "21" and float(r["energy_per_atom_mae"]) > 0 for r in rows)
    header, table = (out / "results.md").read_text().split("\n\n")
    assert table.count("\n") == 2 + 6 and "| 3 | l2sp |" in table and "| 5 | scratch |" in table
    # The sources, named with their sha256: the registry file's, and the standard split.
    assert header == ("DFT pool: water-revpbe0-d3 (sha256 8f5bded8fdd5b9e321b71f8da52a733df0e5d197326e053bdddb2be7012616fc)  \n"
                      "test set: standard split of the pool")  # fmt: skip
    # A variant is the autotuned arm with its overrides; the arm named scratch stays from scratch.
    l2sp = yaml.safe_load((out / "l2sp-N3-seed0" / "config.yaml").read_text())
    assert l2sp["autotune"]["l2sp"] == 100.0 and l2sp["autotune"]["from"] == str(pretrained_model)
    assert yaml.safe_load((out / "scratch-N3-seed0" / "config.yaml").read_text())["autotune"]["from"] is None
    assert (out / "learning_curve.png").stat().st_size > 5_000 and (out / "convergence.png").stat().st_size > 5_000
    # Both arms saw the same frames: same split in both configs.
    for size in (3, 5):
        configs = [yaml.safe_load((out / f"{arm}-N{size}-seed0" / "config.yaml").read_text()) for arm in ("scratch", "autotuned")]
        assert configs[0]["split"] == configs[1]["split"] == {"n_train": size - 1, "n_val": 1, "seed": 0}
        assert configs[0]["epochs"] == configs[1]["epochs"]
    # Rerunning resumes the finished runs instead of failing on their checkpoints.
    assert cli(["experiment", "learning-curve", str(tmp_path / "curve.yaml")]) == 0


def test_min_steps_raises_epochs_of_small_sets_only(tmp_path):
    from tpainn.experiments.learning_curve import run_config

    train_config, _ = tiny_config(tmp_path, "unused", 40)
    train_config["early_stopping_patience"] = 20
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(train_config))
    experiment = {"train_config": str(tmp_path / "train.yaml"), "overrides": [], "pretrained": "x.pt",
                  "dataset": "water-revpbe0-d3", "val_fraction": 0.1, "min_steps": 500, "output_dir": str(tmp_path)}  # fmt: skip
    small = run_config(experiment, "scratch", 5, 0)  # 4 training frames, batch 2: 2 steps per epoch
    assert (small["epochs"], small["early_stopping_patience"]) == (250, 125)
    large = run_config(experiment, "autotuned", 90, 0)  # 81 frames: 41 steps per epoch, 40 epochs > 500 steps
    assert (large["epochs"], large["early_stopping_patience"]) == (40, 20)
    assert large["autotune"]["from"] == "x.pt" and small["autotune"]["from"] is None


def test_table_says_when_an_arm_never_reaches_scratchs_best():
    import math

    from tpainn.experiments.learning_curve import markdown_table

    entry = {"n_frames": 10, "arms": ["scratch", "tuned"], "scratch_forces_mae": 0.1, "scratch_forces_mae_std": 0.01,
             "tuned_forces_mae": 0.2, "tuned_forces_mae_std": 0.02, "ratio_tuned_forces_mae": 0.5,
             "epochs_to_scratch_best_tuned": {0: (math.nan, 40), 1: (3, 35)}}  # fmt: skip
    row = markdown_table([entry]).splitlines()[-1]
    assert row.endswith("| 0.50× | not reached (40), 3 (35) |"), row
