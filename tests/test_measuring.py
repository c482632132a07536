"""fairlib.studies.measuring: chapter 1's audits of a decile score (intervals, calibration,
Chouldechova's identity, thresholds, the cost of reweighing, fairlearn side by side)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import fairlib.metrics as fm  # noqa: E402
from fairlib.book import note_intervals  # noqa: E402
from fairlib.studies.measuring import (  # noqa: E402
    CHAPTER,
    calibration_by_decile,
    calibration_gap_bootstrap,
    chouldechova_table,
    decile_calibration_gap,
    error_rate_gap,
    fairlearn_parity_check,
    fairlearn_rate_check,
    implied_fpr,
    interval_frame,
    kamiran_calders_weights,
    largest_decile_difference,
    measure_intervals,
    plot_error_tradeoff,
    plot_identity,
    rate_intervals,
    rate_notes,
    reweighing_cost,
    score_balance,
    threshold_sweep,
)


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    """A decile score that is calibrated within groups by construction, with unequal base rates."""
    gen = np.random.default_rng(0)
    n = 4000
    group = np.where(gen.random(n) < 0.6, "A", "B")
    # group A gets higher deciles: its base rate is higher
    decile = np.clip(gen.integers(1, 11, n) + np.where(group == "A", 1, -1), 1, 10)
    sex = np.where(gen.random(n) < 0.3, "F", "M")
    y = (gen.random(n) < decile / 11).astype(np.int64)
    return pd.DataFrame({"y": y, "decile": decile, "group": pd.Categorical(group), "sex": sex})


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _tensors(people):
    return torch.tensor(people["y"].to_numpy()), torch.tensor(people["decile"].to_numpy())


def test_the_module_names_its_chapter_and_has_no_tuning_grid():
    import fairlib.studies.measuring as m

    assert CHAPTER == "01_measuring_fairness"
    assert not hasattr(m, "tuning_grid")
    assert "Written for chapter 1" in m.__doc__


def test_rate_notes_names_every_rate_of_every_group():
    t = pd.DataFrame({"fpr": [0.4, 0.2], "ppv": [0.6, 0.5]}, index=["x", "y"])
    notes = rate_notes(t, {"a": "x", "b": "y"}, {"f": "fpr", "p": "ppv"})
    assert notes == {"f_a": 0.4, "p_a": 0.6, "f_b": 0.2, "p_b": 0.5}


def test_interval_frame_glues_with_note_intervals(monkeypatch):
    glued = {}
    monkeypatch.setattr("fairlib.book.glue.note", lambda key, value: glued.__setitem__(key, value))
    keys = note_intervals(interval_frame({"ex2": (0.04, 0.035, 0.08), "dp": (0.2, 0.1, 0.3)},
                                         "gap"))
    assert keys == ["ex2_gap", "ex2_gap_lo", "ex2_gap_hi", "dp_gap", "dp_gap_lo", "dp_gap_hi"]
    assert glued["ex2_gap_lo"] == 0.035 and glued["dp_gap"] == 0.2


def test_measure_intervals_match_the_report_and_contain_their_estimates(people):
    y, d = _tensors(people)
    rep = fm.fairness_report(y, (d >= 5).long(), sensitive_features=people["group"])
    boot = rep.bootstrap(200, seed=1)
    names = {"dp": "demographic_parity_difference", "eodds": "equalized_odds_difference"}
    frame = measure_intervals(boot, names, "pair")
    for short, name in names.items():
        est, lo, hi = frame.loc[short, [("pair", "mean"), ("pair", "lower"), ("pair", "upper")]]
        assert est == rep.measure(name)
        assert lo <= est <= hi
        b_lo, b_hi = boot.interval(name)
        assert lo == min(b_lo, est) and hi == max(b_hi, est)
    with pytest.raises(TypeError, match="boot"):
        measure_intervals(rep, names, "pair")


def test_rate_intervals_give_width_per_group(people):
    y, d = _tensors(people)
    rep = fm.fairness_report(y, (d >= 5).long(), sensitive_features=people["group"])
    boot = rep.bootstrap(100, seed=0)
    table = rate_intervals(boot, "false_positive_rate", "FPR")
    assert list(table.index) == list(rep.by_group.index)
    assert (table["n"] == rep.by_group["n"]).all()
    np.testing.assert_allclose(table["FPR"], rep.by_group["false_positive_rate"])
    np.testing.assert_allclose(table["FPR interval width"], table["FPR upper"] - table["FPR lower"])
    assert (table["FPR interval width"] >= 0).all()


def test_decile_calibration_gap_bins_one_decile_each(people):
    y, d = _tensors(people)
    gap = decile_calibration_gap(y, d, sensitive_features=people["group"])
    rates = people.groupby(["decile", "group"], observed=True)["y"].mean().unstack()
    expected = (rates["A"] - rates["B"]).abs().mean()
    assert gap == pytest.approx(expected, abs=1e-12)
    assert gap < 0.1  # calibrated by construction: only noise


def test_calibration_by_decile_and_its_largest_difference(people):
    y, d = _tensors(people)
    cal = fm.calibration_by_group(y, d, sensitive_features=people["group"], n_boot=100)
    table = calibration_by_decile(cal)
    assert list(table.index) == list(range(1, 11))
    assert set(table.columns.get_level_values(0)) == {"n", "estimate", "lower", "upper"}
    diff, decile, overlap = largest_decile_difference(table, "A", "B")
    gaps = (table["estimate"]["A"] - table["estimate"]["B"]).abs()
    assert diff == gaps.max() and decile == gaps.idxmax() and isinstance(overlap, bool)


def test_calibration_gap_bootstrap_is_seeded_and_its_null_is_noise(people):
    y, d = _tensors(people)
    gaps, null = calibration_gap_bootstrap(y, d, people["group"].to_numpy(), n_boot=30, seed=3)
    again, null_again = calibration_gap_bootstrap(y, d, people["group"].to_numpy(), n_boot=30,
                                                  seed=3)
    assert gaps.shape == null.shape == (30,)
    np.testing.assert_array_equal(gaps, again)
    np.testing.assert_array_equal(null, null_again)
    assert (gaps >= 0).all() and (null >= 0).all()
    observed = decile_calibration_gap(y, d, sensitive_features=people["group"])
    assert np.quantile(gaps, 0.01) <= observed * 1.5
    with pytest.raises(ValueError, match="n_boot"):
        calibration_gap_bootstrap(y, d, people["group"].to_numpy(), n_boot=0)


def test_chouldechova_identity_holds_in_every_group(people):
    y, d = _tensors(people)
    rep = fm.fairness_report(y, (d >= 5).long(), sensitive_features=people["group"])
    t = chouldechova_table(rep)
    np.testing.assert_allclose(t["FPR from identity"], t["FPR measured"], atol=1e-12)
    o = rep.overall
    np.testing.assert_allclose(
        t["FPR if PPV, FNR were shared"],
        implied_fpr(t["base rate p"], o["positive_predictive_value"], o["false_negative_rate"]))
    # With the overall PPV and FNR, the forced FPRs are in the ratio of the base-rate odds.
    forced, odds = t["FPR if PPV, FNR were shared"], t["odds p/(1-p)"]
    assert forced["A"] / forced["B"] == pytest.approx(odds["A"] / odds["B"])
    with pytest.raises(TypeError, match="report"):
        chouldechova_table(rep.by_group)


def test_plot_identity_labels_every_group(people):
    y, d = _tensors(people)
    rep = fm.fairness_report(y, (d >= 5).long(), sensitive_features=people["group"])
    ax = plot_identity(rep)
    assert sorted(t.get_text() for t in ax.texts) == ["A", "B"]
    assert ax.get_ylim() == (0.0, 1.0)


def test_score_balance_uses_pooled_decile_rates(people):
    means = score_balance(people, label="y", score="decile", group="group")
    assert list(means.columns) == ["mean score if not charged again", "mean score if charged again"]
    prob = people["decile"].map(people.groupby("decile")["y"].mean())
    a_pos = prob[(people["group"] == "A") & (people["y"] == 1)].mean()
    assert means.loc["A", "mean score if charged again"] == pytest.approx(a_pos)
    # Calibrated scores with different base rates cannot be balanced (Kleinberg et al.).
    assert means.loc["A"].gt(means.loc["B"]).all()


def test_threshold_sweep_and_error_rate_gaps(people):
    y, d = _tensors(people)
    sweep = threshold_sweep(y, d, people["group"], range(2, 11))
    assert len(sweep) == 2 * 9
    rep = fm.fairness_report(y, (d >= 7).long(), sensitive_features=people["group"])
    row = sweep[(sweep["threshold"] == 7) & (sweep["group"] == "A")].iloc[0]
    assert row["FPR"] == rep.by_group.loc["A", "false_positive_rate"]
    assert row["selection rate"] == rep.by_group.loc["A", "selection_rate"]
    shared = error_rate_gap(sweep, "A", "B")
    at7 = max(abs(rep.by_group["false_positive_rate"].diff().iloc[-1]),
              abs(rep.by_group["false_negative_rate"].diff().iloc[-1]))
    assert shared[7] == pytest.approx(at7)
    # One threshold per group can only do better than one shared threshold at B's value.
    per_group = error_rate_gap(sweep, "A", "B", threshold_b=5)
    assert per_group.min() <= shared[5]
    ax = plot_error_tradeoff(sweep)
    assert len(ax.get_lines()) == 2 and len(ax.texts) == len(sweep)


def test_kamiran_calders_weights_make_group_and_label_independent(people):
    w = kamiran_calders_weights(people, ["group", "sex"], "y")
    assert w.shape == (len(people),) and w.dtype == np.float64 and w.flags.writeable
    frame = people.assign(w=w)
    cells = frame.groupby(["group", "sex", "y"], observed=True)["w"].sum().unstack()
    rate = cells[1] / cells.sum(axis=1)
    np.testing.assert_allclose(rate, people["y"].mean())
    assert w.sum() == pytest.approx(len(people))


def test_reweighing_cost_compares_widths_and_effective_sizes(people):
    y, d = _tensors(people)
    pred = (d >= 5).long()
    groups = people[["group", "sex"]]
    w = kamiran_calders_weights(people, ["group", "sex"], "y")
    boot = fm.fairness_report(y, pred, sensitive_features=groups).bootstrap(100, seed=0)
    boot_w = fm.fairness_report(y, pred, sensitive_features=groups,
                                sample_weight=w).bootstrap(100, seed=0)
    cost = reweighing_cost(boot_w, boot)
    assert list(cost.columns) == ["n", "effective_n", "FPR width", "FPR width, reweighed",
                                  "selection-rate width", "selection-rate width, reweighed",
                                  "effective_n / n"]
    assert (cost["effective_n / n"] <= 1 + 1e-12).all() and (cost["effective_n / n"] > 0).all()
    np.testing.assert_allclose(
        cost["FPR width"], rate_intervals(boot, "false_positive_rate", "x")["x interval width"])


def test_fairlib_agrees_with_fairlearn(people):
    y, d = _tensors(people)
    pred = (d >= 5).long()
    side = fairlearn_parity_check(y, pred, {"group": people["group"],
                                            "group x sex": people[["group", "sex"]]})
    assert len(side) == 2 * 3 * 2 * 2
    assert side["abs. difference"].max() < 1e-9
    check = fairlearn_rate_check(y, pred, people[["group", "sex"]])
    assert set(check.columns.get_level_values(0)) == {"fairlib", "fairlearn", "abs. difference"}
    assert len(check) == 4 and check["abs. difference"].to_numpy().max() < 1e-9
