"""Analyses written for one chapter each; they import the core, the core never imports them.

- :mod:`~fairlib.studies.measuring`: chapter 1, *Measuring fairness*.
- :mod:`~fairlib.studies.gradient_noise`: chapter 2, *Reweighing and balancing*.
- :mod:`~fairlib.studies.robustness`: chapter 3, *Worst-group robustness*.
- :mod:`~fairlib.studies.weight_trajectories`: chapter 4, *FORML and equal opportunity*.
- :mod:`~fairlib.studies.label_noise_audit`: chapter 5, *Corrupted labels*.
- :mod:`~fairlib.studies.condensation`: chapter 6, *Data condensation*.
- :mod:`~fairlib.studies.causal_context_audit`: chapter 7, *Causal context*.
- :mod:`~fairlib.studies.intersectional`: chapter 8, *Many groups*.
- :mod:`~fairlib.studies.benchmark`: chapter 9, *Every method under one protocol*.
- :mod:`~fairlib.studies.beyond`: chapter 10, *Beyond reweighting*.

Chapters that compare methods build their tuning grid here (``tuning_grid``, taking the
notebook's parameters by name; ``CHAPTER`` names the notebook), and register their own
data sets, methods and per-run metrics with :mod:`fairlib.experiments` on import.

Import the module you need, e.g. ``from fairlib.studies.robustness import robust_accuracy``.
"""
