"""FairDataset: construction, validation, DataLoader protocol, groups, splits, scaling."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from fairlib.datasets import FairDataset, Standardizer, make_biased_classification


def small(n: int = 12, seed: int = 0) -> FairDataset:
    g = torch.Generator().manual_seed(seed)
    return FairDataset(
        X=torch.randn(n, 3, generator=g, dtype=torch.float64),
        y=torch.arange(n) % 2,
        sensitive={"sex": torch.arange(n) % 3 % 2, "race": torch.arange(n) % 3},
        categories={"sex": ["f", "m"], "race": ["a", "b", "c"]},
        feature_names=["u", "v", "w"],
        name="small",
        extras={"score": torch.arange(n, dtype=torch.float32)},
    )


def test_fields_are_normalised():
    ds = small()
    assert ds.X.dtype == torch.float32 and ds.X.shape == (12, 3)
    assert ds.y.dtype == torch.int64 and ds.sensitive["race"].dtype == torch.int64
    assert ds.group_name == "sex" and ds.group_categories == ("f", "m") and ds.n_groups == 2
    assert torch.equal(ds.index, torch.arange(12)) and torch.equal(
        ds.source_index, torch.arange(12)
    )
    assert ds.feature_names == ("u", "v", "w")
    with pytest.raises(dataclass_frozen_error()):
        ds.y = torch.zeros(12)  # type: ignore[misc]


def dataclass_frozen_error() -> type[Exception]:
    import dataclasses

    return dataclasses.FrozenInstanceError


@pytest.mark.parametrize(
    ("change", "error", "pattern"),
    [
        (
            {"y": torch.tensor([0, 2] * 6)},
            ValueError,
            "Expected `y` to be codes in 0..1, but got values from 0 to 2",
        ),
        (
            {"y": torch.zeros(11, dtype=torch.int64)},
            ValueError,
            "Expected `y` to be of shape [12], but got shape (11,)",
        ),
        ({"y": torch.full((12,), 0.5)}, TypeError, "Expected `y` to be integer codes"),
        (
            {"sensitive": {"sex": torch.full((12,), 2)}},
            ValueError,
            "Expected `sensitive['sex']` to be codes in 0..1",
        ),
        (
            {"sensitive": {"age": torch.zeros(12, dtype=torch.int64)}},
            ValueError,
            (
                "Expected `categories` to be a list of category names for every sensitive "
                "attribute, but got none for ['age']"
            ),
        ),
        ({"sensitive": {}}, TypeError, "Expected `sensitive` to be a non-empty mapping"),
        ({"feature_names": ["u"]}, ValueError, "Expected `feature_names` to be 3 names"),
        (
            {"group_name": "age"},
            ValueError,
            "Expected `group_name` to be one of 'sex', 'race', but got 'age'",
        ),
        ({"X": torch.zeros(12)}, ValueError, "Expected `X` to be of shape [N, d] or [N, C, H, W]"),
        (
            {"extras": {"s": torch.zeros(3)}},
            ValueError,
            "Expected `extras['s']` to be of shape [12]",
        ),
    ],
)
def test_invalid_fields_are_named(change, error, pattern):
    ds = small()
    kwargs = {
        "X": ds.X,
        "y": ds.y,
        "sensitive": ds.sensitive,
        "categories": ds.categories,
        "feature_names": ds.feature_names,
    }
    kwargs.update(change)
    with pytest.raises(error, match=re.escape(pattern)):
        FairDataset(**kwargs)


def test_getitem_and_dataloader_carry_the_index():
    ds = small(30)
    x, y, g, i = ds[7]
    assert (
        torch.equal(x, ds.X[7])
        and int(y) == int(ds.y[7])
        and int(g) == int(ds.group[7])
        and int(i) == 7
    )
    loader = DataLoader(ds, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0))
    seen = []
    for xb, yb, gb, ib in loader:
        assert ib.dtype == torch.int64
        assert (
            torch.equal(xb, ds.X[ib])
            and torch.equal(yb, ds.y[ib])
            and torch.equal(gb, ds.group[ib])
        )
        seen.append(ib)
    assert torch.equal(torch.sort(torch.cat(seen)).values, torch.arange(30))


def test_with_sensitive_switches_and_intersects():
    ds = small()
    assert torch.equal(ds.with_sensitive("race").group, ds.sensitive["race"])
    both = ds.with_sensitive("sex", "race")
    assert both.group_name == "sex & race"
    names = [both.group_categories[c] for c in both.group.tolist()]
    expected = [
        f"{ds.categories['sex'][s]} & {ds.categories['race'][r]}"
        for s, r in zip(ds.sensitive["sex"].tolist(), ds.sensitive["race"].tolist(), strict=False)
    ]
    assert names == expected
    assert len(set(both.group_categories)) == both.n_groups  # only observed combinations
    with pytest.raises(
        ValueError,
        match="Expected `names` to be attribute names among 'sex', 'race', but got 'age'",
    ):
        ds.with_sensitive("age")


def test_subset_renumbers_index_and_keeps_source_index():
    ds = small()
    sub = ds.subset(torch.tensor([5, 2, 9]))
    assert torch.equal(sub.index, torch.arange(3)) and torch.equal(
        sub.source_index, torch.tensor([5, 2, 9])
    )
    assert torch.equal(sub.X, ds.X[[5, 2, 9]]) and torch.equal(
        sub.extras["score"], torch.tensor([5.0, 2.0, 9.0])
    )
    nested = sub.subset(torch.tensor([True, False, True]))
    assert torch.equal(nested.source_index, torch.tensor([5, 9]))
    with pytest.raises(ValueError, match=r"Expected `rows` to be a bool mask of shape \[12\]"):
        ds.subset(torch.ones(4, dtype=torch.bool))


def test_keep_groups_recodes_the_attribute():
    ds = small()
    kept = ds.keep_groups("race", ["c", "a"])
    raw = ds.sensitive["race"]
    assert len(kept) == int(((raw == 2) | (raw == 0)).sum())
    assert kept.categories["race"] == ("c", "a")
    original = [ds.categories["race"][c] for c in raw[kept.source_index].tolist()]
    assert [kept.categories["race"][c] for c in kept.sensitive["race"].tolist()] == original
    with pytest.raises(ValueError, match="Expected `keep` to be a non-empty list of categories"):
        ds.keep_groups("race", ["z"])


def cells(ds: FairDataset) -> torch.Tensor:
    return torch.bincount(ds.group * 2 + ds.y, minlength=2 * ds.n_groups)


def test_split_is_stratified_disjoint_and_exact_in_size():
    ds = make_biased_classification(3001, seed=3)
    train, meta, test = ds.split(0.5, 0.3, 0.2, seed=0, standardize=False)
    assert len(meta) == round(0.3 * 3001) and abs(len(test) - 0.2 * 3001) <= 1
    assert len(train) + len(meta) + len(test) == 3001
    ids = torch.cat([train.source_index, meta.source_index, test.source_index])
    assert torch.equal(torch.sort(ids).values, torch.arange(3001))
    full = cells(ds).double()
    for part, frac in [(train, 0.5), (meta, 0.3), (test, 0.2)]:
        assert torch.all((cells(part) - frac * full).abs() <= 1.0)
        assert torch.equal(part.X, ds.X[part.source_index])  # rows travel with their ids
        assert torch.equal(part.index, torch.arange(len(part)))


def test_split_is_seeded():
    ds = make_biased_classification(500, seed=0)
    a, b = ds.split(seed=4), ds.split(seed=4)
    for p, q in zip(a, b, strict=False):
        assert torch.equal(p.source_index, q.source_index) and torch.equal(p.X, q.X)
    c = ds.split(seed=5)
    assert not torch.equal(a.train.source_index, c.train.source_index)


@pytest.mark.parametrize("mode", [True, "group"])
def test_meta_balanced_by_group_keeps_label_ratio(mode):
    ds = make_biased_classification(4000, minority_fraction=0.2, seed=1)
    train, meta, test = ds.split(0.6, 0.2, 0.2, seed=0, meta_balanced=mode)
    per_group = torch.bincount(meta.group, minlength=2)
    assert int(per_group.sum()) == 800 and abs(int(per_group[0]) - int(per_group[1])) <= 1
    rates = meta.summary()["base_rate"].to_numpy()
    assert np.allclose(rates, ds.summary()["base_rate"].to_numpy(), atol=0.01)
    assert len(train) + len(meta) + len(test) == 4000
    assert abs(len(test) / (len(train) + len(test)) - 0.25) < 0.002


def test_meta_balanced_by_group_and_label():
    ds = make_biased_classification(4000, minority_fraction=0.3, base_rates=(0.5, 0.4), seed=2)
    _, meta, _ = ds.split(0.6, 0.2, 0.2, seed=0, meta_balanced="group_label")
    assert cells(meta).tolist() == [200, 200, 200, 200]


def test_meta_balanced_caps_small_cells_at_half():
    ds = make_biased_classification(1000, minority_fraction=0.1, base_rates=(0.5, 0.1), seed=0)
    n_cell = cells(ds)
    train, meta, test = ds.split(0.4, 0.4, 0.2, seed=0, meta_balanced="group_label")
    assert torch.all(cells(meta) <= n_cell // 2)
    assert torch.all(cells(train) > 0) and torch.all(cells(test) > 0)


def test_standardisation_is_fitted_on_train_only():
    ds = make_biased_classification(2000, seed=0)
    onehot = (ds.y == 1).to(torch.float32)[:, None]  # an indicator column must stay 0/1
    ds = FairDataset(
        X=torch.cat([ds.X * 5 + 3, onehot], 1),
        y=ds.y,
        sensitive=ds.sensitive,
        categories=ds.categories,
        feature_names=["a", "b", "ind"],
    )
    raw = ds.split(seed=0, standardize=False)
    train, meta, test = ds.split(seed=0)
    ref = raw.train.X[:, :2].double()
    assert torch.allclose(train.scaler.mean[:2].double(), ref.mean(0), atol=1e-4)
    assert torch.allclose(
        train.X[:, :2].double().mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-5
    )
    assert torch.allclose(
        train.X[:, :2].double().std(0, unbiased=False),
        torch.ones(2, dtype=torch.float64),
        atol=1e-4,
    )
    assert torch.equal(train.X[:, 2], raw.train.X[:, 2])
    for part, r in [(meta, raw.meta), (test, raw.test)]:
        assert part.scaler is train.scaler
        assert torch.allclose(part.X, (r.X - train.scaler.mean) / train.scaler.scale)
        assert torch.allclose(train.scaler.inverse_transform(part.X), r.X, atol=1e-5)


def test_standardizer_leaves_indicator_and_constant_columns():
    X = torch.tensor([[0.0, 1.0, 7.0, 2.0], [1.0, 1.0, 7.0, 4.0], [0.0, 1.0, 7.0, 6.0]])
    s = Standardizer.fit(X)
    assert s.mean.tolist()[:3] == [0.0, 0.0, 7.0] and s.scale.tolist()[:3] == [1.0, 1.0, 1.0]
    assert torch.equal(s.transform(X)[:, :2], X[:, :2])
    assert torch.allclose(s.transform(X)[:, 3], torch.tensor([-1.2247, 0.0, 1.2247]), atol=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (
            {"train": 0.7, "meta": 0.2, "test": 0.2},
            "Expected `train`, `meta` and `test` to be fractions summing to 1",
        ),
        (
            {"train": 1.2, "meta": -0.1, "test": -0.1},
            "Expected `train` to be a fraction in [0, 1], but got 1.2",
        ),
        (
            {"meta_balanced": "labels"},
            (
                "Expected `meta_balanced` to be one of False, True, 'group', 'group_label', "
                "but got 'labels'"
            ),
        ),
    ],
)
def test_split_rejects_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=re.escape(pattern)):
        small().split(**kwargs)


def test_summary_and_repr_report_groups_and_base_rates():
    ds = make_biased_classification(700, seed=0).with_sensitive("group")
    frame = pd.DataFrame({"g": ds.group.numpy(), "y": ds.y.numpy()}).groupby("g")["y"]
    table = ds.summary()
    assert table["n"].tolist() == frame.size().tolist()
    assert np.allclose(table["base_rate"].to_numpy(), frame.mean().to_numpy())
    text = repr(ds)
    assert (
        "700 rows" in text and "minority" in text and f"{table['base_rate'].iloc[1]:.3f}" in text
    )
    assert str(ds) == text


def test_to_pandas_and_device_move():
    ds = small()
    df = ds.to_pandas()
    assert list(df.columns) == ["u", "v", "w", "y", "sex", "race", "score"]
    assert df["race"].tolist() == [ds.categories["race"][c] for c in ds.sensitive["race"].tolist()]
    moved = ds.subset(torch.tensor([3, 1])).to("cpu")
    assert moved.device.type == "cpu" and torch.equal(moved.source_index, torch.tensor([3, 1]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_to_cuda_keeps_everything_together():
    train, _, _ = make_biased_classification(200, seed=0).split(seed=0)
    gpu = train.to("cuda")
    assert {
        t.device.type
        for t in [gpu.X, gpu.y, gpu.group, gpu.index, gpu.source_index, gpu.scaler.mean]
    } == {"cuda"}
    assert torch.equal(
        gpu.split(seed=1).train.source_index.cpu(), train.split(seed=1).train.source_index
    )


def test_empty_meta_split_reports_nan_base_rates():
    train, meta, test = make_biased_classification(300, seed=0).split(0.8, 0.0, 0.2, seed=0)
    assert len(meta) == 0 and len(train) + len(test) == 300
    table = meta.summary()
    assert table["n"].tolist() == [0, 0] and table["base_rate"].isna().all()
    assert "0 rows" in repr(meta)


def test_with_sensitive_and_reweighing_share_the_intersection_encoder():
    import fairlib.metrics as fm
    from fairlib.weighting.reweighing import _dense_codes

    ds = make_biased_classification(300, seed=4)
    a = ds.sensitive["group"]
    b = (torch.arange(len(ds)) % 3).to(a.dtype)
    ids, combos = fm.intersection_ids([a, b])
    assert torch.equal(combos, torch.unique(torch.stack([a, b], 1), dim=0))
    assert torch.equal(combos[ids], torch.stack([a, b], 1))  # each row maps to its combination
    codes, names = _dense_codes([a, b])
    assert torch.equal(codes, ids) and names == [str(tuple(r)) for r in combos.tolist()]
