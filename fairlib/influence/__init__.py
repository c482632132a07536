"""Fair Infinitesimal Jackknife: the influence of each training row on a fairness metric.

Which training rows, if dropped, would make a trained classifier fairer? The infinitesimal
jackknife answers to first order without refitting: one inverse-Hessian-vector product per
group and one directional derivative per row (Sattigeri, Ghosh, Padhi, Dognin and Varshney,
"Fair Infinitesimal Jackknife: Mitigating the Influence of Biased Training Data Points Without
Refitting", NeurIPS 2022, arXiv:2212.06803; the formula used here is the standard jackknife,
see ``methods.md`` §10).

- :func:`fairness_influence`: predicted change ``[N]`` of a smooth fairness metric on held-out
  data if each training row were dropped;
- :func:`drop_by_influence`: the rows whose removal is predicted to lower it most, and the
  metric predicted without refitting;
- :func:`smooth_metric`: the smooth metric itself (probabilities instead of thresholded
  predictions); reports use the hard metrics of :mod:`fairlib.metrics`;
- :func:`fit_to_convergence`: full-batch L-BFGS training to the minimum the formula assumes;
- :class:`InfluenceDrop`: a weighting strategy that trains without the rows chosen by
  :func:`drop_by_influence` (the :mod:`fairlib.experiments` method ``"FairIJDrop"``).
"""

from ._jackknife import (
    EXACT_MAX_PARAMS,
    METRICS,
    Drop,
    drop_by_influence,
    fairness_influence,
    fit_to_convergence,
    smooth_metric,
)
from .drop import InfluenceDrop

__all__ = ["EXACT_MAX_PARAMS", "METRICS", "Drop", "InfluenceDrop", "drop_by_influence",
           "fairness_influence", "fit_to_convergence", "smooth_metric"]
