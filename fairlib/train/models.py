"""Small reference models: one logit per sample for binary classification.

Each model has ``split_final()``, the hook :class:`~fairlib.weighting.L2RW` and
:class:`~fairlib.weighting.FORML` use for ``method="last_layer"``: it returns
``(features, head)`` such that ``model(x) == head(features(x)).squeeze(-1)``, where
``head`` is the final ``nn.Linear`` with one output, called by the model's forward. Any
model with such a method can use the last-layer meta-gradients.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .._validation import check_number, check_positive_int, check_seed, msg_expected


@contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Parameter initialisation draws from ``seed``; the global RNG state is restored after."""
    if seed is not None:
        check_seed("seed", seed)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        yield


class LogisticRegression(nn.Module):
    """Logistic regression: ``logit = x @ w + b``.

    Parameters
    ----------
    in_features : int
        Number of input features.
    seed : int, optional
        Seed of the initialisation (same seed, same parameters).

    Examples
    --------
    >>> import torch
    >>> from fairlib.train import LogisticRegression
    >>> LogisticRegression(3, seed=0)(torch.zeros(2, 3)).shape
    torch.Size([2])
    """

    def __init__(self, in_features: int, *, seed: int | None = 0) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        with _seeded(seed):
            self.linear = nn.Linear(in_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B]``."""
        return self.linear(x.flatten(1)).squeeze(-1)

    def split_final(self) -> tuple[nn.Module, nn.Linear]:
        """``(features, head)`` with ``model(x) == head(features(x)).squeeze(-1)``.

        The features are the flattened input, so the head is the whole model.

        Examples
        --------
        >>> import torch
        >>> from fairlib.train import LogisticRegression
        >>> model = LogisticRegression(3, seed=0)
        >>> features, head = model.split_final()
        >>> x = torch.randn(4, 3)
        >>> torch.equal(head(features(x)).squeeze(-1), model(x))
        True
        """
        return nn.Flatten(), self.linear


class MLP(nn.Module):
    """Multi-layer perceptron with ReLU hidden layers and one output logit.

    Parameters
    ----------
    in_features : int
        Number of input features.
    hidden : sequence of int, default (64, 64)
        Widths of the hidden layers.
    dropout : float, default 0.0
        Dropout after each hidden layer.
    seed : int, optional
        Seed of the initialisation.

    Examples
    --------
    >>> import torch
    >>> from fairlib.train import MLP
    >>> MLP(4, hidden=(8,), seed=0)(torch.zeros(5, 4)).shape
    torch.Size([5])
    """

    def __init__(self, in_features: int, hidden: tuple[int, ...] = (64, 64), *, dropout: float = 0.0,
                 seed: int | None = 0) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        if not isinstance(hidden, (tuple, list, range)):
            raise TypeError(msg_expected("hidden", "a sequence of layer widths", repr(hidden)))
        for i, h in enumerate(hidden):
            check_positive_int(f"hidden[{i}]", h)
        check_number("dropout", dropout, low=0.0, high=1.0, expected="a probability in [0, 1]")
        with _seeded(seed):
            layers: list[nn.Module] = []
            width = in_features
            for h in hidden:
                layers += [nn.Linear(width, h), nn.ReLU()]
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
                width = h
            layers.append(nn.Linear(width, 1))
            self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B]``."""
        return self.net(x.flatten(1)).squeeze(-1)

    def split_final(self) -> tuple[nn.Module, nn.Linear]:
        """``(features, head)`` with ``model(x) == head(features(x)).squeeze(-1)``.

        The features are the last hidden layer's activations (after its ReLU and dropout).

        Examples
        --------
        >>> import torch
        >>> from fairlib.train import MLP
        >>> model = MLP(4, hidden=(8,), seed=0)
        >>> features, head = model.split_final()
        >>> x = torch.randn(5, 4)
        >>> features(x).shape, torch.equal(head(features(x)).squeeze(-1), model(x))
        (torch.Size([5, 8]), True)
        """
        return nn.Sequential(nn.Flatten(), *self.net[:-1]), self.net[-1]


class SmallCNN(nn.Module):
    """A small convolutional network for Colored Digits (``[B, 3, H, W]`` images).

    Two 3x3 convolution blocks with batch normalisation and max pooling, global average
    pooling, and a linear head with one logit.

    Parameters
    ----------
    in_channels : int, default 3
        Image channels.
    width : int, default 16
        Channels of the first block (the second has twice as many).
    seed : int, optional
        Seed of the initialisation.

    Examples
    --------
    >>> import torch
    >>> from fairlib.train import SmallCNN
    >>> SmallCNN(seed=0)(torch.zeros(2, 3, 8, 8)).shape
    torch.Size([2])
    """

    def __init__(self, in_channels: int = 3, width: int = 16, *, seed: int | None = 0) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("width", width)
        with _seeded(seed):
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1),
            )
            self.head = nn.Linear(2 * width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B]``."""
        return self.head(self.features(x).flatten(1)).squeeze(-1)

    def split_final(self) -> tuple[nn.Module, nn.Linear]:
        """``(features, head)`` with ``model(x) == head(features(x)).squeeze(-1)``.

        The features are the globally pooled channels of the second block.

        Examples
        --------
        >>> import torch
        >>> from fairlib.train import SmallCNN
        >>> model = SmallCNN(seed=0).eval()
        >>> features, head = model.split_final()
        >>> x = torch.randn(2, 3, 8, 8)
        >>> features(x).shape, torch.equal(head(features(x)).squeeze(-1), model(x))
        (torch.Size([2, 32]), True)
        """
        return nn.Sequential(self.features, nn.Flatten()), self.head
