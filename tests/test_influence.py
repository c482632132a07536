"""Fair Infinitesimal Jackknife: predictions match refits, dropping helps, bad input is named."""

import warnings

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import fairlib.influence._jackknife as ij
from fairlib.datasets import FairDataset, make_biased_classification
from fairlib.influence import (
    drop_by_influence,
    fairness_influence,
    fit_to_convergence,
    smooth_metric,
)
from fairlib.train import MLP, LogisticRegression, evaluate, predict_scores

L2 = 1e-3
METRICS = ["equal_opportunity_difference", "demographic_parity_difference"]
BIASED = {"base_rates": (0.6, 0.15), "separation": 1.5, "group_shift": 2.0}  # a real EO gap


@pytest.fixture(scope="module")
def splits():
    return make_biased_classification(3000, seed=0, **BIASED).split(seed=0)


@pytest.fixture(scope="module")
def logistic(splits):
    return fit_to_convergence(LogisticRegression(2, seed=0), splits.train, l2=L2)


def _without(data, idx):
    keep = torch.ones(len(data), dtype=torch.bool)
    keep[idx] = False
    return data.subset(keep)


def _predicted_vs_refit(model, make, train, meta, infl, metric, *, l2, n_sets=20, share=0.02,
                        **fit_kw):
    """Predicted and actual (refit from the trained parameters) changes over random drop sets."""
    before = smooth_metric(model, meta, metric=metric)
    gen = torch.Generator().manual_seed(0)
    k = round(share * len(train))
    predicted, actual = [], []
    for _ in range(n_sets):
        idx = torch.randperm(len(train), generator=gen)[:k]
        refit = make()
        refit.load_state_dict(model.state_dict())
        fit_to_convergence(refit, _without(train, idx), l2=l2, **fit_kw)
        predicted.append(float(infl[idx].sum()))
        actual.append(float(smooth_metric(refit, meta, metric=metric) - before))
    return np.corrcoef(predicted, actual)[0, 1]


@pytest.mark.parametrize("metric", METRICS)
def test_influence_predicts_refit_on_logistic_regression(splits, logistic, metric):
    infl = fairness_influence(logistic, splits.train, splits.meta, metric=metric, l2=L2)
    corr = _predicted_vs_refit(logistic, lambda: LogisticRegression(2, seed=0), splits.train,
                               splits.meta, infl, metric, l2=L2)
    assert corr >= 0.95


def test_influences_sum_to_zero_at_the_minimum(splits, logistic):
    # sum_i g_i = n * grad L = 0: dropping every row of a mean predicts no change
    infl = fairness_influence(logistic, splits.train, splits.meta, l2=L2)
    assert abs(float(infl.sum())) < 1e-6 * float(infl.abs().sum())


@pytest.mark.parametrize("metric", METRICS)
def test_exact_and_cg_agree_on_logistic_regression(splits, logistic, metric):
    kw = {"metric": metric, "l2": L2}
    exact = fairness_influence(logistic, splits.train, splits.meta, method="exact", **kw)
    cg = fairness_influence(logistic, splits.train, splits.meta, method="cg", **kw)
    assert exact.dtype == torch.float64 and exact.shape == (len(splits.train),)
    torch.testing.assert_close(cg, exact, rtol=1e-7, atol=1e-12)


def test_dropping_top_influence_lowers_the_test_eo_gap():
    train, meta, test = make_biased_classification(10_000, seed=0, **BIASED).split(seed=0)
    model = fit_to_convergence(LogisticRegression(2, seed=0), train, l2=L2)
    drop = drop_by_influence(model, train, meta, fraction=0.05, l2=L2)
    assert drop.indices.shape == (round(0.05 * len(train)),)
    assert len(set(drop.indices.tolist())) == len(drop.indices)
    refit = fit_to_convergence(LogisticRegression(2, seed=0), _without(train, drop.indices), l2=L2)
    before, after = evaluate(model, test), evaluate(refit, test)
    gap = "equal_opportunity_difference"
    assert after.measure(gap) < before.measure(gap)
    assert float(smooth_metric(refit, meta)) < float(smooth_metric(model, meta))
    assert float(drop.predicted_metric) < float(smooth_metric(model, meta))
    assert after.overall["accuracy"] > before.overall["accuracy"] - 0.03  # the cost stays small


def test_predicted_metric_is_the_sum_of_influences(splits, logistic):
    # a small drop set cannot overshoot: the prediction is the metric plus the influences
    drop = drop_by_influence(logistic, splits.train, splits.meta, fraction=0.005, l2=L2)
    infl = fairness_influence(logistic, splits.train, splits.meta, l2=L2)
    expected = smooth_metric(logistic, splits.meta) + infl[drop.indices].sum()
    torch.testing.assert_close(drop.predicted_metric, expected)
    assert torch.equal(drop.indices, torch.argsort(infl, stable=True)[:len(drop.indices)])


def test_small_mlp_runs_and_cg_matches_exact(splits):
    l2, damping = 1e-2, 1e-3
    make = lambda: MLP(2, hidden=(8,), seed=0)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # ReLU kinks stop L-BFGS short of tol
        model = fit_to_convergence(make(), splits.train, l2=l2, max_iter=1000)
        kw = {"l2": l2, "damping": damping}
        exact = fairness_influence(model, splits.train, splits.meta, method="exact", **kw)
        cg = fairness_influence(model, splits.train, splits.meta, method="cg", **kw)
        torch.testing.assert_close(cg, exact, rtol=1e-6, atol=1e-10)
        corr = _predicted_vs_refit(model, make, splits.train, splits.meta, exact,
                                   "equal_opportunity_difference", l2=l2, max_iter=1000)
    assert np.isfinite(corr)  # reported, no threshold (about 0.97 here)


def test_smooth_metric_is_the_gap_of_mean_probabilities(splits, logistic):
    meta = splits.meta
    p = predict_scores(logistic, meta).double()
    pos = meta.y == 1
    tpr = [p[pos & (meta.group == g)].mean() for g in (0, 1)]
    sel = [p[meta.group == g].mean() for g in (0, 1)]
    close = {"rtol": 1e-6, "atol": 0.0}
    torch.testing.assert_close(smooth_metric(logistic, meta), (tpr[0] - tpr[1]).abs(), **close)
    dp = smooth_metric(logistic, meta, metric="demographic_parity_difference")
    torch.testing.assert_close(dp, (sel[0] - sel[1]).abs(), **close)


def test_three_groups_use_max_minus_min():
    gen = torch.Generator().manual_seed(0)
    n = 900
    group = torch.arange(n) % 3
    y = (torch.rand(n, generator=gen) < 0.2 + 0.2 * group).long()
    X = torch.stack([y + torch.randn(n, generator=gen), group.float()], 1)
    data = FairDataset(X=X, y=y, sensitive={"g": group}, categories={"g": ["a", "b", "c"]})
    model = fit_to_convergence(LogisticRegression(2, seed=0), data, l2=L2)
    p = predict_scores(model, data).double()
    sel = torch.stack([p[group == g].mean() for g in range(3)])
    metric = "demographic_parity_difference"
    torch.testing.assert_close(smooth_metric(model, data, metric=metric), sel.max() - sel.min(),
                               rtol=1e-6, atol=0.0)
    drop = drop_by_influence(model, data, data, fraction=0.02, metric=metric, l2=L2)
    assert float(drop.predicted_metric) < float(sel.max() - sel.min())


def test_model_is_left_unchanged(splits, logistic):
    logistic.train()
    state = {k: v.clone() for k, v in logistic.state_dict().items()}
    fairness_influence(logistic, splits.train, splits.meta, l2=L2, method="cg")
    assert logistic.training
    assert all(torch.equal(v, state[k]) for k, v in logistic.state_dict().items())


class _SyncCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func.__name__ == "_local_scalar_dense"
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("method", ["exact", "cg"])
def test_host_reads_do_not_grow_with_the_rows(splits, logistic, monkeypatch, method):
    monkeypatch.setattr(ij, "_BUDGET", 64)  # many row chunks
    counts = []
    for n in (300, 1200):
        with _SyncCounter() as counter:
            fairness_influence(logistic, splits.train.subset(slice(0, n)), splits.meta, l2=L2,
                               method=method)
        counts.append(counter.count)
    assert counts[0] == counts[1]


def test_bad_inputs_are_named(splits, logistic):
    train, meta = splits.train, splits.meta
    for fraction in (0, 1, 1.5, -0.1, True, "0.1", float("nan")):
        with pytest.raises(ValueError, match="`fraction` to be a fraction in \\(0, 1\\)"):
            drop_by_influence(logistic, train, meta, fraction=fraction)
    with pytest.raises(ValueError, match="`metric` to be one of"):
        fairness_influence(logistic, train, meta, metric="accuracy")
    with pytest.raises(ValueError, match="`method` to be one of"):
        fairness_influence(logistic, train, meta, method="lissa")
    with pytest.raises(ValueError, match="`damping` to be a finite non-negative"):
        fairness_influence(logistic, train, meta, damping=-1.0)
    with pytest.raises(ValueError, match="`l2` to be a finite non-negative"):
        fit_to_convergence(logistic, train, l2=float("inf"))
    with pytest.raises(TypeError, match="`model` to be a torch.nn.Module"):
        fairness_influence(lambda x: x, train, meta)
    with pytest.raises(TypeError, match="`meta` to be a FairDataset"):
        fairness_influence(logistic, train, (meta.X, meta.y))
    one_group = meta.keep_groups("group", ["minority"])
    with pytest.raises(ValueError, match="`meta` to be rows with y = 1 from at least two groups"):
        fairness_influence(logistic, train, one_group)
    with pytest.raises(ValueError, match="`meta` to be rows from at least two groups.*1 group"):
        drop_by_influence(logistic, train, one_group, fraction=0.1, metric=METRICS[1])
    with pytest.raises(ValueError, match="`data` to be rows with y = 1 from at least two groups"):
        smooth_metric(logistic, one_group)


def test_indefinite_hessian_asks_for_damping(splits):
    untrained = MLP(2, hidden=(8,), seed=0)  # far from a minimum: negative curvature
    with pytest.raises(ValueError, match="`damping` to be large enough for a positive definite"):
        fairness_influence(untrained, splits.train, splits.meta, method="exact")
