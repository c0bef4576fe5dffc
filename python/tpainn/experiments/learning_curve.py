"""Learning curves: test error vs number of DFT frames N, autotuned from a pretrained model vs from scratch.

The arms are "scratch" and "autotuned" unless the experiment lists `variants`: a mapping from an arm's name to
its `overrides` of the training config and its `pretrained` model (default: the experiment's; null: from
scratch), so one experiment compares autotuning strategies against one shared from-scratch arm (the arm named
"scratch", always from scratch).
For every N and seed all arms use the same training config (model size, epochs, schedule; at least
`min_steps` optimizer steps, so small N means more epochs), the same
N frames (drawn from the pool by the seed's permutation, so the sets of one seed are nested in N;
n_val = max(1, round(val_fraction·N)) of them validate, the rest train) and the same fixed test set.
The pool (`dataset`) is any frame source and the test set (`test`) the registry's standard split, a seeded
fraction of the pool or a test file (tpainn/data/sources.py); results.md and sources.json name both with their
sha256. Every run is a normal training run in
its own directory, so an interrupted experiment resumes where it stopped.
"""

import copy
import csv
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import yaml

from tpainn.data.sources import sha_line, sources_of
from tpainn.train import load_config, train
from tpainn.train.config import DEFAULTS

EXPERIMENT_DEFAULTS: Dict[str, Any] = {
    "train_config": None,  # YAML training config shared by both arms (path relative to this file)
    "overrides": [],  # section.key=value overrides of the training config
    "pretrained": None,  # model.pt of the pretraining run
    "dataset": "water-revpbe0-d3",  # the DFT pool: a registry name, a file or a folder (tpainn/data/sources.py)
    # "standard" (the registry's split), a fraction 0 < f < 1 of the pool drawn with test_seed, or a test file
    "test": "standard",
    "test_seed": 0,
    "format": None,  # the files' format when their names do not tell
    "energy_key": None,  # extended XYZ / ASE database label keys, when not energy / forces / stress
    "forces_key": None,
    "stress_key": None,
    "sizes": [5, 10, 20, 50, 90],  # DFT frames (training + validation)
    "seeds": [0, 1],
    "val_fraction": 0.1,
    # Small N gives few gradient steps per epoch: every run gets at least this many optimizer steps
    # (its epochs are raised), so that the small-N runs are trained as far as the large-N ones.
    "min_steps": 0,
    "output_dir": "runs/learning-curve",
    # null: the arms scratch and autotuned; or {name: {overrides: [...], pretrained: path | null}}; the arm named
    # "scratch" (if any) is the reference of the error ratios.
    "variants": None,
}
DEFAULT_VARIANTS = {"scratch": {"pretrained": None}, "autotuned": {}}
# metric: (table column, plot axis label); values are stored in eV units and shown in meV.
METRIC_LABELS = {
    "energy_per_atom_mae": ("E MAE (meV/atom)", "energy MAE (meV/atom)"),
    "forces_mae": ("F MAE (meV/Å)", "force MAE (meV/Å)"),
    "energy_mae": ("E MAE (meV)", "energy MAE (meV per molecule)"),
}


def load_experiment(path: Path, overrides=()) -> Dict[str, Any]:
    """The experiment config; its train_config is resolved relative to the experiment file."""
    config = load_config(path, overrides, base=EXPERIMENT_DEFAULTS)
    if config["train_config"] is not None:
        config["train_config"] = str((Path(path).parent / config["train_config"]).resolve())
    variants = config["variants"] or DEFAULT_VARIANTS
    if not isinstance(variants, dict) or not variants:
        raise ValueError(f"{path}: 'variants' must be a mapping from arm names to {{overrides, pretrained}}")
    for name, variant in variants.items():
        unknown = set(variant or {}) - {"overrides", "pretrained"}
        if unknown:
            raise ValueError(f"{path}: variant {name!r} has unknown keys {sorted(unknown)} (known: overrides, pretrained)")
    config["variants"] = {name: dict(variant or {}) for name, variant in variants.items()}
    needs_pretrained = [name for name, variant in config["variants"].items()
                        if name != "scratch" and variant.get("pretrained", "") == ""]  # fmt: skip
    if config["pretrained"] is None and needs_pretrained:
        raise ValueError(f"{path}: 'pretrained' (the pretrained model.pt) is required by the arm(s) {', '.join(needs_pretrained)}")
    return config


def arms(experiment: Dict[str, Any]) -> List[str]:
    return list(experiment.get("variants") or DEFAULT_VARIANTS)


def data_section(experiment: Dict[str, Any]) -> Dict[str, Any]:
    """The training config's `data` section of every run: the experiment's pool, test set and reading options."""
    return {key: experiment.get(key, DEFAULTS["data"][key]) for key in DEFAULTS["data"]}


def run_config(experiment: Dict[str, Any], arm: str, size: int, seed: int) -> Dict[str, Any]:
    variant = (experiment.get("variants") or DEFAULT_VARIANTS)[arm]
    overrides = [*experiment["overrides"], *variant.get("overrides", [])]
    config = load_config(experiment["train_config"], overrides, base=copy.deepcopy(DEFAULTS))
    n_val = max(1, round(experiment["val_fraction"] * size))
    config["data"] = data_section(experiment)
    config["split"] = {"n_train": size - n_val, "n_val": n_val, "seed": seed}
    steps_per_epoch = math.ceil((size - n_val) / config["optimizer"]["batch_size"])
    epochs = max(config["epochs"], math.ceil(experiment["min_steps"] / steps_per_epoch))
    # patience scales with the epochs: it counts the same number of optimizer steps
    config["early_stopping_patience"] = math.ceil(config["early_stopping_patience"] * epochs / config["epochs"])
    config["epochs"] = epochs
    config["seed"] = seed
    pretrained = None if arm == "scratch" else variant.get("pretrained", experiment["pretrained"])
    config["autotune"]["from"] = str(pretrained) if pretrained else None
    config["output_dir"] = str(Path(experiment["output_dir"]) / f"{arm}-N{size}-seed{seed}")
    return config


def run_learning_curve(experiment: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Train every (arm, N, seed), then write results.csv, results.md, learning_curve.png, convergence.png."""
    rows = []
    for size in experiment["sizes"]:
        for seed in experiment["seeds"]:
            for arm in arms(experiment):
                config = run_config(experiment, arm, size, seed)
                done = Path(config["output_dir"]) / "checkpoint.pt"
                metrics = train(config, resume=done.exists())
                n_test = metrics.pop("n_frames")
                rows.append({"arm": arm, "n_frames": size, "seed": seed, "n_test_frames": n_test, **metrics, "run": config["output_dir"]})
    out = Path(experiment["output_dir"])
    write_results(rows, out, sources_of(data_section(experiment)))
    return rows


def write_results(rows: List[Dict[str, Any]], out: Path, sources: Optional[Dict[str, Any]] = None) -> None:
    """results.csv, results.md (headed by the data sources with their sha256, also in sources.json) and the plots."""
    out.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    summary = summarise(rows)
    header = ""
    if sources is not None:
        (out / "sources.json").write_text(json.dumps(sources, indent=2) + "\n")
        test = sources["test"]
        test_text = sha_line(test) if isinstance(test, dict) else f"{test}" + (f" (seed {sources['test_seed']})" if "test_seed" in sources else "")
        header = f"DFT pool: {sha_line(sources['pool'])}  \ntest set: {test_text}\n\n"
    (out / "results.md").write_text(header + markdown_table(summary))
    plot_learning_curve(summary, out / "learning_curve.png")
    plot_convergence(rows, out / "convergence.png")
    print((out / "results.md").read_text())
    print(f"results: {out / 'results.csv'}, {out / 'results.md'}, {out / 'learning_curve.png'}, {out / 'convergence.png'}")


def _metric_names(rows) -> List[str]:
    """Energy per atom and forces for condensed phases; the total energy (U0 for QM9) without forces."""
    if all("forces_mae" in r for r in rows):
        return ["energy_per_atom_mae", "forces_mae"]
    return ["energy_mae"]


def _arms(rows) -> List[str]:
    return list(dict.fromkeys(r["arm"] for r in rows))


def summarise(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Mean and standard deviation over seeds per (N, arm), each arm's scratch/arm error ratio, and the
    epochs its runs need to reach the from-scratch runs' best validation loss."""
    summary = []
    for size in sorted({r["n_frames"] for r in rows}):
        entry: Dict[str, Any] = {"n_frames": size, "arms": _arms(rows)}
        for arm in entry["arms"]:
            selected = [r for r in rows if r["n_frames"] == size and r["arm"] == arm]
            for metric in _metric_names(rows):
                values = np.array([r[metric] for r in selected])
                entry[f"{arm}_{metric}"] = float(values.mean())
                entry[f"{arm}_{metric}_std"] = float(values.std())
        for arm in [a for a in entry["arms"] if a != "scratch" and "scratch" in entry["arms"]]:
            for metric in _metric_names(rows):
                entry[f"ratio_{arm}_{metric}"] = entry[f"scratch_{metric}"] / entry[f"{arm}_{metric}"]
            entry[f"epochs_to_scratch_best_{arm}"] = epochs_to_scratch_best(rows, size, arm)
        summary.append(entry)
    return summary


def _val_losses(run_dir: str) -> List[float]:
    with open(Path(run_dir) / "metrics.csv") as f:
        return [float(row["val_loss"]) for row in csv.DictReader(f)]


def epochs_to_scratch_best(rows, size, arm: str = "autotuned") -> Dict[str, float]:
    """Per seed: (first epoch at which the arm's val loss ≤ the scratch run's best, scratch's best epoch)."""
    result = {}
    for seed in sorted({r["seed"] for r in rows if r["n_frames"] == size}):
        runs = {r["arm"]: r["run"] for r in rows if r["n_frames"] == size and r["seed"] == seed}
        scratch, tuned = _val_losses(runs["scratch"]), _val_losses(runs[arm])
        target = min(scratch)
        reached = next((epoch for epoch, loss in enumerate(tuned, 1) if loss <= target), math.nan)
        result[seed] = (reached, int(np.argmin(scratch)) + 1)
    return result


def markdown_table(summary: List[Dict[str, Any]]) -> str:
    """One row per (N, arm): test errors (mean ± std over seeds), the scratch/arm ratios, and the epochs the
    arm needs to reach scratch's best validation loss."""
    metrics = [m for m in METRIC_LABELS if f"{summary[0]['arms'][0]}_{m}" in summary[0]]
    labels = {m: label for m, (label, _) in METRIC_LABELS.items()}
    header = ["N", "arm"] + [labels[m] for m in metrics] + [f"scratch / arm {labels[m].split()[0]}" for m in metrics]
    header += ["epochs to scratch's best (scratch's best epoch)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for e in summary:
        for arm in e["arms"]:
            cells = [str(e["n_frames"]), arm]
            cells += [f"{1e3 * e[f'{arm}_{m}']:.3g} ± {1e3 * e[f'{arm}_{m}_std']:.2g}" for m in metrics]
            cells += [f"{e[f'ratio_{arm}_{m}']:.2f}×" if f"ratio_{arm}_{m}" in e else "—" for m in metrics]
            epochs = e.get(f"epochs_to_scratch_best_{arm}")
            reached = [f"{'not reached' if math.isnan(a) else a} ({b})" for a, b in (epochs or {}).values()]
            cells.append(", ".join(reached) or "—")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_learning_curve(summary: List[Dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in METRIC_LABELS if f"{summary[0]['arms'][0]}_{m}" in summary[0]]
    labels = {m: label for m, (_, label) in METRIC_LABELS.items()}
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    sizes = [e["n_frames"] for e in summary]
    for ax, metric in zip(axes[0], metrics):
        for arm in summary[0]["arms"]:
            mean = np.array([1e3 * e[f"{arm}_{metric}"] for e in summary])
            std = np.array([1e3 * e[f"{arm}_{metric}_std"] for e in summary])
            ax.errorbar(sizes, mean, yerr=std, marker="o", capsize=3, label=arm)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("DFT training frames N")
        ax.set_ylabel(f"test {labels[metric]}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_convergence(rows: List[Dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["n_frames"] for r in rows})
    colours = {arm: f"C{k}" for k, arm in enumerate(_arms(rows))}
    fig, axes = plt.subplots(1, len(sizes), figsize=(4 * len(sizes), 3.5), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        for r in rows:
            if r["n_frames"] == size:
                losses = _val_losses(r["run"])
                ax.plot(range(1, len(losses) + 1), losses, color=colours[r["arm"]],
                        label=r["arm"] if r["seed"] == rows[0]["seed"] else None)  # fmt: skip
        ax.set_yscale("log")
        ax.set_title(f"N = {size}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation loss")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
