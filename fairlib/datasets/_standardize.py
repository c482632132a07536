"""Feature standardisation fitted on a training split."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._validation import MSG_TYPE

__all__ = ["Standardizer"]


@dataclass(frozen=True)
class Standardizer:
    """Per-column mean and scale fitted on a training split.

    Columns holding only 0 and 1 (indicators) keep mean 0 and scale 1, so one-hot
    features stay 0/1; constant columns get scale 1.

    Parameters
    ----------
    mean, scale : torch.Tensor
        Shape ``[d]``.

    Examples
    --------
    >>> import torch
    >>> from fairlib.datasets import Standardizer
    >>> X = torch.tensor([[1.0, 0.0], [3.0, 1.0]])
    >>> s = Standardizer.fit(X)
    >>> s.transform(X)
    tensor([[-1.,  0.],
            [ 1.,  1.]])
    """

    mean: torch.Tensor
    scale: torch.Tensor

    @classmethod
    def fit(cls, X: torch.Tensor) -> Standardizer:
        """Fit on the rows of a 2-d float tensor."""
        if X.ndim != 2:
            raise ValueError(
                MSG_TYPE.format(name="X", expected="2-dimensional", got=f"shape {tuple(X.shape)}")
            )
        if X.shape[0] == 0:
            raise ValueError("Expected `X` to be non-empty, but got 0 rows.")
        mean = X.mean(dim=0)
        scale = X.std(dim=0, unbiased=False)
        indicator = ((X == 0) | (X == 1)).all(dim=0)
        mean = torch.where(indicator, torch.zeros_like(mean), mean)
        scale = torch.where(indicator | (scale == 0), torch.ones_like(scale), scale)
        return cls(mean=mean, scale=scale)

    def transform(self, X: torch.Tensor) -> torch.Tensor:
        """Return ``(X - mean) / scale``."""
        return (X - self.mean.to(X.device)) / self.scale.to(X.device)

    def inverse_transform(self, X: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`transform`."""
        return X * self.scale.to(X.device) + self.mean.to(X.device)

    def to(self, device: torch.device | str) -> Standardizer:
        """Copy with both tensors on ``device``."""
        return Standardizer(self.mean.to(device), self.scale.to(device))
