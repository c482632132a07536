"""Two-stage training: JTT's ERM stage, its error set, then the upweighted stage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from .._validation import check_positive_int
from ..weighting import JTT
from ..weighting.jtt import SamplingMode
from .loop import fit


@dataclass
class JTTRun:
    """What :func:`train_twice` returns.

    Attributes
    ----------
    model : torch.nn.Module
        The stage-2 model (trained from scratch on the upsampled / upweighted data).
    strategy : JTT
        Holds the error set (``error_mask_``) and the factor (``up_weight_``).
    stage1_model : torch.nn.Module
        The ERM model whose errors define the error set.
    stage1_history, history : fairlib.train.History
        Training histories of the two stages.
    """

    model: nn.Module
    strategy: JTT
    stage1_model: nn.Module
    stage1_history: Any
    history: Any


def train_twice(
    make_model: Callable[[], nn.Module],
    train: Any,
    *,
    stage1_epochs: int,
    up_weight: float = -1,
    mode: SamplingMode = "upsample",
    stage1_kwargs: dict[str, Any] | None = None,
    **fit_kwargs: Any,
) -> JTTRun:
    """Run both JTT stages with :func:`fairlib.train.fit`.

    Parameters
    ----------
    make_model : callable
        Returns a freshly initialised model; called once per stage.
    train : FairDataset
        Training data (both stages).
    stage1_epochs : int
        ``T``: ERM epochs of stage 1 (the error set is taken after the last one).
    up_weight, mode
        See :class:`JTT`.
    stage1_kwargs : dict, optional
        ``fit`` arguments for stage 1 only (e.g. another ``lr``); they override
        ``fit_kwargs``.
    **fit_kwargs
        ``fit`` arguments for both stages (``epochs`` applies to stage 2; ``meta``,
        ``test``, ``seed``, ``device``, ``progress``...).

    Returns
    -------
    JTTRun

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.train import LogisticRegression
    >>> from fairlib.train import train_twice
    >>> data = make_biased_classification(400, seed=0)
    >>> run = train_twice(lambda: LogisticRegression(2, seed=0), data, stage1_epochs=1,
    ...                   epochs=2, progress=False)
    >>> run.model is not run.stage1_model, len(run.history.rows)
    (True, 2)
    """
    stage1_epochs = check_positive_int("stage1_epochs", stage1_epochs)
    strategy = JTT(up_weight=up_weight, mode=mode)
    strategy.check_params()  # bad arguments fail before stage 1 trains
    stage1_model = make_model()
    s1 = {**fit_kwargs, **(stage1_kwargs or {}), "epochs": stage1_epochs}
    s1.pop("strategy", None)
    stage1_history = fit(stage1_model, train, **s1)
    strategy.identify_errors(stage1_model, train)
    model = make_model()
    history = fit(model, train, strategy=strategy, **fit_kwargs)
    return JTTRun(model, strategy, stage1_model, stage1_history, history)

