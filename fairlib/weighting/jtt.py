"""Just Train Twice (Liu et al., ICML 2021, arXiv 2107.09044; code ``anniesch/jtt``).

Stage 1 trains an ERM model for ``T`` epochs; its misclassified training points form the
error set ``E``. Stage 2 trains a **fresh** model on ``D`` with every point of ``E``
repeated ``up_weight`` extra times, so an error point is seen ``up_weight + 1`` times in
total. ``up_weight = -1`` picks the factor as in the reference code,
``int(|D \\ E| / |E|) - 1`` (about balancing errors and non-errors).

Two-stage usage with :func:`fairlib.train.fit`::

    stage1 = make_model()
    fit(stage1, train, epochs=T)                      # plain ERM
    jtt = JTT(up_weight=-1).identify_errors(stage1, train)
    model = make_model()                              # fresh, not stage 1 continued
    fit(model, train, strategy=jtt, epochs=...)

or in one call, :func:`train_twice`.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn
from torch.utils.data import Sampler

from .._inference import batched_logits
from .._validation import MSG_TYPE
from ._common import (
    SAMPLING_MODES,
    EpochSampler,
    SamplingMode,
    check_choice,
    check_number,
    check_train,
    make_generator,
)
from .base import Batch, WeightingStrategy

__all__ = ["JTT"]


class JTT(WeightingStrategy):
    """Stage 2 of JTT: the error set of a stage-1 model, upsampled or upweighted.

    Call :meth:`identify_errors` with the stage-1 model first, then train a fresh model
    with ``fit(model, train, strategy=jtt)`` (or use :func:`train_twice`).

    Parameters
    ----------
    up_weight : float, default -1
        Extra copies of each error point (``lambda_up``); an error point counts
        ``up_weight + 1`` times. ``-1``: automatic, ``int(|D \\ E| / |E|) - 1`` (clipped
        at 0). Must be an integer with ``mode="upsample"``.
    mode : {"upsample", "upweight"}, default "upsample"
        ``"upsample"``: each epoch is a random permutation of ``D`` plus ``up_weight``
        copies of ``E`` (the reference code's enlarged dataset; ``N + up_weight |E|``
        draws per epoch) with unweighted loss. ``"upweight"``: uniform shuffling of
        ``D`` with loss weight ``up_weight + 1`` on error points and 1 elsewhere (not
        normalised: the mean weight is ``1 + up_weight |E| / N``). Same gradient in
        expectation up to that factor; upsampling has the lower variance.
    threshold : float, default 0.5
        A stage-1 point is an error when ``(sigmoid(logit) >= threshold) != y``.

    Attributes
    ----------
    error_mask_ : torch.Tensor
        bool ``[N]``: the error set of the stage-1 model.
    up_weight_ : int or float
        The factor in use (the automatic choice resolved).

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.train import LogisticRegression, fit
    >>> from fairlib.weighting import JTT
    >>> data = make_biased_classification(400, seed=0)
    >>> stage1 = LogisticRegression(2, seed=0)
    >>> _ = fit(stage1, data, epochs=2, lr=0.05, progress=False)
    >>> jtt = JTT(up_weight=-1).identify_errors(stage1, data)
    >>> n_err = int(jtt.error_mask_.sum())
    >>> jtt.up_weight_ == (400 - n_err) // n_err - 1
    True
    >>> hist = fit(LogisticRegression(2, seed=0), data, strategy=jtt, epochs=2, progress=False)
    >>> hist.last("error_set_size") == n_err
    True
    """

    def __init__(self, up_weight: float = -1, *,
                 mode: SamplingMode = "upsample", threshold: float = 0.5) -> None:
        self.up_weight = up_weight
        self.mode = mode
        self.threshold = threshold

    def check_params(self) -> JTT:
        """Validate ``up_weight``, ``mode`` and ``threshold``."""
        check_choice("mode", self.mode, SAMPLING_MODES)
        check_number("threshold", self.threshold, low=0.0, high=1.0,
                     expected="a probability in [0, 1]")
        if self.up_weight != -1:
            check_number("up_weight", self.up_weight, low=0.0,
                         expected="-1 (automatic) or a non-negative number of extra copies")
            if self.mode == "upsample" and float(self.up_weight) != int(self.up_weight):
                raise ValueError(MSG_TYPE.format(
                    name="up_weight",
                    expected="an integer number of extra copies with mode='upsample'",
                    got=repr(self.up_weight)))
        return self

    def identify_errors(self, model: nn.Module, train: Any, *,
                        device: torch.device | str | None = None,
                        batch_size: int = 1024) -> JTT:
        """Record the training points the stage-1 ``model`` misclassifies; returns ``self``.

        Runs ``model`` in eval mode without gradients (its mode is restored), on
        ``device`` (default: the device of its parameters).
        """
        self.check_params()
        check_train(train, "JTT.identify_errors")
        if device is None:
            params = list(model.parameters())
            device = params[0].device if params else "cpu"
        logits = batched_logits(model, train, device=torch.device(device), batch_size=batch_size)
        pred = torch.sigmoid(logits) >= self.threshold
        self.error_mask_ = (pred.to(torch.int64) != train.y.to(logits.device)).cpu()
        n_err = int(self.error_mask_.sum())
        n = len(train)
        if self.up_weight == -1:
            if n_err == 0:
                warnings.warn("JTT: the stage-1 model makes no training error; the error set "
                              "is empty and stage 2 is plain ERM.", UserWarning, stacklevel=2)
                factor = 0
            else:
                factor = int((n - n_err) / n_err) - 1
                if factor < 0:
                    warnings.warn(f"JTT: {n_err} of {n} training points are errors, so the "
                                  f"automatic factor int(|D \\ E| / |E|) - 1 = {factor} is "
                                  "negative; using 0.", UserWarning, stacklevel=2)
                    factor = 0
        else:
            factor = int(self.up_weight) if self.mode == "upsample" else float(self.up_weight)
        self.up_weight_ = factor
        return self

    def setup(self, train: Any, *, meta: Any = None, model: nn.Module | None = None,
              device: torch.device | str = "auto", generator: torch.Generator | None = None) -> JTT:
        """Check the error set matches ``train``; build the per-sample weights."""
        super().setup(train, meta=meta, model=model, device=device, generator=generator)
        check_train(train, "JTT")
        if not hasattr(self, "error_mask_"):
            raise ValueError("Expected JTT to hold a stage-1 error set, but got none: call "
                             "`jtt.identify_errors(stage1_model, train)` before `fit` "
                             "(or use `train_twice`).")
        if len(self.error_mask_) != len(train):
            raise ValueError(MSG_TYPE.format(
                name="train",
                expected=f"the {len(self.error_mask_)} samples the error set was identified on",
                got=f"{len(train)} samples"))
        errors_f = self.error_mask_.to(torch.get_default_dtype())
        self.sample_weights_ = (1.0 + self.up_weight_ * errors_f).to(self.device_)
        errors = torch.nonzero(self.error_mask_).flatten()
        self._epoch_index = None
        if self.mode == "upsample":
            copies = [errors] * int(self.up_weight_)
            self._epoch_index = torch.cat([torch.arange(len(train)), *copies])
        self._generator = make_generator(generator)
        return self

    def sampler(self) -> Sampler | None:
        """``mode="upsample"``: a fresh permutation of ``D`` + ``up_weight`` x ``E`` each epoch."""
        if self.mode != "upsample":
            return None
        index = self._epoch_index

        def draw(n: int) -> list[int]:
            return index[torch.randperm(len(index), generator=self._generator)].tolist()

        return EpochSampler(draw, lambda: len(index))

    def weights(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """``up_weight + 1`` on error points with ``mode="upweight"``; ones when upsampling."""
        if self.mode == "upsample":
            return torch.ones_like(losses)
        return self.sample_weights_[batch.index].to(losses.dtype)

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """``error_set_size`` and ``up_weight`` in use."""
        return {"error_set_size": self.error_mask_.sum(),
                "up_weight": torch.tensor(float(self.up_weight_))}
