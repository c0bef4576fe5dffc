"""Experiments built from training runs: learning curves of autotuned vs from-scratch models."""

from tpainn.experiments.learning_curve import run_learning_curve

__all__ = ["run_learning_curve"]
