"""Training: configuration, reference energies, the training loop, checkpoints, evaluation."""

from tpainn.train.checkpoint import load_trained
from tpainn.train.config import DEFAULTS, load_config
from tpainn.train.evaluate import error_metrics, predict
from tpainn.train.reference_energies import fit_reference_energies
from tpainn.train.trainer import train

__all__ = ["DEFAULTS", "error_metrics", "fit_reference_energies", "load_config", "load_trained", "predict", "train"]
