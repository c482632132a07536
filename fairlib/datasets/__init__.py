"""Data for fairness experiments: one dataset type, real tabular data, images, synthetic data.

- :class:`FairDataset`: features, binary label, named sensitive attributes, per-sample index;
  seeded train / meta / test splits (:meth:`FairDataset.split`).
- Real tabular data from archives on the package registry, checksummed and cached:
  :func:`load_adult`, :func:`load_compas`, :func:`load_german`, :func:`load_census_kdd`.
- :func:`make_colored_digits`: digit images with a spurious color (no download).
- Synthetic: :func:`make_causal_context`, :func:`make_biased_classification`,
  :func:`semi_synthetic_context` (a causal context's bias injected into real data), and
  :func:`corrupt_labels` for group-dependent label noise.
- :func:`pool_categories`: merge small categories of a sensitive attribute.
"""

from ._archives import ChecksumMismatchError, DataUnavailableError, data_home
from ._dataset import FairDataset, Splits
from ._standardize import Standardizer
from .digits import make_colored_digits
from .noise import corrupt_labels
from ._pool import pool_categories
from .synthetic import CausalContext, make_biased_classification, make_causal_context, semi_synthetic_context
from .tabular import load_adult, load_census_kdd, load_compas, load_german

__all__ = [
    "CausalContext",
    "ChecksumMismatchError",
    "DataUnavailableError",
    "FairDataset",
    "Splits",
    "Standardizer",
    "corrupt_labels",
    "data_home",
    "load_adult",
    "load_census_kdd",
    "load_compas",
    "load_german",
    "make_biased_classification",
    "make_causal_context",
    "make_colored_digits",
    "pool_categories",
    "semi_synthetic_context",
]
