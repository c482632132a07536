"""Colored Digits: shapes, spurious-correlation strength, noise, seeding."""

from __future__ import annotations

import re

import pytest
import torch
from sklearn.datasets import load_digits

from fairlib.datasets import make_colored_digits


def agreement(ds, labels=None) -> float:
    y = ds.y if labels is None else labels
    return float((ds.group == y).double().mean())


@pytest.mark.parametrize(
    ("strength", "meta_strength", "test_strength"),
    [(0.9, 0.5, 0.5), (0.99, 0.5, 0.1), (0.5, 0.8, 0.0), (1.0, 1.0, 0.5)],
)
def test_realised_correlation_matches_requested(strength, meta_strength, test_strength):
    train, meta, test = make_colored_digits(
        strength=strength, meta_strength=meta_strength, test_strength=test_strength, seed=0
    )
    for ds, s in [(train, strength), (meta, meta_strength), (test, test_strength)]:
        assert abs(agreement(ds) - s) < 0.02
        # Within each label too, so the color alone is as informative as requested.
        for label in (0, 1):
            part = ds.y == label
            assert abs(float((ds.group[part] == label).double().mean()) - s) < 0.02


def test_images_labels_and_splits():
    digits = load_digits()
    train, meta, test = make_colored_digits(seed=1)
    ids = torch.cat([train.source_index, meta.source_index, test.source_index])
    assert torch.equal(torch.sort(ids).values, torch.arange(1797))
    assert abs(len(train) / 1797 - 0.6) < 0.01 and abs(len(meta) / 1797 - 0.2) < 0.01
    for ds in (train, meta, test):
        assert ds.X.shape[1:] == (3, 8, 8) and ds.X.dtype == torch.float32
        assert float(ds.X.min()) >= 0.0 and float(ds.X.max()) <= 1.0
        target = torch.as_tensor(digits.target)[ds.source_index]
        assert torch.equal(ds.extras["digit"], target) and torch.equal(ds.y, (target >= 5).long())
        gray = torch.as_tensor(digits.images, dtype=torch.float32)[ds.source_index] / 16
        red, green = ds.group == 0, ds.group == 1
        assert torch.allclose(ds.X[red, 0], gray[red]) and bool((ds.X[red, 1:] == 0).all())
        assert torch.allclose(ds.X[green, 1], gray[green]) and bool((ds.X[green, 0::2] == 0).all())
        assert ds.group_categories == ("red", "green")


def test_upscaling_is_nearest_neighbour():
    small = make_colored_digits(seed=2).train
    big = make_colored_digits(upscale=3, seed=2).train
    assert big.X.shape[1:] == (3, 24, 24)
    assert torch.equal(big.X[:, :, ::3, ::3], small.X) and torch.equal(
        big.X[:, :, 2::3, 1::3], small.X
    )


def test_same_seed_same_data_other_seed_other_data():
    a = make_colored_digits(seed=5, noise_rates={"red": 0.2})
    b = make_colored_digits(seed=5, noise_rates={"red": 0.2})
    c = make_colored_digits(seed=6, noise_rates={"red": 0.2})
    for p, q in zip(a, b, strict=False):
        assert torch.equal(p.X, q.X) and torch.equal(p.y, q.y) and torch.equal(p.group, q.group)
    assert not torch.equal(a.train.source_index, c.train.source_index)


def test_label_noise_only_in_train_at_the_requested_rates():
    rates = {"red": 0.3, ("green", 1): 0.1}
    train, meta, test = make_colored_digits(strength=0.8, noise_rates=rates, seed=0)
    clean = train.extras["y_clean"]
    flipped = train.y != clean
    red = train.group == 0
    assert int(flipped[red].sum()) == round(0.3 * int(red.sum()))
    cell = (train.group == 1) & (clean == 1)
    assert int(flipped[cell].sum()) == round(0.1 * int(cell.sum()))
    assert not bool(flipped[(train.group == 1) & (clean == 0)].any())
    # The requested strength refers to the clean labels; meta and test stay clean.
    assert abs(agreement(train, clean) - 0.8) < 0.02
    for ds in (meta, test):
        assert "y_clean" not in ds.extras
        assert torch.equal(ds.y, (ds.extras["digit"] >= 5).long())


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"strength": 1.5}, "Expected `strength` to be a probability in [0, 1], but got 1.5"),
        ({"test_strength": -0.1}, "Expected `test_strength` to be a probability in [0, 1]"),
        ({"sizes": (0.5, 0.5, 0.5)}, "Expected `sizes` to be three non-negative fractions"),
        ({"upscale": 0}, "Expected `upscale` to be a positive integer, but got 0"),
        ({"threshold": 10}, "Expected `threshold` to be an integer in 1..9, but got 10"),
    ],
)
def test_rejects_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=re.escape(pattern)):
        make_colored_digits(**kwargs)
