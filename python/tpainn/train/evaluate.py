"""Errors of a model on labelled frames: energy per atom and force MAE/RMSE, and parity plots."""

from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import torch
from ase import Atoms
from torch.utils.data import DataLoader

from tpainn.data.graph import GraphDataset, collate, model_inputs
from tpainn.model import PaiNN


def predict(model: PaiNN, frames: Sequence[Atoms], batch_size: int = 4) -> Dict[str, np.ndarray]:
    """Reference and predicted energies (eV), atom counts, and forces (eV/Å) when the frames have them."""
    model.eval()
    loader = DataLoader(GraphDataset(frames, model.cutoff, cache=False), batch_size=batch_size, collate_fn=collate)
    columns: Dict[str, list] = {k: [] for k in ("energy_ref", "energy_pred", "n_atoms", "forces_ref", "forces_pred")}
    for batch in loader:
        with_forces = "forces" in batch
        out = model(*model_inputs(batch), compute_forces=with_forces)
        columns["energy_ref"].append(batch["energy"])
        columns["energy_pred"].append(out["energy"].detach())
        columns["n_atoms"].append(batch["n_atoms"])
        if with_forces:
            columns["forces_ref"].append(batch["forces"])
            columns["forces_pred"].append(out["forces"].detach())
    return {k: torch.cat(v).numpy() for k, v in columns.items() if v}


def error_metrics(prediction: Dict[str, np.ndarray]) -> Dict[str, float]:
    """MAE and RMSE of the energy (eV per frame), of the energy per atom (eV/atom) and of force components (eV/Å)."""
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
    return metrics


def format_metrics(metrics: Dict[str, float]) -> str:
    lines = [
        f"energy:          MAE {1e3 * metrics['energy_mae']:.1f} meV, RMSE {1e3 * metrics['energy_rmse']:.1f} meV per frame",
        f"energy per atom: MAE {1e3 * metrics['energy_per_atom_mae']:.3f} meV/atom, "
        f"RMSE {1e3 * metrics['energy_per_atom_rmse']:.3f} meV/atom  ({metrics['n_frames']} frames)"
    ]
    if "forces_mae" in metrics:
        lines.append(f"forces:          MAE {1e3 * metrics['forces_mae']:.1f} meV/Å, RMSE {1e3 * metrics['forces_rmse']:.1f} meV/Å")
    return "\n".join(lines)


def parity_plot(prediction: Dict[str, np.ndarray], path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("energy per atom (eV)", prediction["energy_ref"] / prediction["n_atoms"], prediction["energy_pred"] / prediction["n_atoms"])]
    if "forces_ref" in prediction:
        panels.append(("force component (eV/Å)", prediction["forces_ref"].ravel(), prediction["forces_pred"].ravel()))
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
