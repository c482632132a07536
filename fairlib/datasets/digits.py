"""Colored Digits: a small image task with a spurious color shortcut (stand-in for Waterbirds)."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .._validation import MSG_TYPE, check_fraction, check_positive_int
from ._dataset import FairDataset, Splits
from .noise import GroupKey, corrupt_labels

__all__ = ["COLORS", "make_colored_digits"]

COLORS: dict[str, tuple[float, float, float]] = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0)}

_DESCRIPTION = (
    "Colored Digits: the 1,797 8x8 handwritten digits shipped with scikit-learn (Alpaydin, E. & "
    "Kaynak, C. (1998), Optical Recognition of Handwritten Digits, UCI Machine Learning "
    "Repository), label digit >= {threshold}, drawn in red or green; color agrees with the label "
    "with probability {strength:g} in this split."
)


def make_colored_digits(
    *,
    strength: float = 0.9,
    meta_strength: float = 0.5,
    test_strength: float = 0.5,
    sizes: tuple[float, float, float] = (0.6, 0.2, 0.2),
    noise_rates: Mapping[GroupKey, float] | None = None,
    upscale: int = 1,
    threshold: int = 5,
    seed: int = 0,
) -> Splits:
    """Make train / meta / test splits of digit images whose color is tied to the label.

    Label ``y = 1[digit >= threshold]``; group: the color (``"red"`` code 0, ``"green"`` code 1)
    in which the digit is drawn on black. In each split the color *agrees* with the label
    (red for 0, green for 1) in exactly ``round(strength * n_y)`` of the ``n_y`` images of each
    label, so the realised agreement equals the requested strength up to rounding. 0.5 means
    color and label are independent, 1.0 that color predicts the label perfectly. The train,
    meta and test strengths are chosen independently.

    Parameters
    ----------
    strength : float
        ``P(color agrees with label)`` in the training split.
    meta_strength, test_strength : float
        The same for the meta (held-out, used by reweighting) and test splits; 0.5 is balanced.
    sizes : tuple of float
        Fractions of the 1,797 images for train, meta, test (stratified by digit).
    noise_rates : Mapping, optional
        Label-noise rates applied to the training split only, keyed as in
        :func:`corrupt_labels` by color (``"red"``/``"green"`` or code) or ``(color, label)``.
        The clean labels are kept in ``extras["y_clean"]``.
    upscale : int
        Integer factor of nearest-neighbour upscaling: images are ``8 * upscale`` pixels square.
    threshold : int
        Digits ``>= threshold`` are positives.
    seed : int
        Seed of the ``torch.Generator``: same seed, same splits, colors and noise.

    Returns
    -------
    Splits
        ``(train, meta, test)``, each a :class:`FairDataset` with ``X`` of shape
        ``[N, 3, 8 * upscale, 8 * upscale]`` in ``[0, 1]``, sensitive attribute ``"color"`` and
        extra column ``"digit"``; ``source_index`` is the row in ``sklearn.datasets.load_digits``.

    Examples
    --------
    >>> from fairlib.datasets import make_colored_digits
    >>> train, meta, test = make_colored_digits(strength=0.9, upscale=2, seed=0)
    >>> train.X.shape[1:], len(train) + len(meta) + len(test)
    (torch.Size([3, 16, 16]), 1797)
    >>> round(float((train.group == train.y).double().mean()), 2)
    0.9
    """
    from sklearn.datasets import load_digits  # a runtime dependency; the images ship with it

    for name, v in [
        ("strength", strength),
        ("meta_strength", meta_strength),
        ("test_strength", test_strength),
    ]:
        check_fraction(name, v, expected="a probability in [0, 1]")
    if (
        len(sizes) != 3
        or any(s < 0 for s in sizes)
        or abs(sum(sizes) - 1.0) > 1e-6
        or sizes[0] == 0
    ):
        raise ValueError(
            MSG_TYPE.format(
                name="sizes",
                expected="three non-negative fractions "
                "(train, meta, test) summing to 1 with train > 0",
                got=repr(sizes),
            )
        )
    upscale = check_positive_int("upscale", upscale)
    if not isinstance(threshold, int) or not 1 <= threshold <= 9:
        raise ValueError(
            MSG_TYPE.format(name="threshold", expected="an integer in 1..9", got=repr(threshold))
        )

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32) / 16.0
    digit = torch.as_tensor(bunch.target, dtype=torch.int64)
    gen = torch.Generator().manual_seed(seed)
    parts = _split_by_digit(digit, sizes, gen)
    strengths = (strength, meta_strength, test_strength)
    out = []
    for role, rows, s in zip(("train", "meta", "test"), parts, strengths, strict=True):
        y = (digit[rows] >= threshold).to(torch.int64)
        color = _colors_with_agreement(y, s, gen)
        ds = FairDataset(
            X=_paint(images[rows], color, upscale),
            y=y,
            sensitive={"color": color},
            categories={"color": list(COLORS)},
            feature_names=["red", "green", "blue"],
            name=f"colored_digits ({role})",
            label_name=f"digit >= {threshold}",
            extras={"digit": digit[rows]},
            source_index=rows,
            description=_DESCRIPTION.format(threshold=threshold, strength=s),
        )
        out.append(ds)
    if noise_rates:
        out[0], _ = corrupt_labels(
            out[0], noise_rates, seed=int(torch.randint(2**31, (1,), generator=gen))
        )
    return Splits(*out)


def _split_by_digit(
    digit: torch.Tensor, sizes: tuple[float, float, float], gen: torch.Generator
) -> list[torch.Tensor]:
    parts: list[list[torch.Tensor]] = [[], [], []]
    for d in range(10):
        rows = torch.nonzero(digit == d).flatten()
        rows = rows[torch.randperm(rows.numel(), generator=gen)]
        n_meta, n_test = round(sizes[1] * rows.numel()), round(sizes[2] * rows.numel())
        parts[1].append(rows[:n_meta])
        parts[2].append(rows[n_meta : n_meta + n_test])
        parts[0].append(rows[n_meta + n_test :])
    return [torch.sort(torch.cat(p)).values for p in parts]


def _colors_with_agreement(y: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Color codes agreeing with ``y`` on exactly ``round(strength * n_y)`` rows per label."""
    color = 1 - y
    for label in (0, 1):
        rows = torch.nonzero(y == label).flatten()
        agree = rows[torch.randperm(rows.numel(), generator=gen)[: round(strength * rows.numel())]]
        color[agree] = label
    return color


def _paint(images: torch.Tensor, color: torch.Tensor, upscale: int) -> torch.Tensor:
    rgb = torch.tensor(list(COLORS.values()), dtype=torch.float32)[color]  # [N, 3]
    X = images[:, None, :, :] * rgb[:, :, None, None]
    if upscale > 1:
        X = X.repeat_interleave(upscale, dim=2).repeat_interleave(upscale, dim=3)
    return X.contiguous()
