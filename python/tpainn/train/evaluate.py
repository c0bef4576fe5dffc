"""Errors of a model on labelled frames: energy per atom, force and stress MAE/RMSE, and parity plots."""

from pathlib import Path
from typing import Dict, Sequence, Union

import ase.units
import numpy as np
import torch
from ase import Atoms
from torch.utils.data import DataLoader

from tpainn.data.graph import GraphDataset, collate, model_inputs
from tpainn.model import PaiNN

KBAR = 1e8 * ase.units.Pascal  # eV/Å³


def predict(model: PaiNN, frames: Union[Sequence[Atoms], GraphDataset], batch_size: int = 4) -> Dict[str, np.ndarray]:
    """Reference and predicted energies (eV), atom counts, and forces (eV/Å) and stress (eV/Å³, [n, 3, 3] of the
    frames that have it) when the frames have them. A GraphDataset is used as it is (validation reuses its
    cached graphs every epoch)."""
    model.eval()
    graphs = frames if isinstance(frames, GraphDataset) else GraphDataset(frames, model.cutoff, cache=False)
    loader = DataLoader(graphs, batch_size=batch_size, collate_fn=collate)
    keys = ("energy_ref", "energy_pred", "n_atoms", "forces_ref", "forces_pred", "stress_ref", "stress_pred")
    columns: Dict[str, list] = {k: [] for k in keys}
    for batch in loader:
        with_forces, with_stress = "forces" in batch, "stress" in batch
        out = model(*model_inputs(batch), compute_forces=with_forces, compute_stress=with_stress)
        columns["energy_ref"].append(batch["energy"])
        columns["energy_pred"].append(out["energy"].detach())
        columns["n_atoms"].append(batch["n_atoms"])
        if with_forces:
            columns["forces_ref"].append(batch["forces"])
            columns["forces_pred"].append(out["forces"].detach())
        if with_stress:
            mask = batch["stress_mask"]
            columns["stress_ref"].append(batch["stress"][mask])
            columns["stress_pred"].append(out["stress"].detach()[mask])
    return {k: torch.cat(v).numpy() for k, v in columns.items() if v}


def check_finite(prediction: Dict[str, np.ndarray]) -> None:
    """ValueError naming the frames (positions in the evaluated list) whose energy, reference or predicted, is not
    finite: metrics of NaN are no metrics. Forces and stress are summed into the same per-frame check."""
    n_frames = len(prediction["n_atoms"])
    for key, what in (("energy_ref", "reference"), ("energy_pred", "predicted")):
        finite = np.isfinite(prediction[key])
        atom_frame = np.repeat(np.arange(n_frames), prediction["n_atoms"])
        forces = prediction.get(key.replace("energy", "forces"))
        if forces is not None and len(forces) == len(atom_frame):
            finite &= np.bincount(atom_frame, ~np.isfinite(forces).any(axis=1), minlength=n_frames) == 0
        bad = np.flatnonzero(~finite)
        if bad.size:
            cause = "the data hold non-finite labels" if what == "reference" else "the model diverged, or a frame has overlapping atoms"
            raise ValueError(
                f"{what} energies or forces are not finite for {bad.size} of the {n_frames} frames evaluated "
                f"(frames {', '.join(map(str, bad[:10]))}): {cause}"
            )


def error_metrics(prediction: Dict[str, np.ndarray]) -> Dict[str, float]:
    """MAE and RMSE of the energy (eV per frame), of the energy per atom (eV/atom), of force components (eV/Å)
    and of stress components (eV/Å³, over the frames with stress)."""
    check_finite(prediction)
    error = prediction["energy_pred"] - prediction["energy_ref"]
    de = error / prediction["n_atoms"]
    metrics = {
        "energy_mae": float(np.mean(np.abs(error))),
        "energy_rmse": float(np.sqrt(np.mean(error**2))),
        "energy_per_atom_mae": float(np.mean(np.abs(de))),
        "energy_per_atom_rmse": float(np.sqrt(np.mean(de**2))),
        "n_frames": int(len(de)),
    }
    if "forces_ref" in prediction:
        df = prediction["forces_pred"] - prediction["forces_ref"]
        metrics["forces_mae"] = float(np.mean(np.abs(df)))
        metrics["forces_rmse"] = float(np.sqrt(np.mean(df**2)))
    if len(prediction.get("stress_ref", [])):
        ds = prediction["stress_pred"] - prediction["stress_ref"]
        metrics["stress_mae"] = float(np.mean(np.abs(ds)))
        metrics["stress_rmse"] = float(np.sqrt(np.mean(ds**2)))
    return metrics


def format_metrics(metrics: Dict[str, float]) -> str:
    lines = [
        f"energy:          MAE {1e3 * metrics['energy_mae']:.1f} meV, RMSE {1e3 * metrics['energy_rmse']:.1f} meV per frame",
        f"energy per atom: MAE {1e3 * metrics['energy_per_atom_mae']:.3f} meV/atom, "
        f"RMSE {1e3 * metrics['energy_per_atom_rmse']:.3f} meV/atom  ({metrics['n_frames']} frames)"
    ]
    if "forces_mae" in metrics:
        lines.append(f"forces:          MAE {1e3 * metrics['forces_mae']:.1f} meV/Å, RMSE {1e3 * metrics['forces_rmse']:.1f} meV/Å")
    if "stress_mae" in metrics:
        lines.append(
            f"stress:          MAE {1e3 * metrics['stress_mae']:.3f} meV/Å³ ({metrics['stress_mae'] / KBAR:.2f} kbar), "
            f"RMSE {1e3 * metrics['stress_rmse']:.3f} meV/Å³"
        )
    return "\n".join(lines)


def parity_plot(prediction: Dict[str, np.ndarray], path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("energy per atom (eV)", prediction["energy_ref"] / prediction["n_atoms"], prediction["energy_pred"] / prediction["n_atoms"])]
    if "forces_ref" in prediction:
        panels.append(("force component (eV/Å)", prediction["forces_ref"].ravel(), prediction["forces_pred"].ravel()))
    if len(prediction.get("stress_ref", [])):
        panels.append(("stress component (kbar)", prediction["stress_ref"].ravel() / KBAR, prediction["stress_pred"].ravel() / KBAR))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5), squeeze=False)
    for ax, (label, ref, pred) in zip(axes[0], panels):
        lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
        ax.scatter(ref, pred, s=4, alpha=0.5)
        ax.set_xlabel(f"reference {label}")
        ax.set_ylabel(f"predicted {label}")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
