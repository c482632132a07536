"""fairlib.studies.weight_trajectories: cell summaries of per-sample weight histories."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fairlib.datasets import make_biased_classification  # noqa: E402
from fairlib.train import LogisticRegression, fit  # noqa: E402
from fairlib.studies.weight_trajectories import (  # noqa: E402
    cell_weight_trajectories,
    plot_weight_trajectories,
    reweighing_cell_factors,
)
from fairlib.weighting import FORML, reweighing_weights  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _cells(n=60, seed=0):
    gen = torch.Generator().manual_seed(seed)
    group = torch.randint(0, 3, (n,), generator=gen)
    y = torch.randint(0, 2, (n,), generator=gen)
    return group, y


def test_hand_computed_cells():
    group, y = torch.tensor([0, 0, 0, 1, 1]), torch.tensor([0, 0, 1, 1, 1])
    w = torch.tensor([2.0, 0.0, 4.0, 1.0, 3.0])
    frame = cell_weight_trajectories([w], group, y, group_names=["a", "b"],
                                     relative=False)
    out = frame.set_index("cell")
    assert list(out.index) == ["a, y=0", "a, y=1", "b, y=1"]  # empty cell (b, 0) is left out
    assert out["n"].tolist() == [2, 1, 2]
    assert out["mean_weight"].tolist() == pytest.approx([1.0, 4.0, 2.0])
    assert out["weight_share"].tolist() == pytest.approx([0.2, 0.4, 0.4])
    assert out["zero_share"].tolist() == pytest.approx([0.5, 0.0, 0.0])
    assert (out["epoch"] == 1).all()


def test_relative_divides_by_the_mean_and_keeps_shares():
    group, y = _cells()
    w = torch.rand(len(y), generator=torch.Generator().manual_seed(1)) * 5
    rel = cell_weight_trajectories([w], group, y)
    raw = cell_weight_trajectories([w], group, y, relative=False)
    expected = raw["mean_weight"].to_numpy() / float(w.mean())
    assert rel["mean_weight"].to_numpy() == pytest.approx(expected)
    assert rel["weight_share"].to_numpy() == pytest.approx(raw["weight_share"].to_numpy())
    # the n-weighted mean of the relative cell means is the overall mean, 1
    assert float((rel["mean_weight"] * rel["n"]).sum() / rel["n"].sum()) == pytest.approx(1.0)


def test_shares_sum_to_one_per_epoch_and_scale_invariance():
    group, y = _cells()
    gen = torch.Generator().manual_seed(2)
    history = [torch.rand(len(y), generator=gen) for _ in range(3)]
    a = cell_weight_trajectories(history, group, y)
    b = cell_weight_trajectories([7.5 * w for w in history], group, y)
    assert a.groupby("epoch")["weight_share"].sum().to_numpy() == pytest.approx(np.ones(3))
    pd.testing.assert_frame_equal(a, b)


def test_init_adds_epoch_zero_with_uniform_weights():
    group, y = _cells()
    frame = cell_weight_trajectories([torch.ones(len(y))], group, y, init=2.0)
    assert sorted(frame["epoch"].unique()) == [0, 1]
    zero = frame[frame["epoch"] == 0]
    assert zero["mean_weight"].to_numpy() == pytest.approx(np.ones(len(zero)))
    assert zero["weight_share"].to_numpy() == pytest.approx(zero["n"].to_numpy() / len(y))


def test_row_order_invariance():
    group, y = _cells()
    w = torch.rand(len(y), generator=torch.Generator().manual_seed(3))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(4))
    a = cell_weight_trajectories([w], group, y)
    b = cell_weight_trajectories([w[perm]], group[perm], y[perm])
    pd.testing.assert_frame_equal(a, b)


def test_factors_match_reweighing_weights():
    group, y = _cells(200)
    factors = reweighing_cell_factors(group, y)
    w = reweighing_weights(y, group)
    for g in range(3):
        for label in (0, 1):
            rows = (group == g) & (y == label)
            if rows.any():
                assert float(w[rows][0]) == pytest.approx(factors[f"{g}, y={label}"])
    # weighted by the cell sizes, the factors give every cell the share P(g) P(y)
    frame = cell_weight_trajectories([w], group, y).set_index("cell")
    p_g = torch.bincount(group, minlength=3).double() / len(y)
    p_y = torch.bincount(y, minlength=2).double() / len(y)
    for cell, row in frame.iterrows():
        g, label = int(cell[0]), int(cell[-1])
        assert row["weight_share"] == pytest.approx(float(p_g[g] * p_y[label]))


def test_forml_history_end_to_end():
    data = make_biased_classification(200, seed=0)
    meta = make_biased_classification(80, seed=1)
    forml = FORML("eo_gap", meta_lr=5.0)
    fit(LogisticRegression(2, seed=0), data, strategy=forml, meta=meta, epochs=3, progress=False)
    frame = cell_weight_trajectories(forml.history_, data.group, data.y,
                                     group_names=data.group_categories, init=forml.init)
    assert sorted(frame["epoch"].unique()) == [0, 1, 2, 3]
    last = frame[frame["epoch"] == 3]
    expected = (forml.weights_ == 0).double().mean().item()
    assert float((last["zero_share"] * last["n"]).sum() / len(data)) == pytest.approx(expected)
    factors = reweighing_cell_factors(data.group, data.y, group_names=data.group_categories)
    ax = plot_weight_trajectories(frame, reference=factors)
    assert len(ax.get_legend().get_texts()) == frame["cell"].nunique()


def test_plot_several_runs_draws_mean_and_band():
    group, y = _cells()
    gen = torch.Generator().manual_seed(5)
    runs = [cell_weight_trajectories([torch.rand(len(y), generator=gen) for _ in range(2)],
                                     group, y).assign(seed=s) for s in range(3)]
    frame = pd.concat(runs)
    ax = plot_weight_trajectories(frame, value="weight_share", palette={"0, y=0": "black"},
                                  log=True)
    n_cells = frame["cell"].nunique()
    assert len(ax.lines) == n_cells
    assert len(ax.collections) == n_cells  # one band per cell
    first = ax.lines[0]
    cell = frame["cell"].iloc[0]
    expected = frame[frame["cell"] == cell].groupby("epoch")["weight_share"].mean()
    assert first.get_ydata() == pytest.approx(expected.to_numpy())
    assert first.get_color() == "black"
    assert ax.get_yscale() == "log"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"history": []}, ValueError, "Expected `history` to be a non-empty list"),
        ({"history": torch.ones(4)}, ValueError, "Expected `history` to be a non-empty list"),
        ({"history": [torch.ones(3)]}, ValueError,
         r"Expected `history\[0\]` to be a 1-d tensor of 4"),
        ({"history": [-torch.ones(4)]}, ValueError, "finite, non-negative"),
        ({"history": [torch.full((4,), float("nan"))]}, ValueError, "finite, non-negative"),
        ({"y": torch.tensor([0, 1, 2, 1])}, ValueError, r"Expected `y` to be labels in \{0, 1\}"),
        ({"y": torch.tensor([0, 1, 1])}, ValueError, "Expected `y` to be as long as `group`"),
        ({"group": torch.tensor([0.0, 1.0, 0.0, 1.0])}, TypeError,
         "Expected `group` to be integer codes"),
        ({"group": torch.tensor([0, -1, 0, 1])}, ValueError,
         "Expected `group` to be non-negative"),
        ({"group_names": ["a"]}, ValueError, "Expected `group_names` to be at least 2 names"),
        ({"init": 0.0}, ValueError, "Expected `init` to be a positive weight"),
    ],
)
def test_trajectory_errors(kwargs, error, match):
    args = {"history": [torch.ones(4)], "group": torch.tensor([0, 0, 1, 1]),
            "y": torch.tensor([0, 1, 0, 1])}
    args.update(kwargs)
    history, group, y = args.pop("history"), args.pop("group"), args.pop("y")
    with pytest.raises(error, match=match):
        cell_weight_trajectories(history, group, y, **args)


def test_plot_errors():
    frame = cell_weight_trajectories([torch.ones(4)], torch.tensor([0, 0, 1, 1]),
                                     torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="Expected `value` to be one of"):
        plot_weight_trajectories(frame, value="median")
    with pytest.raises(TypeError, match="Expected `frame` to be a DataFrame with columns"):
        plot_weight_trajectories(frame.drop(columns="epoch"))
    with pytest.raises(TypeError, match="Expected `ax` to be a matplotlib Axes"):
        plot_weight_trajectories(frame, ax="left")
