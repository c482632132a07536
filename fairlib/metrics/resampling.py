"""Resampling and input preparation of the metrics core, public for analyses built on it.

The functions live in the core's private modules (one implementation); this module is the
supported way for code outside :mod:`fairlib.metrics` to use them.

- :func:`prepare_labels`: validate ``(y_true, y_pred, sensitive_features, sample_weight)``
  (and scores) once and return tensors plus the group codes;
- :func:`make_generator`, :func:`multinomial_counts`, :func:`percentile_interval`: the
  cell-count bootstrap behind :meth:`fairlib.metrics.FairnessReport.bootstrap`.

Examples
--------
>>> import torch
>>> from fairlib.metrics.resampling import make_generator, multinomial_counts
>>> counts = torch.tensor([[30.0, 10.0, 5.0, 55.0]])
>>> draws = multinomial_counts(counts, 200, make_generator(0, counts.device))
>>> draws.shape, bool((draws.sum((1, 2)) == 100).all())
(torch.Size([200, 1, 4]), True)
"""

from ._bootstrap import make_generator, multinomial_counts, percentile_interval
from ._prepare import prepare_labels

__all__ = ["make_generator", "multinomial_counts", "percentile_interval", "prepare_labels"]
