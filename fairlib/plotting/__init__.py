"""Every figure the chapters share, one module per theme.

- :mod:`~fairlib.plotting.groups`: rates by group (:func:`plot_group_rates`), parity measures
  (:func:`plot_parity_measures`) and calibration by group (:func:`plot_calibration`), with
  intervals;
- :mod:`~fairlib.plotting.comparison`: comparing methods over seeds: the accuracy-fairness
  front (:func:`plot_front`), metrics along a sweep (:func:`plot_sweep`) and per-metric
  intervals (:func:`plot_method_intervals`);
- :mod:`~fairlib.plotting.images`: example images of each (group, label) cell
  (:func:`plot_cell_images`).

Every function draws on matplotlib axes (new ones when none are given) and returns them.
"""

from .comparison import pareto_front, plot_front, plot_method_intervals, plot_sweep
from .images import plot_cell_images
from .groups import calibration_by_group, group_label, plot_calibration, plot_group_rates, plot_parity_measures

__all__ = [
    "calibration_by_group",
    "group_label",
    "pareto_front",
    "plot_calibration",
    "plot_cell_images",
    "plot_front",
    "plot_group_rates",
    "plot_method_intervals",
    "plot_parity_measures",
    "plot_sweep",
]
