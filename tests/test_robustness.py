"""fairlib.studies.robustness: (group, label) cells, worst-cell accuracy, agreement and sweep figures."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from fairlib.datasets import make_biased_classification, make_colored_digits  # noqa: E402
from fairlib.experiments import seed_summary  # noqa: E402
from fairlib.plotting import plot_sweep  # noqa: E402
from fairlib.studies.robustness import (  # noqa: E402
    group_label_accuracy,
    label_agreement,
    robust_accuracy,
)
from fairlib.train import MLP, fit  # noqa: E402


class ColourRule(nn.Module):
    """Predicts 1 for green images and 0 for red ones: the Colored Digits shortcut."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10.0 * (x[:, 1].sum((1, 2)) - x[:, 0].sum((1, 2)))


@pytest.fixture(scope="module")
def digits():
    return make_colored_digits(strength=0.8, seed=3)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# -- FairDataset.cell_view (the core's cell API, used throughout this chapter) ----------
def test_view_codes_are_group_times_two_plus_label(digits):
    test = digits.test
    view = test.cell_view()
    assert view.group_name == "color x label"
    assert torch.equal(view.group, 2 * test.group + test.y)
    assert view.group_categories == ("red, y=0", "red, y=1", "green, y=0", "green, y=1")
    counts = pd.crosstab(test.group.numpy(), test.y.numpy()).to_numpy().ravel()
    assert view.summary()["n"].tolist() == counts.tolist()
    # the source is untouched and the features are shared, not copied
    assert test.group_name == "color" and "color x label" not in test.sensitive
    assert view.X is test.X and torch.equal(view.y, test.y)


def test_view_of_another_attribute_and_bad_attribute():
    data = make_biased_classification(200, seed=0)
    view = data.cell_view("group")
    assert view.n_groups == 2 * data.n_groups
    with pytest.raises(ValueError, match="attribute"):
        data.cell_view("nope")


def test_view_as_meta_makes_fit_log_the_worst_cell(digits):
    train, meta, _ = digits
    model = MLP(192, hidden=(16,), seed=0)
    hist = fit(model, train, meta=meta.cell_view(), epochs=2, lr=3e-3, device="cpu",
               progress=False)
    res = robust_accuracy(model, meta, device="cpu")
    assert hist.last("meta_worst_group_accuracy") == pytest.approx(res["worst_group_accuracy"])
    assert hist.last("meta_accuracy") == pytest.approx(res["accuracy"])


# -- group_label_accuracy ------------------------------------------------------------------
def test_cell_accuracy_by_hand():
    y = [0, 0, 1, 1, 0, 1, 1]
    p = [0, 1, 1, 0, 0, 1, 1]
    g = [0, 0, 0, 0, 1, 1, 1]
    out = group_label_accuracy(y, p, g, group_names=["b", "a"])
    # named groups keep the order of the names, not the alphabet
    assert list(out.index) == [("b", 0), ("b", 1), ("a", 0), ("a", 1)]
    assert out["n"].tolist() == [2, 2, 1, 2]
    assert out["accuracy"].tolist() == [0.5, 0.5, 1.0, 1.0]


def test_cell_accuracy_accepts_tensors_and_skips_empty_cells():
    y = torch.tensor([1, 1, 0])
    out = group_label_accuracy(y, torch.tensor([1, 0, 0]), torch.tensor([0, 0, 1]))
    assert list(out.index) == [(0, 1), (1, 0)]  # cells (0, 0) and (1, 1) are empty
    assert out["accuracy"].tolist() == [0.5, 1.0]


def test_cell_accuracy_length_mismatch():
    with pytest.raises(ValueError, match="same length"):
        group_label_accuracy([0, 1], [0, 1, 1], [0, 0])


# -- robust_accuracy -----------------------------------------------------------------------
def test_shortcut_model_is_right_on_average_and_wrong_on_every_minority_image(digits):
    train, _, test = digits
    on_train = robust_accuracy(ColourRule(), train, device="cpu")
    assert on_train["accuracy"] == pytest.approx(label_agreement(train))
    assert on_train["worst_group_accuracy"] == 0.0
    assert on_train["worst_group"] in ("red, y=1", "green, y=0")
    assert on_train["accuracy[red, y=0]"] == on_train["accuracy[green, y=1]"] == 1.0
    assert on_train["accuracy[red, y=1]"] == on_train["accuracy[green, y=0]"] == 0.0
    on_test = robust_accuracy(ColourRule(), test, device="cpu")
    assert on_test["accuracy"] == pytest.approx(label_agreement(test))


def test_worst_cell_is_at_most_the_worst_group_and_the_average(digits):
    train, _, test = digits
    model = MLP(192, hidden=(16,), seed=1)
    fit(model, train, epochs=2, lr=3e-3, device="cpu", progress=False)
    res = robust_accuracy(model, test, device="cpu")
    cells = [v for k, v in res.items() if k.startswith("accuracy[")]
    assert len(cells) == 4 and res["worst_group_accuracy"] == min(cells)
    pred = (torch.sigmoid(model(test.X)) >= 0.5).long()
    per_colour = [float((pred[test.group == c] == test.y[test.group == c]).double().mean())
                  for c in (0, 1)]
    assert res["worst_group_accuracy"] <= min(per_colour) <= res["accuracy"] + 1e-12


def test_threshold_moves_predictions(digits):
    test = digits.test
    everything_positive = robust_accuracy(ColourRule(), test, threshold=0.0, device="cpu")
    assert everything_positive["accuracy"] == pytest.approx(float(test.y.double().mean()))
    assert everything_positive["accuracy[red, y=0]"] == 0.0


# -- label_agreement -----------------------------------------------------------------------
@pytest.mark.parametrize("strength", [0.5, 0.75, 0.95])
def test_agreement_is_the_requested_strength(strength):
    train, meta, _ = make_colored_digits(strength=strength, meta_strength=0.6, seed=1)
    assert label_agreement(train) == pytest.approx(strength, abs=2e-3)
    assert label_agreement(meta) == pytest.approx(0.6, abs=5e-3)


def test_agreement_needs_a_binary_attribute(digits):
    view = digits.test.cell_view()
    with pytest.raises(ValueError, match="binary attribute"):
        label_agreement(view)


# -- plot_sweep ----------------------------------------------------------------------------
@pytest.fixture()
def sweep_summary():
    runs = pd.DataFrame({
        "seed": [0, 1] * 6,
        "method": ["a"] * 6 + ["b"] * 6,
        "strength": [0.9, 0.9, 0.5, 0.5, 0.7, 0.7] * 2,
        "acc": [0.6, 0.8, 0.9, 0.9, 0.7, 0.9, 0.8, 0.8, 0.9, 0.8, 0.85, 0.85],
        "wga": np.linspace(0.1, 0.9, 12),
    })
    return seed_summary(runs, ["acc", "wga"], by=["method", "strength"])


def test_sweep_plot_draws_sorted_means_with_bands(sweep_summary):
    axes = plot_sweep(sweep_summary, x="strength", metrics=["acc", "wga"],
                      labels={"acc": "average"})
    assert len(axes) == 2 and axes[0].get_title() == "average" and axes[1].get_title() == "wga"
    lines = axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["a", "b"]
    assert lines[0].get_xdata().tolist() == [0.5, 0.7, 0.9]  # sorted along x
    assert np.allclose(lines[0].get_ydata(), [0.9, 0.8, 0.7])
    assert len(axes[0].collections) == 2  # one band per method
    assert axes[1].get_legend() is not None


def test_sweep_plot_on_given_axes_and_errors(sweep_summary):
    fig, (ax1, ax2) = plt.subplots(1, 2)
    out = plot_sweep(sweep_summary, x="strength", metrics=["acc", "wga"], axes=[ax1, ax2],
                     ylim=(0, 1))
    assert out[0] is ax1 and out[1] is ax2
    assert ax1.get_ylim() == ax2.get_ylim() == (0, 1)
    with pytest.raises(ValueError, match="axes"):
        plot_sweep(sweep_summary, x="strength", metrics=["acc"], axes=[ax1, ax2])
    with pytest.raises(ValueError, match="metrics"):
        plot_sweep(sweep_summary, x="strength", metrics=["nope"])
    with pytest.raises(ValueError, match="summary"):
        plot_sweep(sweep_summary, x="weight_decay", metrics=["acc"])


def test_sweep_plot_log_x_keeps_zero_on_the_axis_and_labels_it():
    runs = pd.DataFrame({"seed": [0, 1] * 3, "method": ["a"] * 6,
                         "weight_decay": [0.0, 0.0, 1e-3, 1e-3, 1e-1, 1e-1], "acc": np.linspace(0.5, 0.9, 6)})
    summary = seed_summary(runs, ["acc"], by=["method", "weight_decay"])
    (ax,) = plot_sweep(summary, x="weight_decay", metrics=["acc"], log_x=True, xlabel="weight decay")
    assert ax.get_xscale() == "symlog" and ax.get_xlabel() == "weight decay"
    assert ax.get_xlim()[0] < 0 < 1e-3 and ax.get_xlim()[1] > 1e-1
    (lin,) = plot_sweep(summary, x="weight_decay", metrics=["acc"])
    assert lin.get_xscale() == "linear" and lin.get_xlabel() == "weight decay"
    plt.close("all")


def test_chapter_grid_gives_every_method_every_weight_decay_and_refuses_unknown_names():
    from collections import Counter

    from fairlib.studies.robustness import METHODS, chapter_spec, tuning_grid

    specs = tuning_grid(weight_decays=[0.0, 0.01, 0.1], strength=0.8, model="cnn")
    assert Counter(s.method for s in specs) == {m: 3 for m in METHODS}
    assert {s.model for s in specs} == {"cnn"} and {dict(s.dataset_params)["strength"] for s in specs} == {0.8}
    with pytest.raises(ValueError, match="`method` to be one of"):
        chapter_spec("FORML", weight_decay=0.0, strength=0.9)
    with pytest.raises(ValueError, match="`model` to be 'mlp' or 'cnn'"):
        chapter_spec("ERM", weight_decay=0.0, strength=0.9, model="resnet")


def test_shortcut_rule_is_perfect_on_agreeing_cells_and_wrong_on_the_others():
    from fairlib.datasets import make_colored_digits
    from fairlib.studies.robustness import shortcut_rule

    train, _, test = make_colored_digits(strength=0.9, seed=1)
    table = shortcut_rule({"train": train, "test": test})
    assert table.loc["average accuracy", "train"] == pytest.approx(float((train.group == train.y).double().mean()))
    assert table.loc["worst (colour, label) accuracy"].tolist() == [0.0, 0.0]
    assert 0.4 < table.loc["average accuracy", "test"] < 0.6
