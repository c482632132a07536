"""fairlib.studies.condensation: every rule keeps the right rows, seeded, with named errors."""

import pytest
import torch

from fairlib.studies.condensation import (
    RULES,
    select_group_balanced,
    select_random,
    select_subset,
    select_weight_proportional,
)
from fairlib.datasets import make_biased_classification
from fairlib.train import LogisticRegression, fit
from fairlib.weighting import FORML, n_keep, select_top_weight


@pytest.fixture(scope="module")
def data():
    return make_biased_classification(400, seed=0)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.37, 1.0])
def test_every_rule_returns_unique_sorted_rows_of_the_right_count(data, rule, fraction):
    w = torch.rand(len(data), generator=torch.Generator().manual_seed(2))
    rows = select_subset(rule, data, fraction, weights=w, seed=0)
    assert rows.dtype == torch.int64 and len(rows) == n_keep(len(data), fraction)
    assert len(rows.unique()) == len(rows) and bool((rows[1:] > rows[:-1]).all())
    assert int(rows.min()) >= 0 and int(rows.max()) < len(data)
    torch.testing.assert_close(rows, select_subset(rule, data, fraction, weights=w, seed=0))


@pytest.mark.parametrize("rule", ["random", "group_balanced", "weight_proportional"])
def test_random_rules_depend_on_the_seed(data, rule):
    w = torch.rand(len(data), generator=torch.Generator().manual_seed(2))
    a = select_subset(rule, data, 0.2, weights=w, seed=0)
    b = select_subset(rule, data, 0.2, weights=w, seed=1)
    assert not torch.equal(a, b)


def test_group_balanced_shares_equally_and_refills_from_larger_groups():
    groups = torch.tensor([0] * 70 + [1] * 20 + [2] * 10)
    counts = torch.bincount(groups[select_group_balanced(groups, 0.3, seed=0)], minlength=3)
    assert counts.tolist() == [10, 10, 10]
    counts = torch.bincount(groups[select_group_balanced(groups, 0.6, seed=0)], minlength=3)
    assert counts.tolist() == [30, 20, 10]  # the two small groups whole, the rest from the large
    counts = torch.bincount(groups[select_group_balanced(groups, 0.31, seed=0)], minlength=3)
    assert counts.tolist() == [11, 10, 10]  # one leftover row: to the cell with most spare rows


def test_group_label_balance_shares_among_cells(data):
    rows = select_subset("group_balanced", data, 0.2, seed=0, balance="group_label")
    sub = data.subset(rows)
    cells = torch.bincount(sub.group * 2 + sub.y, minlength=4)
    assert cells.tolist() == [20, 20, 20, 20]
    rows = select_subset("group_balanced", data, 0.2, seed=0, balance="group")
    assert data.subset(rows).summary()["n"].tolist() == [40, 40]


def test_top_weight_is_forml_condense(data):
    meta = make_biased_classification(100, seed=1)
    forml = FORML(meta_lr=3.0)
    fit(LogisticRegression(2, seed=0), data, strategy=forml, meta=meta, epochs=2, progress=False,
        device="cpu")
    for fraction in (0.1, 0.5):
        rows = select_subset("top_weight", data, fraction, weights=forml.weights_)
        torch.testing.assert_close(rows, forml.condense(fraction))
    kept = select_top_weight(forml.weights_, 0.25)
    dropped = torch.ones(len(data), dtype=torch.bool)
    dropped[kept] = False
    assert float(forml.weights_[kept].min()) >= float(forml.weights_[dropped].max())


def test_top_weight_ties_go_to_the_lower_position():
    assert select_top_weight(torch.tensor([1.0, 1.0, 1.0, 1.0]), 0.5).tolist() == [0, 1]


def test_weight_proportional_follows_the_weights():
    w = torch.tensor([1.0, 2.0, 0.0, 7.0])
    draws = torch.cat([select_weight_proportional(w, 0.25, seed=s) for s in range(4000)])
    freq = torch.bincount(draws, minlength=4).double() / 4000
    torch.testing.assert_close(freq, w.double() / w.sum(), atol=0.025, rtol=0)
    # zero-weight rows only after every positive one
    assert 2 not in select_weight_proportional(w, 0.75, seed=0).tolist()
    assert select_weight_proportional(w, 1.0, seed=0).tolist() == [0, 1, 2, 3]


def test_random_is_uniform_over_rows():
    draws = torch.stack([select_random(5, 0.2, seed=s) for s in range(5000)]).flatten()
    freq = torch.bincount(draws, minlength=5).double() / 5000
    uniform = torch.full((5,), 0.2, dtype=torch.float64)
    torch.testing.assert_close(freq, uniform, atol=0.025, rtol=0)


def test_errors_name_the_argument(data):
    with pytest.raises(ValueError, match="Expected `rule` to be one of"):
        select_subset("best", data, 0.5)
    with pytest.raises(ValueError, match="needs one weight per row"):
        select_subset("top_weight", data, 0.5)
    with pytest.raises(ValueError, match="needs one weight per row"):
        select_subset("weight_proportional", data, 0.5, weights=torch.ones(3))
    with pytest.raises(ValueError, match="non-negative finite"):
        select_top_weight(torch.tensor([1.0, -1.0]), 0.5)
    with pytest.raises(ValueError, match="non-negative finite"):
        select_weight_proportional(torch.tensor([1.0, float("nan")]), 0.5)
    with pytest.raises(ValueError, match="Expected `fraction` to be in"):
        select_random(10, 0.0)
    with pytest.raises(ValueError, match="Expected `balance` to be"):
        select_subset("group_balanced", data, 0.5, balance="label")
    with pytest.raises(ValueError, match="Expected `n` to be a positive integer"):
        n_keep(0, 0.5)
