"""Reweighting strategies behind one protocol the training loop calls each step.

Every strategy is passed to :func:`fairlib.train.fit` as ``strategy=...``:

- :class:`ERM`: uniform weights.
- :class:`Reweighing` (and :func:`reweighing_weights`): Kamiran-Calders, static.
- :class:`GroupUpweighting` vs :class:`GroupBalancedSampling`: group shares
  ``n_g^(1/tau)`` as loss weights or as a sampler, with a :class:`Cooldown` schedule.
- :class:`GroupDRO`: online exponentiated group weights.
- :class:`JTT`: two stages (:meth:`JTT.identify_errors`, or :func:`fairlib.train.train_twice`).
- :class:`FairBatch`: batch composition per (label, group) cell, a sampler.
- :class:`KLDRO`: ``softmax(loss / tau)`` per batch.
- :class:`LossShaping`: ``B softmax(f(h) / r)`` of the batch losses mapped to [-delta, delta]
  (Sow et al., 2025).
- :class:`FEBS`, :class:`FIS`: per-group loss scaling from FairSeg / FairVision.
- :class:`L2RW`, :class:`FORML`: meta-learned weights against a held-out set.
- :class:`StepWeightRecorder`: wraps any strategy and records each sample's mean step weight.

Every strategy is a scikit-learn-like estimator: the constructor only stores its
arguments (all but the first keyword-only), :meth:`WeightingStrategy.get_params` /
:meth:`WeightingStrategy.set_params` read and set them, :func:`clone` makes an unfitted
copy, and :func:`check_strategy` runs the common checks of the protocol. The shared
keywords are ``mode={"upweight", "upsample"}`` where a strategy can act through loss
weights or a sampler (:class:`Reweighing`, :class:`JTT`; the class itself fixes it for
:class:`GroupUpweighting` / :class:`GroupBalancedSampling`) and
``groups={"group", "group_label"}`` where it picks the cells it weighs
(:class:`GroupUpweighting`, :class:`GroupBalancedSampling`, :class:`GroupDRO`,
:class:`FEBS`, :class:`FIS`). Tables over cells are group-major, ``[group, label]``.
"""

from ._common import effective_sample_size
from .base import ERM, Batch, WeightingStrategy, clone
from .condense import n_keep, select_top_weight
from .checks import StrategyCheckError, check_strategy
from .fairbatch import FairBatch
from .febs_fis import FEBS, FIS, wasserstein2_to_pooled
from .forml import FORML
from .group_dro import GroupDRO
from .jtt import JTT
from .kl_dro import KLDRO
from .l2rw import L2RW
from .loss_shaping import LossShaping
from .recorder import StepWeightRecorder
from .reweighing import Reweighing, reweighing_weights
from .temperature import (
    Cooldown,
    GroupBalancedSampling,
    GroupUpweighting,
    temperature_probabilities,
)

__all__ = [
    "ERM",
    "FEBS",
    "FIS",
    "FORML",
    "JTT",
    "KLDRO",
    "L2RW",
    "Batch",
    "Cooldown",
    "FairBatch",
    "GroupBalancedSampling",
    "GroupDRO",
    "GroupUpweighting",
    "LossShaping",
    "Reweighing",
    "StepWeightRecorder",
    "StrategyCheckError",
    "WeightingStrategy",
    "check_strategy",
    "clone",
    "effective_sample_size",
    "n_keep",
    "reweighing_weights",
    "select_top_weight",
    "temperature_probabilities",
    "wasserstein2_to_pooled",
]
