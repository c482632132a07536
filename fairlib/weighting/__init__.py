"""Reweighting strategies behind one protocol the training loop calls each step."""

from .base import ERM, Batch, WeightingStrategy

__all__ = ["ERM", "Batch", "WeightingStrategy"]
