"""fairlib.studies.causal_context_audit: semi-synthetic bias, cross-fitting, gap tables, figures."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402

import fairlib.metrics as fm  # noqa: E402
from fairlib.datasets import semi_synthetic_context  # noqa: E402
from fairlib.studies.causal_context_audit import (  # noqa: E402
    GAP_METRICS,
    IMPLIED_GAP,
    ContextScores,
    audit_context,
    draw_context_graph,
    fit_context_predictors,
    gap_table,
    plot_gap_heatmap,
    vanishing_summary,
)
from fairlib.datasets import make_biased_classification, make_causal_context  # noqa: E402

KINDS = list(IMPLIED_GAP)


@pytest.fixture(scope="module")
def population():
    return make_biased_classification(6000, minority_fraction=0.4, base_rates=(0.4, 0.25), seed=3)


# -- semi_synthetic_context ------------------------------------------------------------------
def test_random_attribute_is_appended_and_active(population):
    ctx = semi_synthetic_context(population, "selection_on_label", seed=1, p=0.3)
    tgt = ctx.target
    assert tgt.feature_names == (*population.feature_names, "a")
    assert tgt.group_name == "a" and tgt.group_categories == ("a=0", "a=1")
    assert torch.equal(tgt.X[:, -1].long(), tgt.group)
    assert torch.equal(tgt.X[:, :-1], population.X) and torch.equal(tgt.y, population.y)
    assert abs(float(tgt.group.double().mean()) - 0.3) < 0.02
    # a is drawn independently of the population: same share in both original groups
    orig = tgt.sensitive["group"]
    shares = [float(tgt.group[orig == g].double().mean()) for g in (0, 1)]
    assert abs(shares[0] - shares[1]) < 0.04
    assert ctx.fair_features == population.feature_names
    assert torch.equal(ctx.fair_X(tgt), population.X)


def test_measurement_error_flips_exact_counts_and_keeps_base_rate(population):
    ctx = semi_synthetic_context(population, "measurement_error", seed=0, flip_rate=0.4)
    obs, tgt = ctx.observed, ctx.target
    assert len(obs) == len(tgt) and torch.equal(obs.X, tgt.X)
    y_true, y, a = obs.extras["y_true"], obs.y, obs.group
    assert torch.equal(y_true, tgt.y) and "y_clean" not in obs.extras
    down = (a == 1) & (y_true == 1)
    up = (a == 0) & (y_true == 0)
    assert int((y[down] == 0).sum()) == round(0.4 * int(down.sum()))
    ybar = float(y_true.double().mean())
    assert int((y[up] == 1).sum()) == round(0.4 * ybar / (1 - ybar) * int(up.sum()))
    assert torch.equal(y[~(down | up)], y_true[~(down | up)])
    assert abs(float(y.double().mean()) - ybar) < 0.01


def test_selection_on_label_drops_only_disfavoured_cells(population):
    ctx = semi_synthetic_context(population, "selection_on_label", seed=2, drop_rate=0.5)
    obs, tgt = ctx.observed, ctx.target
    kept = torch.zeros(len(tgt), dtype=torch.bool)
    kept[obs.source_index] = True
    disfavoured = ((tgt.y == 0) & (tgt.group == 1)) | ((tgt.y == 1) & (tgt.group == 0))
    assert bool(kept[~disfavoured].all())
    assert abs(float(kept[disfavoured].double().mean()) - 0.5) < 0.03
    assert torch.equal(obs.y, tgt.y[obs.source_index])
    assert torch.equal(obs.X, tgt.X[obs.source_index])


def test_selection_on_predictors_drops_by_feature_median(population):
    ctx = semi_synthetic_context(population, "selection_on_predictors", seed=0,
                                 selection_feature="x_label", drop_rate=1.0)
    obs = ctx.observed
    x = population.X[:, 0]
    low = (x < x.median())[obs.source_index]
    assert bool(((low & (obs.group == 0)) | (~low & (obs.group == 1))).all())
    assert ctx.implied_metric == "calibration"


def test_semi_synthetic_is_seeded(population):
    a = semi_synthetic_context(population, "selection_on_label", seed=5)
    b = semi_synthetic_context(population, "selection_on_label", seed=5)
    c = semi_synthetic_context(population, "selection_on_label", seed=6)
    assert torch.equal(a.observed.source_index, b.observed.source_index)
    assert not torch.equal(a.target.group, c.target.group)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"kind": "nope"}, ValueError, "Expected `kind` to be one of 'measurement_error'"),
        ({"kind": "selection_on_predictors"}, ValueError,
         "Expected `selection_feature` to be a feature name of `ds`"),
        ({"kind": "selection_on_label", "p": 1.0}, ValueError,
         "Expected `p` to be a probability in (0, 1), but got 1.0"),
        ({"kind": "selection_on_label", "drop_rate": 2.0}, ValueError,
         "Expected `drop_rate` to be a probability in [0, 1], but got 2.0"),
    ],
)
def test_semi_synthetic_rejects_bad_arguments(population, kwargs, error, pattern):
    with pytest.raises(error, match=re.escape(pattern)):
        semi_synthetic_context(population, **kwargs)


def test_measurement_error_needs_room_for_upward_flips():
    # base rate 0.75: keeping it needs 3 x flip_rate of the negatives flipped up
    mostly_positive = make_biased_classification(2000, base_rates=(0.75, 0.75), seed=0)
    pattern = "Expected `flip_rate` to be at most 0.3"
    with pytest.raises(ValueError, match=re.escape(pattern)):
        semi_synthetic_context(mostly_positive, "measurement_error", flip_rate=0.4)
    ok = semi_synthetic_context(mostly_positive, "measurement_error", flip_rate=0.3)
    assert len(ok.observed) == 2000


def test_semi_synthetic_rejects_non_datasets():
    msg = "Expected `ds` to be a FairDataset, but got list"
    with pytest.raises(TypeError, match=re.escape(msg)):
        semi_synthetic_context([1, 2], "measurement_error")  # type: ignore[arg-type]


# -- fit_context_predictors ------------------------------------------------------------------
def test_single_fold_matches_a_direct_fit():
    ctx = make_causal_context("selection_on_label", n=5000, seed=0)
    scores = fit_context_predictors(ctx, LogisticRegression, target_trained=True)
    obs = ctx.observed
    direct = LogisticRegression().fit(ctx.fair_X(obs).numpy(), obs.y.numpy())
    expect = direct.predict_proba(ctx.fair_X(ctx.target).numpy())[:, 1]
    assert np.allclose(scores.target["counterfactually fair"].numpy(), expect)
    assert set(scores.target) == {"naive", "counterfactually fair", "trained on target"}
    assert set(scores.observed) == {"naive", "counterfactually fair"}
    assert scores.observed["naive"].dtype == torch.float64


def test_cross_fitting_never_scores_a_row_with_a_model_that_saw_it(population):
    ctx = semi_synthetic_context(population, "measurement_error", seed=0)

    def one_nn():
        return KNeighborsClassifier(n_neighbors=1)

    in_sample = fit_context_predictors(ctx, one_nn, n_folds=1)
    crossed = fit_context_predictors(ctx, one_nn, n_folds=2, seed=0)
    y = ctx.observed.y.double()
    # 1-NN reproduces its own training labels; cross-fitted it cannot.
    assert torch.equal(in_sample.observed["naive"], y)
    assert float((crossed.observed["naive"] == y).double().mean()) < 0.9
    # Same rows and features in both samples: the same fold's model scores them.
    cf = "counterfactually fair"
    assert torch.equal(crossed.observed[cf], crossed.target[cf])


def test_fit_context_predictors_rejects_bad_arguments():
    ctx = make_causal_context("measurement_error", n=500, seed=0)
    msg = "Expected `n_folds` to be a positive integer, but got 0"
    with pytest.raises(ValueError, match=re.escape(msg)):
        fit_context_predictors(ctx, LogisticRegression, n_folds=0)
    with pytest.raises(TypeError, match=re.escape("Expected `ctx` to be a CausalContext")):
        fit_context_predictors("ctx", LogisticRegression)  # type: ignore[arg-type]


# -- gap_table ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def calibrated():
    g = torch.Generator().manual_seed(0)
    a = (torch.rand(20_000, generator=g) < 0.4).long()
    score = torch.rand(20_000, generator=g, dtype=torch.float64) * 0.6 + 0.2 * a  # groups differ
    y = torch.bernoulli(score, generator=g).long()
    return y, score, a


def test_gap_table_matches_fairlib_metrics(calibrated):
    y, score, a = calibrated
    pred = (score >= 0.5).long()
    t = gap_table(y, pred, score, sensitive_features=a, n_bins=10, n_boot=200, seed=0)
    assert list(t.index) == list(GAP_METRICS)
    by = fm.fairness_report(y, pred, sensitive_features=a).by_group
    for row, rate in [("demographic_parity", "selection_rate"),
                      ("true_positive_rate", "true_positive_rate"),
                      ("false_positive_rate", "false_positive_rate"),
                      ("positive_predictive_value", "positive_predictive_value")]:
        expected = by[rate].iloc[1] - by[rate].iloc[0]
        assert t.loc[row, "estimate"] == pytest.approx(expected, abs=1e-12)
    assert t.loc["equalized_odds", "estimate"] == pytest.approx(
        float(fm.equalized_odds_difference(y, pred, sensitive_features=a)), abs=1e-12)
    assert t.loc["calibration", "estimate"] == pytest.approx(
        float(fm.calibration_gap(y, score, sensitive_features=a, n_bins=10)), abs=1e-12)
    assert (t["lower"] <= t["upper"]).all()


def test_gap_table_sign_follows_group_order(calibrated):
    y, score, a = calibrated
    pred = (score >= 0.5).long()
    t = gap_table(y, pred, score, sensitive_features=a, n_boot=50)
    flipped = gap_table(y, pred, score, sensitive_features=1 - a, n_boot=50)
    assert t.loc["demographic_parity", "estimate"] == pytest.approx(
        -flipped.loc["demographic_parity", "estimate"])
    assert t.loc["demographic_parity", "estimate"] > 0.1  # group 1 has higher scores


def test_calibration_noise_floor_separates_calibrated_from_miscalibrated(calibrated):
    y, score, a = calibrated
    good = gap_table(y, (score >= 0.5).long(), score, sensitive_features=a, n_boot=300, seed=1)
    assert bool(good.loc["calibration", "consistent_with_zero"])
    assert good.loc["calibration", "estimate"] <= good.loc["calibration", "noise_floor"] < 0.05
    # Shift group 1's scores: same ranking within groups, no longer calibrated across them.
    shifted = torch.where(a == 1, (score - 0.1).clamp(0, 1), score)
    bad = gap_table(y, (shifted >= 0.5).long(), shifted, sensitive_features=a, n_boot=300, seed=1)
    assert not bool(bad.loc["calibration", "consistent_with_zero"])
    assert bad.loc["calibration", "estimate"] > 0.05


def test_gap_table_is_seeded(calibrated):
    y, score, a = calibrated
    args = (y, (score >= 0.5).long(), score)
    t1 = gap_table(*args, sensitive_features=a, n_boot=100, seed=4)
    t2 = gap_table(*args, sensitive_features=a, n_boot=100, seed=4)
    t3 = gap_table(*args, sensitive_features=a, n_boot=100, seed=5)
    pd.testing.assert_frame_equal(t1, t2)
    assert not t1["upper"].equals(t3["upper"])


def test_gap_table_rejects_other_than_two_groups():
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    msg = "Expected `sensitive_features` to be exactly two groups"
    with pytest.raises(ValueError, match=re.escape(msg)):
        gap_table(y, y, y.double(), sensitive_features=[0, 0, 1, 1, 2, 2], n_boot=10)
    msg = "Expected `n_boot` to be an integer >= 2, but got 1"
    with pytest.raises(ValueError, match=re.escape(msg)):
        gap_table(y, y, y.double(), sensitive_features=[0, 0, 0, 1, 1, 1], n_boot=1)


# -- audit_context and vanishing_summary -------------------------------------------------------
@pytest.fixture(scope="module")
def audits():
    out = {}
    for kind in KINDS:
        ctx = make_causal_context(kind, n=200_000, seed=0)
        scores = fit_context_predictors(ctx, LogisticRegression, target_trained=True)
        out[kind] = audit_context(ctx, scores, n_boot=300, seed=0)
    return out


def test_each_context_zeroes_exactly_its_implied_gap(audits):
    summary = vanishing_summary(audits)
    assert list(summary.index) == KINDS
    for kind, row in summary.iterrows():
        assert row["metric"] == IMPLIED_GAP[kind]
        assert bool(row["consistent_with_zero"]) and abs(row["estimate"]) < 0.01, (kind, row)
        assert row["largest_other"] > 0.1
    # the naive model exploits the proxy where it helps fit the bias
    for kind in ("measurement_error", "selection_on_label"):
        naive = audits[kind].loc[("naive", IMPLIED_GAP[kind])]
        assert not bool(naive["consistent_with_zero"]) and abs(naive["estimate"]) > 0.05


def test_target_accuracy_rows(audits):
    me = audits["measurement_error"].xs("target_accuracy", level="metric")
    assert set(me.index) == {"naive", "counterfactually fair", "trained on target"}
    assert me.loc["counterfactually fair", "estimate"] > me.loc["naive", "estimate"] + 0.03
    assert me.loc["trained on target", "estimate"] >= me.loc["counterfactually fair", "estimate"]
    assert (me["lower"] <= me["estimate"]).all() and (me["estimate"] <= me["upper"]).all()
    # the trained-on-target predictor has no observed-sample gaps
    assert list(audits["measurement_error"].loc["trained on target"].index) == ["target_accuracy"]


def test_audit_context_rejects_raw_dicts():
    ctx = make_causal_context("measurement_error", n=500, seed=0)
    msg = "Expected `scores` to be ContextScores, but got dict"
    with pytest.raises(TypeError, match=re.escape(msg)):
        audit_context(ctx, {"naive": torch.zeros(500)})  # type: ignore[arg-type]
    assert ContextScores(observed={}, target={}).target == {}


# -- figures -------------------------------------------------------------------------------
def test_heatmap_frames_the_implied_cells_and_shows_absolute_values():
    gaps = pd.DataFrame({"demographic_parity": [-0.3, 0.2], "equalized_odds": [0.1, 0.001],
                         "calibration": [0.2, 0.15]},
                        index=["measurement_error", "selection_on_label"])
    ax = plot_gap_heatmap(gaps)
    frames = [(p.get_x(), p.get_y()) for p in ax.patches]
    assert sorted(frames) == [(-0.5, -0.5), (0.5, 0.5)]
    texts = [t.get_text() for t in ax.texts]
    assert "0.300" in texts and "-0.300" not in texts
    plt.close(ax.figure)
    with pytest.raises(TypeError, match="Expected `gaps` to be a non-empty DataFrame"):
        plot_gap_heatmap(pd.DataFrame())


@pytest.mark.parametrize("kind", KINDS)
def test_context_graph_has_one_arrow_per_edge(kind):
    ax = draw_context_graph(kind)
    arrows = [t for t in ax.texts if not t.get_text()]
    labels = {t.get_text() for t in ax.texts if t.get_text()}
    assert len(arrows) == 5
    assert ("$S$" in labels) == (kind != "measurement_error")
    plt.close(ax.figure)


@pytest.mark.parametrize("seed", range(6))
def test_every_gap_interval_contains_its_estimate_even_for_absolute_gaps_near_zero(seed):
    from fairlib.studies.causal_context_audit import gap_table

    gen = torch.Generator().manual_seed(seed)
    n = 4000  # no true gap: the absolute gaps' bootstrap distributions sit above 0
    group = torch.randint(0, 2, (n,), generator=gen)
    y = torch.randint(0, 2, (n,), generator=gen)
    score = torch.rand(n, generator=gen)
    table = gap_table(y, (score > 0.5).long(), score, sensitive_features=group, n_boot=300, seed=seed)
    assert (table["lower"] <= table["estimate"]).all() and (table["estimate"] <= table["upper"]).all()
    # the printed interval and "consistent with zero" agree (calibration uses its noise floor)
    rows = table.drop(index="calibration")
    assert (rows["consistent_with_zero"] == ((rows["lower"] <= 0) & (rows["upper"] >= 0))).all()


# -- the chapter's helpers -----------------------------------------------------------------------
from fairlib.book import interval_table, note_intervals  # noqa: E402
from fairlib.studies.causal_context_audit import (  # noqa: E402
    CHAPTER,
    MarginalisedClassifier,
    audit_contexts,
    base_rate_table,
    context_to,
    gap_matrix,
    gap_overview,
    group_threshold_audit,
    implied_gap_by_size,
    implied_gap_notes,
    interval_columns,
    lose_positives,
    plot_audit_heatmaps,
    target_accuracy,
    target_auc,
)

CF, NAIVE, REF = "counterfactually fair", "naive", "trained on target"


@pytest.fixture(scope="module")
def small_contexts():
    return {kind: make_causal_context(kind, n=30_000, seed=1) for kind in KINDS}


@pytest.fixture(scope="module")
def small_audits(small_contexts):
    return audit_contexts(small_contexts, LogisticRegression, target_trained=KINDS[:1],
                          n_boot=100, seed=2)


def test_module_names_chapter_7():
    assert CHAPTER == "07_causal_context"


def test_context_to_keeps_a_cpu_context(small_contexts):
    ctx = small_contexts["measurement_error"]
    assert context_to(ctx, "cpu") is ctx
    assert context_to(ctx, torch.device("cpu")) is ctx


def test_audit_contexts_is_fit_then_audit_with_one_seed(small_contexts, small_audits):
    tables, scores = small_audits
    assert list(tables) == KINDS
    assert REF in scores["measurement_error"].target
    assert REF not in scores["selection_on_label"].target
    ctx = small_contexts["selection_on_label"]
    direct = audit_context(ctx, fit_context_predictors(ctx, LogisticRegression, seed=2),
                           n_boot=100, seed=2)
    pd.testing.assert_frame_equal(tables["selection_on_label"], direct)
    limited, _ = audit_contexts({"selection_on_label": ctx}, LogisticRegression, n_boot=100,
                                seed=2, openmp_threads=1)
    pd.testing.assert_frame_equal(limited["selection_on_label"], direct)


def test_base_rate_table_reads_each_sample(small_contexts):
    t = base_rate_table(small_contexts)
    assert t.index.names == ["context", "sample"] and len(t) == 2 * len(KINDS)
    obs = small_contexts["selection_on_label"].observed
    row = t.loc[("selection_on_label", "observed")]
    assert row["rows"] == len(obs)
    assert row["base rate a=1"] == pytest.approx(float(obs.y[obs.group == 1].double().mean()))
    # the target has no bias: equal base rates up to noise
    tgt = t.xs("target", level="sample")
    assert ((tgt["base rate a=0"] - tgt["base rate a=1"]).abs() < 0.03).all()


def test_gap_overview_prints_every_gap_and_stars_the_ones_consistent_with_zero(small_audits):
    tables, _ = small_audits
    view = gap_overview(tables)
    assert view.shape == (len(GAP_METRICS), 2 * len(KINDS))
    me = tables["measurement_error"].loc[(CF, "demographic_parity")]
    text = view.loc["demographic parity", ("measurement error", CF)]
    assert text.startswith(f"{me['estimate']:+.4f} [")
    assert text.endswith(" *") == bool(me["consistent_with_zero"])


def test_interval_columns_and_notes_glue_the_implied_gaps(small_audits, monkeypatch):
    tables, _ = small_audits
    summary = vanishing_summary(tables)
    glued = {}
    monkeypatch.setattr("fairlib.book.glue.note", lambda key, value: glued.__setitem__(key, value))
    note_intervals(interval_columns(summary, "gap"), "sim_")
    for kind in KINDS:
        lo, est, hi = (glued[f"sim_{kind}_gap{s}"] for s in ("_lo", "", "_hi"))
        assert lo <= est <= hi and est == summary.loc[kind, "estimate"]
    notes = implied_gap_notes(summary, tables, prefix="sim_", tolerance=0.05)
    row = summary.loc["selection_on_label"]
    assert notes["sim_selection_on_label_metric"] == "equalized odds"
    assert notes["sim_selection_on_label_abs"] == abs(row["estimate"])
    assert notes["sim_selection_on_label_zero"] == ("yes" if row["consistent_with_zero"] else "no")
    bound = max(abs(row["lower"]), abs(row["upper"]))
    assert notes["sim_selection_on_label_bound"] == bound
    assert notes["sim_selection_on_label_below"] == ("yes" if bound < 0.05 else "no")
    assert notes["sim_selection_on_label_naive"] == tables["selection_on_label"].loc[
        (NAIVE, "equalized_odds"), "estimate"]
    assert "sim_measurement_error_bound" not in implied_gap_notes(summary, tables, prefix="sim_")


def test_target_accuracy_is_a_summary_table(small_audits):
    tables, _ = small_audits
    acc = target_accuracy(tables)
    assert list(acc.index) == KINDS
    assert list(dict.fromkeys(acc.columns.get_level_values(0))) == [NAIVE, CF, REF]
    me = tables["measurement_error"].loc[(CF, "target_accuracy")]
    assert acc.loc["measurement_error", (CF, "mean")] == me["estimate"]
    assert acc.loc["measurement_error", (CF, "upper")] == me["upper"]
    assert np.isnan(acc.loc["selection_on_label", (REF, "mean")])
    text = interval_table(acc[[CF]], digits=4).loc["measurement_error", CF]
    assert text.startswith(f"{me['estimate']:.4f} [")


def test_target_auc_matches_roc_auc(small_contexts, small_audits):
    _, scores = small_audits
    ctx = small_contexts["measurement_error"]
    auc = target_auc(ctx, scores["measurement_error"])
    assert set(auc) == {NAIVE, CF, REF}
    from sklearn.metrics import roc_auc_score

    assert auc[CF] == pytest.approx(roc_auc_score(ctx.target.y.numpy(),
                                                  scores["measurement_error"].target[CF].numpy()))


def test_gap_matrix_and_heatmap_grid(small_audits):
    tables, _ = small_audits
    m = gap_matrix(tables, CF)
    assert list(m.index) == KINDS
    assert list(m.columns) == ["demographic_parity", "equalized_odds", "calibration"]
    assert m.loc["selection_on_label", "equalized_odds"] == tables["selection_on_label"].loc[
        (CF, "equalized_odds"), "estimate"]
    fig = plot_audit_heatmaps({"one": tables, "two": tables})
    assert [ax.get_title() for ax in fig.axes] == [f"{row}: {p}" for row in ("one", "two")
                                                   for p in (NAIVE, CF)]
    plt.close(fig)


def test_lose_positives_only_loses_one_groups_positives(small_contexts):
    obs = small_contexts["measurement_error"].observed
    y_true = obs.extras["y_true"]
    out = lose_positives(obs, group=1, rate=0.4, seed=0)
    changed = out.y != y_true
    assert bool(((obs.group == 1) & (y_true == 1))[changed].all())
    assert bool((out.y[changed] == 0).all())
    share = float(changed[(obs.group == 1) & (y_true == 1)].double().mean())
    assert abs(share - 0.4) < 0.03
    assert torch.equal(out.y, lose_positives(obs, group=1, rate=0.4, seed=0).y)
    with pytest.raises(ValueError, match="rate"):
        lose_positives(obs, rate=1.5)
    with pytest.raises(ValueError, match="y_true"):
        lose_positives(small_contexts["selection_on_label"].target)


def test_marginalised_classifier_averages_over_the_attribute():
    gen = np.random.default_rng(0)
    X = np.column_stack([gen.normal(size=500), gen.integers(0, 2, 500)]).astype(float)
    y = ((X[:, 0] + X[:, 1] + gen.normal(size=500)) > 0.5).astype(int)
    m = MarginalisedClassifier(LogisticRegression, 0.3).fit(X, y)
    X1, X0 = X.copy(), X.copy()
    X1[:, 1], X0[:, 1] = 1.0, 0.0
    f = m.model_.predict_proba
    np.testing.assert_allclose(m.predict_proba(X), 0.3 * f(X1) + 0.7 * f(X0))
    np.testing.assert_allclose(m.predict_proba(X1), m.predict_proba(X0))
    assert X[:, 1].max() == 1.0  # the input was not modified


def test_implied_gap_by_size_reruns_the_context_per_size():
    t = implied_gap_by_size("selection_on_predictors", [5000, 20_000], LogisticRegression,
                            n_boot=50, seed=0)
    assert t.index.name == "population size" and list(t.index) == [5000, 20_000]
    ctx = make_causal_context("selection_on_predictors", n=20_000, seed=0)
    direct = vanishing_summary({"selection_on_predictors": audit_context(
        ctx, fit_context_predictors(ctx, LogisticRegression), n_boot=50, seed=0)})
    assert t.loc[20_000, "estimate"] == direct.iloc[0]["estimate"]
    assert t.loc[20_000, "noise_floor"] == direct.iloc[0]["noise_floor"]


def test_group_thresholds_buy_parity_with_calibration(small_contexts):
    ctx = small_contexts["selection_on_predictors"]
    s = fit_context_predictors(ctx, LogisticRegression)
    table, cut = group_threshold_audit(ctx, s.observed[CF], s.target[CF], threshold=0.5)
    assert list(table.index) == ["one threshold", "parity thresholds"]
    obs = ctx.observed
    rep = fm.fairness_report(obs.y, (s.observed[CF] >= 0.5).long(), sensitive_features=obs.group)
    assert table.loc["one threshold", "demographic parity"] == rep.measure(
        "demographic_parity_difference")
    assert table.loc["parity thresholds", "demographic parity"] < 0.01
    assert table.loc["parity thresholds", "PPV gap"] > table.loc["one threshold", "PPV gap"]
    assert cut[0] < 0.5 < cut[1]  # group 1 was selected for high x1
