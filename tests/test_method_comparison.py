"""fairlib.method_comparison: paired differences over seeds and the accuracy-fairness figure."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from fairlib.experiments import seed_summary  # noqa: E402
from fairlib.method_comparison import paired_differences, plot_accuracy_fairness  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _runs(n_seeds=6, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_seeds):
        shift = rng.normal()
        for m, offset in [("ERM", 0.0), ("A", -0.1), ("B", 0.05)]:
            rows.append({"method": m, "seed": s,
                         "gap": 0.3 + offset + 0.05 * shift + 0.01 * rng.normal(),
                         "acc": 0.8 - offset / 10 + 0.01 * rng.normal()})
    return pd.DataFrame(rows)


def test_matches_scipy_paired_t_interval():
    runs = _runs()
    out = paired_differences(runs, ["gap", "acc"], baseline="ERM", level=0.9)
    assert list(out.index) == ["A", "B"]
    for m in ["A", "B"]:
        a = runs[runs.method == m].set_index("seed")["gap"]
        b = runs[runs.method == "ERM"].set_index("seed")["gap"]
        ci = stats.ttest_rel(a, b).confidence_interval(0.9)
        assert out.loc[m, ("gap", "difference")] == pytest.approx(float((a - b).mean()))
        assert out.loc[m, ("gap", "lower")] == pytest.approx(ci.low)
        assert out.loc[m, ("gap", "upper")] == pytest.approx(ci.high)
        assert out.loc[m, ("gap", "relative")] == pytest.approx(a.mean() / b.mean() - 1)
        assert out.loc[m, ("gap", "n")] == 6


def test_pairs_by_seed_not_by_row_order_and_skips_unpaired_seeds():
    runs = _runs()
    shuffled = runs.sample(frac=1.0, random_state=1)
    expected = paired_differences(runs, ["gap"], baseline="ERM")
    got = paired_differences(shuffled, ["gap"], baseline="ERM").loc[["A", "B"]]
    pd.testing.assert_frame_equal(expected, got)
    partial = runs[~((runs.method == "A") & (runs.seed == 0))]
    out = paired_differences(partial, ["gap"], baseline="ERM")
    assert out.loc["A", ("gap", "n")] == 5
    assert out.loc["B", ("gap", "n")] == 6


def test_single_pair_has_nan_interval():
    runs = _runs(1)
    out = paired_differences(runs, ["gap"], baseline="ERM")
    assert np.isnan(out.loc["A", ("gap", "lower")]) and np.isnan(out.loc["A", ("gap", "upper")])
    assert not np.isnan(out.loc["A", ("gap", "difference")])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"baseline": "nope"}, ValueError,
         "Expected `baseline` to be a value of column 'method'"),
        ({"metrics": "gap"}, ValueError, "Expected `metrics` to be a non-empty list"),
        ({"metrics": ["missing"]}, ValueError,
         r"Expected `frame` to be a DataFrame with the columns \['missing'\]"),
        ({"level": 1.0}, ValueError, r"Expected `level` to be in \(0, 1\)"),
    ],
)
def test_paired_errors(kwargs, error, match):
    args = {"metrics": ["gap"], "baseline": "ERM"}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        paired_differences(_runs(), args.pop("metrics"), **args)


def test_paired_rejects_duplicates_and_non_frames():
    runs = _runs()
    with pytest.raises(ValueError, match=r"one row per \(method, seed\)"):
        paired_differences(pd.concat([runs, runs]), ["gap"], baseline="ERM")
    with pytest.raises(TypeError, match="Expected `frame` to be a pandas DataFrame"):
        paired_differences(runs.to_dict(), ["gap"], baseline="ERM")


def test_plot_points_and_intervals():
    summary = seed_summary(_runs(), ["acc", "gap"])
    ax = plot_accuracy_fairness(summary, fairness="gap", accuracy="acc", highlight=["A"])
    assert len(ax.containers) == 3
    for container, method in zip(ax.containers, summary.index):
        line = container.lines[0]
        assert line.get_xdata()[0] == pytest.approx(summary.loc[method, ("gap", "mean")])
        assert line.get_ydata()[0] == pytest.approx(summary.loc[method, ("acc", "mean")])
    texts = {t.get_text(): t.get_fontweight() for t in ax.get_legend().get_texts()}
    assert texts["A"] == "bold" and texts["ERM"] == "normal"


def test_plot_errors():
    summary = seed_summary(_runs(), ["acc", "gap"])
    with pytest.raises(TypeError, match="Expected `summary` to be a DataFrame from seed_summary"):
        plot_accuracy_fairness(_runs())
    with pytest.raises(ValueError, match="Expected `summary` to be a column"):
        plot_accuracy_fairness(summary)  # default metric names are not in this summary
    with pytest.raises(TypeError, match="Expected `ax` to be a matplotlib Axes"):
        plot_accuracy_fairness(summary, fairness="gap", accuracy="acc", ax=1)
