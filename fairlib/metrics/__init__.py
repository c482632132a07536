"""Group-fairness metrics on any device, with fairlearn's names and semantics.

Every rate and parity measure is read off one weighted count table
``[group, y_true, y_pred]`` built in a single pass on the input's device.
"""

from ._prepare import UndefinedMetricWarning
from .fairness import (
    accuracy,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equal_opportunity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_negative_rate,
    true_positive_rate,
)

__all__ = [
    "UndefinedMetricWarning",
    "accuracy",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "false_negative_rate",
    "false_positive_rate",
    "selection_rate",
    "true_negative_rate",
    "true_positive_rate",
]
