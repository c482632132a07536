"""fairlib.plotting: what is drawn, where, and how missing values and intervals are handled."""

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from fairlib.metrics import UndefinedMetricWarning, fairness_report  # noqa: E402
from fairlib.plotting import (  # noqa: E402
    calibration_by_group,
    group_label,
    plot_calibration,
    plot_group_rates,
    plot_parity_measures,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _data(seed=0, n=400):
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    y = rng.integers(0, 2, n)
    p = rng.integers(0, 2, n)
    return y, p, g


def _by_gid(ax, kind, prefix):
    items = ax.get_lines() if kind == "line" else ax.collections
    return {a.get_gid(): a for a in items if (a.get_gid() or "").startswith(prefix)}


def _segments(coll: LineCollection):
    return [np.asarray(s) for s in coll.get_segments()]


def test_group_rates_from_bootstrap_draws_every_point_and_interval():
    y, p, g = _data()
    boot = fairness_report(y, p, sensitive_features=g).bootstrap(100, seed=0)
    rates = ["selection_rate", "false_positive_rate"]
    ax = plot_group_rates(boot, rates)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    n = boot.report.by_group["n"]
    assert labels == [f"{k} (n={n[k]})" for k in ["a", "b", "c"]] + ["overall"]
    points = _by_gid(ax, "line", "estimate:")
    intervals = _by_gid(ax, "collection", "interval:")
    assert set(points) == {f"estimate:{r}" for r in rates}
    assert set(intervals) == {f"interval:{r}" for r in rates}
    for r in rates:
        frame = boot.by_group(r)
        np.testing.assert_allclose(points[f"estimate:{r}"].get_xdata(), frame["estimate"])
        segs = _segments(intervals[f"interval:{r}"])
        assert len(segs) == 4  # three groups and overall
        np.testing.assert_allclose([s[0, 0] for s in segs], frame["lower"])
        np.testing.assert_allclose([s[1, 0] for s in segs], frame["upper"])
        # each interval sits on the row of its own point
        np.testing.assert_allclose([s[0, 1] for s in segs], points[f"estimate:{r}"].get_ydata())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["selection rate", "FPR"]


def test_group_rates_rows_follow_group_order_and_dodge_within_a_row():
    y, p, g = _data()
    boot = fairness_report(y, p, sensitive_features=g).bootstrap(50, seed=1)
    ax = plot_group_rates(boot, ["selection_rate", "true_positive_rate", "accuracy"])
    ys = [_by_gid(ax, "line", "estimate:")[f"estimate:{r}"].get_ydata()
          for r in ["selection_rate", "true_positive_rate", "accuracy"]]
    ys = np.array(ys)
    assert np.all(np.diff(ys, axis=0) > 0)  # rates dodged within each row
    assert np.all(np.abs(ys - np.arange(4)) < 0.5)  # and stay inside it
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # first group on top


def test_group_rates_from_report_has_points_but_no_intervals():
    y, p, g = _data()
    rep = fairness_report(y, p, sensitive_features=g)
    ax = plot_group_rates(rep, ["true_positive_rate"])
    assert _by_gid(ax, "collection", "interval:") == {}
    line = _by_gid(ax, "line", "estimate:")["estimate:true_positive_rate"]
    expected = list(rep.by_group["true_positive_rate"]) + [rep.overall["true_positive_rate"]]
    np.testing.assert_allclose(line.get_xdata(), expected)
    assert ax.get_title() == "TPR"
    assert ax.get_xlabel() == "rate"


def test_undefined_group_keeps_its_row_without_point_or_interval():
    # group "b" has only positives: its FPR is undefined (NaN).
    y = np.array([0, 1, 0, 1, 1, 1, 1, 0, 1, 0])
    p = np.array([1, 1, 0, 0, 1, 0, 1, 1, 0, 0])
    g = np.array(list("aaaabbbccc"))
    with pytest.warns(UndefinedMetricWarning, match="false_positive_rate.*'b'"):
        rep = fairness_report(y, p, sensitive_features=g)
    boot = rep.bootstrap(200, seed=0)
    ax = plot_group_rates(boot, ["false_positive_rate", "selection_rate"], show_n=False)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c", "overall"]
    fpr = _by_gid(ax, "line", "estimate:")["estimate:false_positive_rate"]
    assert len(fpr.get_xdata()) == 3  # a, c, overall
    segs = _segments(_by_gid(ax, "collection", "interval:")["interval:false_positive_rate"])
    assert len(segs) == 3
    assert all(abs(s[0, 1] - 1) >= 0.5 for s in segs)  # nothing on row "b"
    texts = [t for t in ax.texts if t.get_gid() == "undefined:false_positive_rate"]
    assert len(texts) == 1 and "undefined" in texts[0].get_text()
    assert abs(texts[0].get_position()[1] - 1) < 0.5
    # selection rate is defined everywhere: four points, four intervals
    assert len(_by_gid(ax, "line", "estimate:")["estimate:selection_rate"].get_xdata()) == 4


def test_group_rates_from_frames_draw_intervals_only_where_given():
    frames = {
        "my_rate": pd.DataFrame(
            {"estimate": [0.2, 0.5, np.nan, 0.4], "lower": [0.1, np.nan, np.nan, 0.3],
             "upper": [0.3, np.nan, np.nan, 0.5]},
            index=["x", "y", "z", "overall"],
        )
    }
    ax = plot_group_rates(frames, show_n=True)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "y", "z", "overall"]
    segs = _segments(_by_gid(ax, "collection", "interval:")["interval:my_rate"])
    assert [(s[0, 0], s[1, 0]) for s in segs] == [(0.1, 0.3), (0.3, 0.5)]
    assert len(_by_gid(ax, "line", "estimate:")["estimate:my_rate"].get_xdata()) == 3
    assert sum(t.get_gid() == "undefined:my_rate" for t in ax.texts) == 1


def test_group_rates_intersectional_labels_and_no_overall_row():
    y, p, g = _data(n=600)
    sex = np.where(np.arange(600) % 3 == 0, "F", "M")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        rep = fairness_report(y, p, sensitive_features=pd.DataFrame({"g": g, "sex": sex}))
    ax = plot_group_rates(rep.bootstrap(30, seed=0), ["selection_rate"], overall=False,
                          show_n=False)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [f"{a} & {s}" for a in "abc" for s in "FM"]
    segs = _segments(_by_gid(ax, "collection", "interval:")["interval:selection_rate"])
    assert len(segs) == 6
    ax = plot_group_rates(rep, ["selection_rate"])
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == f"a & F (n={rep.by_group['n'].iloc[0]})" and labels[-1] == "overall"
    assert len(_by_gid(ax, "line", "estimate:")["estimate:selection_rate"].get_xdata()) == 7


def test_group_rates_uses_given_axes():
    y, p, g = _data()
    fig, (ax1, ax2) = plt.subplots(1, 2)
    out = plot_group_rates(fairness_report(y, p, sensitive_features=g), ax=ax2)
    assert out is ax2 and not ax1.get_lines()


@pytest.mark.parametrize(
    ("data", "rates", "err", "match"),
    [
        ("not a result", None, TypeError, "Expected `data` to be a BootstrapResult"),
        ({"r": [1, 2]}, None, TypeError, "'estimate' column"),
        (None, ["selection_rate", "nope"], ValueError, r"`rates`.*\['nope'\]"),
        (None, "selection_rate", ValueError, "non-empty list"),
    ],
)
def test_group_rates_errors(data, rates, err, match):
    if data is None:
        y, p, g = _data()
        data = fairness_report(y, p, sensitive_features=g)
    with pytest.raises(err, match=match):
        plot_group_rates(data, rates)


def test_group_rates_frames_must_share_groups():
    frames = {"r1": pd.DataFrame({"estimate": [0.1]}, index=["a"]),
              "r2": pd.DataFrame({"estimate": [0.1]}, index=["b"])}
    with pytest.raises(ValueError, match="same groups"):
        plot_group_rates(frames)


def test_group_rates_rejects_non_axes():
    y, p, g = _data()
    with pytest.raises(TypeError, match="`ax`"):
        plot_group_rates(fairness_report(y, p, sensitive_features=g), ax="left")


def test_parity_measures_match_report_and_intervals():
    y, p, g = _data()
    boot = fairness_report(y, p, sensitive_features=g).bootstrap(200, seed=0)
    ax = plot_parity_measures(boot)
    names = ["demographic_parity_difference", "equal_opportunity_difference",
             "equalized_odds_difference", "predictive_parity_difference"]
    assert [t.get_text() for t in ax.get_yticklabels()] == [m.replace("_", " ") for m in names]
    (line,) = _by_gid(ax, "line", "estimate:").values()
    np.testing.assert_allclose(line.get_xdata(), [boot.report.measure(m) for m in names])
    segs = _segments(_by_gid(ax, "collection", "interval:")["interval:None"])
    np.testing.assert_allclose([(s[0, 0], s[1, 0]) for s in segs],
                               [boot.interval(m) for m in names])
    (ref,) = _by_gid(ax, "line", "parity").values()
    assert ref.get_xdata()[0] == 0.0
    assert ax.get_legend() is None


def test_parity_measures_ratios_method_and_several_results():
    y, p, g = _data()
    b1 = fairness_report(y, p, sensitive_features=g).bootstrap(50, seed=0)
    b2 = fairness_report(y, 1 - p, sensitive_features=g).bootstrap(50, seed=0)
    ratios = ["demographic_parity_ratio", "equalized_odds_ratio"]
    ax = plot_parity_measures({"model 1": b1, "model 2": b2}, ratios, method="to_overall",
                              agg="mean")
    points = _by_gid(ax, "line", "estimate:")
    assert set(points) == {"estimate:model 1", "estimate:model 2"}
    np.testing.assert_allclose(points["estimate:model 2"].get_xdata(),
                               [b2.report.measure(m, "to_overall", "mean") for m in ratios])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["model 1", "model 2"]
    (ref,) = _by_gid(ax, "line", "parity").values()
    assert ref.get_xdata()[0] == 1.0
    assert ax.get_xlabel() == "value (to overall)"
    # a mix of differences and ratios has no single parity line
    ax2 = plot_parity_measures(b1, ["demographic_parity_difference", "demographic_parity_ratio"])
    assert _by_gid(ax2, "line", "parity") == {}


def test_parity_measures_from_summary_frame_selects_method():
    y, p, g = _data()
    boot = fairness_report(y, p, sensitive_features=g).bootstrap(50, seed=0)
    summary = boot.summary()
    ax = plot_parity_measures(summary, ["accuracy_difference"], method="to_overall")
    (line,) = _by_gid(ax, "line", "estimate:").values()
    expected = summary.loc[("accuracy_difference", "to_overall"), "estimate"]
    np.testing.assert_allclose(line.get_xdata(), [expected])
    with pytest.raises(ValueError, match="lacks"):
        plot_parity_measures(summary.xs("between_groups", level="method").iloc[:2])
    with pytest.raises(ValueError, match="`measures`"):
        plot_parity_measures(boot, ["demographic_parity"])
    with pytest.raises(ValueError, match="empty mapping"):
        plot_parity_measures({})


def test_calibration_by_group_is_the_metrics_one():
    import fairlib.metrics

    assert calibration_by_group is fairlib.metrics.calibration_by_group


def test_plot_calibration_one_line_per_group_with_intervals():
    rng = np.random.default_rng(4)
    n = 600
    score = rng.integers(1, 6, n)
    g = rng.choice(["u", "v", "w"], n)
    y = (rng.random(n) < score / 6).astype(int)
    cal = calibration_by_group(y, score, sensitive_features=g, n_boot=100)
    ax = plot_calibration(cal, diagonal=True)
    lines = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    assert [ln.get_label() for ln in lines] == ["u", "v", "w"]
    for ln, grp in zip(lines, ["u", "v", "w"], strict=True):
        sub = cal[cal["group"] == grp]
        np.testing.assert_allclose(ln.get_ydata(), sub["estimate"])
        # dodged a little, never onto a neighbouring score
        assert np.all(np.abs(ln.get_xdata() - sub["mean_score"].to_numpy()) < 0.5)
        segs = _segments(_by_gid(ax, "collection", "interval:")[f"interval:{grp}"])
        assert len(segs) == len(sub)
        np.testing.assert_allclose([s[0, 1] for s in segs], sub["lower"])
    assert any(ln.get_label() == "_diagonal" for ln in ax.get_lines())
    with pytest.raises(TypeError, match="calibration_by_group"):
        plot_calibration(cal.drop(columns="lower"))


def test_group_label():
    assert group_label(("a", 1)) == "a & 1"
    assert group_label(3) == "3"


def test_cell_images_draw_one_labelled_row_per_cell_and_refuse_tabular_data():
    from fairlib.datasets import make_biased_classification, make_colored_digits
    from fairlib.plotting import plot_cell_images

    train = make_colored_digits(strength=0.9, seed=0).train
    axes = plot_cell_images(train, per_cell=3)
    sizes = train.cell_view().summary()["n"]
    assert axes.shape == (4, 3)
    assert [ax.get_ylabel() for ax in axes[:, 0]] == [f"{c}\n(n={int(sizes[c])})" for c in train.cell_names]
    assert axes[0, 0].get_title() == str(int(train.extras["digit"][train.cells == 0][0]))
    with pytest.raises(ValueError, match="`data` to be a FairDataset of images"):
        plot_cell_images(make_biased_classification(50, seed=0))
    with pytest.raises(ValueError, match="`title` to name one of the extras"):
        plot_cell_images(train, title="extras.nothing")
    plt.close("all")
