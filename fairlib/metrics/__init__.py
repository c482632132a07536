"""Group-fairness metrics on any device, with fairlearn's names and semantics.

Every rate and parity measure is read off one weighted count table
``[group, y_true, y_pred]`` built in a single pass on the input's device.
"""

from ._bygroup import ByGroup
from ._core import MEASURES, RATES
from ._groups import intersection_ids
from ._prepare import UndefinedMetricWarning
from .equity import (
    accuracy_by_group,
    equity_scaled_accuracy,
    equity_scaled_auc,
    es_metric,
    performance_scaled_disparity,
    psd,
    worst_group_accuracy,
)
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
from .report import BootstrapResult, FairnessReport, fairness_report
from .scores import calibration_by_group, calibration_gap, expected_calibration_error, roc_auc_by_group
from .streaming import FairnessAccumulator

__all__ = [
    "BootstrapResult",
    "ByGroup",
    "FairnessAccumulator",
    "FairnessReport",
    "MEASURES",
    "RATES",
    "accuracy_by_group",
    "calibration_by_group",
    "calibration_gap",
    "equity_scaled_accuracy",
    "equity_scaled_auc",
    "es_metric",
    "expected_calibration_error",
    "fairness_report",
    "intersection_ids",
    "performance_scaled_disparity",
    "psd",
    "roc_auc_by_group",
    "worst_group_accuracy",
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
