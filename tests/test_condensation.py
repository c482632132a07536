"""fairlib.studies.condensation: every rule keeps the right rows, seeded, with named errors;
the chapter's data set, methods, metric and grid on fairlib.experiments."""

from collections import Counter

import pytest
import torch

from fairlib.experiments import RunSpec, execute
from fairlib.experiments.registry import datasets, methods
from fairlib.studies.condensation import (
    COMPARED,
    CONDENSE_RULES,
    RULES,
    KeepRows,
    adult_condensed,
    plot_by_fraction,
    select_group_balanced,
    select_random,
    select_subset,
    select_top_within_cells,
    select_weight_proportional,
    tuning_grid,
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


def test_top_within_cells_keeps_each_cells_share_and_its_top_weights(data):
    w = torch.rand(len(data), generator=torch.Generator().manual_seed(3))
    rows = select_top_within_cells(w, data.cells, 0.1)
    assert len(rows) == n_keep(len(data), 0.1)
    sizes = torch.bincount(data.cells, minlength=4)
    kept = torch.bincount(data.cells[rows], minlength=4)
    assert ((kept - 0.1 * sizes).abs() <= 1).all()  # each cell its share, up to rounding
    chosen = torch.zeros(len(data), dtype=torch.bool)
    chosen[rows] = True
    for c in range(4):
        inside = data.cells == c
        if (inside & chosen).any() and (inside & ~chosen).any():
            assert float(w[inside & chosen].min()) >= float(w[inside & ~chosen].max())
    same = select_subset("top_weight_within_cells", data, 0.1, weights=w)
    torch.testing.assert_close(rows, same)
    with pytest.raises(ValueError, match="shaped like `weights`"):
        select_top_within_cells(w, data.cells[:3], 0.1)


SMALL = {"epochs": 1, "hidden": 4}


def test_adult_condensed_marks_every_rules_rows_on_one_split_and_one_set_of_weights():
    train, meta, test = adult_condensed(seed=0, fraction=0.1, forml=SMALL)
    k = n_keep(len(train), 0.1)
    for name, (rule, _) in CONDENSE_RULES.items():
        kept = int(train.extras[f"keep_{name}"].sum())
        assert kept == (len(train) if rule is None else k), name
    top = torch.nonzero(train.extras["keep_top_weight"]).flatten()
    torch.testing.assert_close(top, select_top_weight(train.extras["forml_weight"], 0.1))
    other, _, _ = adult_condensed(seed=0, fraction=0.5, forml=SMALL)
    torch.testing.assert_close(other.X, train.X)  # the same split and weights at every fraction
    torch.testing.assert_close(other.extras["forml_weight"], train.extras["forml_weight"])
    assert int(other.extras["keep_random"].sum()) == n_keep(len(train), 0.5)
    noisy, _, _ = adult_condensed(seed=0, fraction=0.9, forml=SMALL, flip_rate=0.3)
    flipped = noisy.extras["flipped"].bool()
    women = train.group == train.group_categories.index("Female")
    female_pos = int((women & (train.y == 1)).sum())
    assert int(flipped.sum()) == round(0.3 * female_pos) and bool((noisy.y[flipped] == 0).all())
    with pytest.raises(ValueError, match="`forml` settings"):
        adult_condensed(seed=0, fraction=0.1, forml={"epoch": 1})


def test_keep_rows_draws_only_kept_rows_as_often_as_asked(data):
    keep = torch.zeros(len(data), dtype=torch.int8)
    keep[:7] = 1
    strategy = KeepRows("random", draws=30).setup(data.with_labels(data.y, keep_random=keep),
                                                  generator=torch.Generator().manual_seed(0))
    drawn = list(strategy.sampler())
    assert len(drawn) == 30 and set(drawn) == set(range(7))
    assert max(Counter(drawn).values()) - min(Counter(drawn).values()) <= 1  # whole passes first
    with pytest.raises(ValueError, match="extras\\['keep_top_weight'\\]"):
        KeepRows("top_weight").setup(data)


def test_every_rule_is_a_registered_method_and_a_run_records_its_subset():
    assert "adult_condensed" in datasets() and set(CONDENSE_RULES) <= set(methods())
    spec = RunSpec("adult_condensed", "mlp", "top_weight", seed=0, model_params={"hidden": [4]},
                   dataset_params={"fraction": 0.05, "forml": SMALL}, method_params={"draws": 256},
                   train={"epochs": 1, "batch_size": 64, "device": "cpu"},
                   metrics=["condensation"])
    record = execute(spec)
    assert record["status"] == "ok", record["error"]
    assert record["kept_rows"] == n_keep(record["n_train"], 0.05)
    shares = [v for k, v in record.items() if k.startswith("kept_cell_share[")]
    assert len(shares) == 4 and abs(sum(shares) - 1) < 1e-9
    assert 0 <= record["forml_test_accuracy"] <= 1 and "flipped_removed" not in record


def test_tuning_grid_gives_every_rule_the_same_budget_on_every_data_set():
    specs = tuning_grid(fractions=[0.05, 0.2], lrs=[0.001, 0.003, 0.01], retrain_steps=10,
                        batch_size=32, hidden=4, epochs=1, lr=0.001, forml_objective="eo_gap",
                        forml_meta_lr=1.0, meta_fraction=0.1, test_fraction=0.3, flip_rate=0.3)
    per_data: dict = {}
    for s in specs:
        per_data.setdefault(s.dataset_params, Counter())[s.method] += 1
    assert len(per_data) == 3
    for data, sizes in per_data.items():
        assert set(sizes.values()) == {3}
        flip = dict(data)["flip_rate"]
        assert set(sizes) == (set(COMPARED) if flip else set(CONDENSE_RULES))
    assert {dict(s.method_params)["draws"] for s in specs} == {320}
    assert all(s.metrics == ("condensation",) for s in specs)
    with pytest.raises(ValueError, match="`rules` among"):
        tuning_grid(fractions=[0.1], lrs=[0.001], retrain_steps=1, batch_size=8, hidden=2,
                    epochs=1, lr=0.001, forml_objective="eo_gap", forml_meta_lr=1.0,
                    meta_fraction=0.1, test_fraction=0.3, rules=["best"])


def test_plot_by_fraction_draws_one_panel_per_metric_with_a_reference():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from fairlib.experiments import summarize

    runs = pd.DataFrame({"method": ["a", "a", "b", "b"] * 2, "fraction": [0.1] * 4 + [0.4] * 4,
                         "acc": [0.8, 0.7, 0.6, 0.65, 0.9, 0.8, 0.7, 0.72], "gap": [0.1] * 8})
    fig = plot_by_fraction(summarize(runs, ["acc", "gap"], by=["method", "fraction"], n_boot=200),
                           ["acc", "gap"], reference={"gap": 0.05}, reference_label="ref")
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
    assert "ref" in [t.get_text() for t in fig.legends[0].get_texts()]
