"""Training: the trainer and its callbacks, cached features, one run, and experiment runners.

TensorFlow is imported inside the functions, so importing this package is cheap. The entry
point is `run_experiment`.
"""

from __future__ import annotations

from engine.training.runners import run_experiment
from engine.training.single import train_one
from engine.training.trainer import Cancelled, PhaseResult, Trainer

__all__ = ["Cancelled", "PhaseResult", "Trainer", "run_experiment", "train_one"]
