"""Mini-batch gradient noise: upweighting and upsampling share the mean, not the variance."""

import math

import pandas as pd
import pytest
import torch

from fairlib.datasets import make_biased_classification
from fairlib.studies.gradient_noise import (
    DrawScheme,
    GradientMoments,
    draw_scheme,
    minibatch_gradient_moments,
    per_sample_gradients,
    sample_minibatch_gradients,
)
from fairlib.train import LogisticRegression
from fairlib.weighting import (
    ERM,
    Cooldown,
    GroupBalancedSampling,
    GroupDRO,
    GroupUpweighting,
    Reweighing,
)


@pytest.fixture(scope="module")
def data():
    return make_biased_classification(600, minority_fraction=0.1, seed=3)


@pytest.fixture(scope="module")
def grads(data):
    model = LogisticRegression(2, seed=0).double()
    with torch.no_grad():
        model.linear.weight.copy_(torch.tensor([[0.8, -0.3]]))
        model.linear.bias.fill_(0.1)
    return per_sample_gradients(model, data.X.double(), data.y)


# -- per-sample gradients (tested with fairlib.train.per_sample_grads) ---------------------
def test_per_sample_gradients_is_the_train_helper():
    from fairlib.train import per_sample_grads

    assert per_sample_gradients is per_sample_grads


# -- exact moments --------------------------------------------------------------------------
@pytest.mark.parametrize("groups", ["group_label", "group"])
@pytest.mark.parametrize("tau", [1.0, 3.0, math.inf])
def test_upweighting_and_upsampling_have_the_same_expected_gradient(data, grads, groups, tau):
    up = draw_scheme(GroupUpweighting(tau, groups=groups), data)
    down = draw_scheme(GroupBalancedSampling(tau, groups=groups), data)
    assert not up.replacement and down.replacement
    m_up = minibatch_gradient_moments(grads, up, batch_size=32)
    m_down = minibatch_gradient_moments(grads, down, batch_size=32)
    assert torch.allclose(m_up.mean, m_down.mean, atol=1e-14, rtol=0)
    # and it is the full-batch gradient of mean(w * loss)
    assert torch.allclose(m_up.mean, (up.weights[:, None] * grads).mean(0), atol=1e-14)


def test_upweighting_has_the_larger_variance_and_the_gap_grows_with_tau(data, grads):
    ratios = []
    for tau in [1.0, 2.0, 5.0, math.inf]:
        v_up = minibatch_gradient_moments(grads, draw_scheme(GroupUpweighting(tau), data),
                                          batch_size=32).total_variance
        v_down = minibatch_gradient_moments(grads, draw_scheme(GroupBalancedSampling(tau), data),
                                            batch_size=32).total_variance
        ratios.append(float(v_up / v_down))
    # tau = 1 is ERM both ways; only the finite-population factor of shuffling differs
    assert ratios[0] == pytest.approx((600 - 32) / (600 - 1), rel=1e-12)
    assert all(b > a for a, b in zip(ratios, ratios[1:]))
    assert ratios[-1] > 2


def test_constructed_case_equal_gradients():
    """All per-sample gradients equal: sampling has zero noise, upweighting c (N/ESS - 1) / b."""
    n, b = 100, 10
    grads = torch.ones(n, 2, dtype=torch.float64) * torch.tensor([3.0, 4.0], dtype=torch.float64)
    w = torch.cat([torch.full((90,), 0.5 / 0.9, dtype=torch.float64),  # mean 1, half of the
                   torch.full((10,), 0.5 / 0.1, dtype=torch.float64)])  # weight on 10 rows
    up = DrawScheme.uniform(n, weights=w, replacement=True)
    down = DrawScheme(w / n, torch.ones(n), True)
    m_up = minibatch_gradient_moments(grads, up, batch_size=b)
    m_down = minibatch_gradient_moments(grads, down, batch_size=b)
    assert torch.allclose(m_up.mean, m_down.mean)
    assert torch.allclose(m_down.mean, grads[0])
    assert float(m_down.total_variance) == pytest.approx(0.0, abs=1e-12)
    ess = float(w.sum() ** 2 / (w * w).sum())
    assert float(m_up.total_variance) == pytest.approx(25.0 * (n / ess - 1) / b, rel=1e-12)


def test_variance_identity_difference_of_the_two_schemes(data, grads):
    up = draw_scheme(GroupUpweighting(math.inf), data)
    up = DrawScheme(up.probabilities, up.weights, True)  # compare both with replacement
    down = draw_scheme(GroupBalancedSampling(math.inf), data)
    w, n = up.weights, len(data)
    gap = (w * (w - 1) * (grads * grads).sum(1)).sum() / n
    v_up = minibatch_gradient_moments(grads, up, batch_size=1).total_variance
    v_down = minibatch_gradient_moments(grads, down, batch_size=1).total_variance
    assert float(v_up - v_down) == pytest.approx(float(gap), rel=1e-10)


def test_variance_scaling_with_batch_size_and_full_batch(data, grads):
    s_rep = DrawScheme.uniform(len(data), replacement=True)
    v1 = minibatch_gradient_moments(grads, s_rep, batch_size=1).total_variance
    v8 = minibatch_gradient_moments(grads, s_rep, batch_size=8).total_variance
    assert float(v1 / v8) == pytest.approx(8.0, rel=1e-12)
    full = minibatch_gradient_moments(grads, DrawScheme.uniform(len(data)), batch_size=len(data))
    assert float(full.total_variance) == pytest.approx(0.0, abs=1e-15)  # each batch: all rows


# -- Monte Carlo agrees with the exact moments ----------------------------------------------
@pytest.mark.parametrize("kind", ["upweight", "upsample", "erm"])
def test_monte_carlo_moments_agree_with_exact(data, grads, kind):
    strategy = {"upweight": GroupUpweighting(), "upsample": GroupBalancedSampling(),
                "erm": ERM()}[kind]
    scheme = draw_scheme(strategy, data)
    b, k = 16, 6000
    draws = sample_minibatch_gradients(grads, scheme, batch_size=b, n_batches=k,
                                       generator=torch.Generator().manual_seed(7), chunk_size=500)
    assert draws.shape == (k, 3) and draws.dtype == torch.float64
    exact = minibatch_gradient_moments(grads, scheme, batch_size=b)
    mc = GradientMoments.from_samples(draws, b)
    se = (exact.total_variance / k).sqrt()  # standard error of the mean's components (at most)
    assert float((mc.mean - exact.mean).norm()) < 4 * float(se)
    assert float(mc.total_variance / exact.total_variance) == pytest.approx(1.0, abs=0.08)


def test_without_replacement_batches_have_distinct_rows_and_seeded_draws_repeat():
    g = torch.arange(10, dtype=torch.float64)[:, None]
    s = DrawScheme.uniform(10)
    draws = sample_minibatch_gradients(g, s, batch_size=10, n_batches=3,
                                       generator=torch.Generator().manual_seed(0))
    assert torch.allclose(draws, torch.full((3, 1), 4.5, dtype=torch.float64))  # rows once
    a = sample_minibatch_gradients(g, s, batch_size=3, n_batches=5,
                                   generator=torch.Generator().manual_seed(4))
    b = sample_minibatch_gradients(g, s, batch_size=3, n_batches=5,
                                   generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)


# -- schemes of the strategies --------------------------------------------------------------
def test_draw_scheme_of_each_strategy(data):
    n = len(data)
    erm = draw_scheme(ERM(), data)
    assert torch.allclose(erm.probabilities, torch.full((n,), 1 / n, dtype=torch.float64))
    assert torch.equal(erm.weights, torch.ones(n, dtype=torch.float64)) and not erm.replacement
    rw = Reweighing()
    loss_w = draw_scheme(rw, data)
    assert torch.allclose(loss_w.weights, rw.sample_weights_.double())
    sampled = draw_scheme(Reweighing(mode="upsample"), data)
    assert sampled.replacement and torch.allclose(sampled.probabilities, loss_w.weights / n)
    # a Cooldown schedule is read at its start
    cd = draw_scheme(GroupBalancedSampling(Cooldown(tau=math.inf, switch_at=1)), data)
    balanced = draw_scheme(GroupBalancedSampling(math.inf), data)
    assert torch.allclose(cd.probabilities, balanced.probabilities)


def test_bad_arguments(data, grads):
    with pytest.raises(TypeError, match=r"Expected `strategy` to be one of ERM, Reweighing, "
                                        r"GroupUpweighting, GroupBalancedSampling .*"
                                        r"but got GroupDRO"):
        draw_scheme(GroupDRO(), data)
    scheme = draw_scheme(ERM(), data)
    with pytest.raises(ValueError, match=r"Expected `batch_size` to be a positive integer, but "
                                         r"got 0"):
        minibatch_gradient_moments(grads, scheme, batch_size=0)
    with pytest.raises(ValueError,
                       match=r"Expected `batch_size` to be at most 600 without replacement"):
        sample_minibatch_gradients(grads, scheme, batch_size=601, n_batches=2)
    with pytest.raises(ValueError, match=r"Expected `scheme` to be a scheme over 10 rows \(as "
                                         r"many as `grads`\), but got one over 600"):
        minibatch_gradient_moments(grads[:10], scheme, batch_size=2)
    with pytest.raises(ValueError, match=r"Expected `grads` to be a float tensor \[N, P\]"):
        minibatch_gradient_moments(grads[:, 0], scheme, batch_size=2)
    with pytest.raises(ValueError, match=r"Expected `probabilities` to be uniform when "
                                         r"`replacement` is False"):
        DrawScheme(torch.tensor([0.2, 0.8]), torch.ones(2), False)
    with pytest.raises(ValueError,
                       match=r"Expected `probabilities` to be non-negative and summing to 1"):
        DrawScheme(torch.tensor([0.2, 0.7]), torch.ones(2), True)
    with pytest.raises(ValueError, match=r"Expected `weights` to be non-negative"):
        DrawScheme.uniform(2, weights=torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"Expected `n_batches` to be a positive integer"):
        sample_minibatch_gradients(grads, scheme, batch_size=2, n_batches=0)


# -- the chapter's protocol and its helpers -------------------------------------------------
def test_parse_tau_and_cooldown_switch():
    from fairlib.studies.gradient_noise import cooldown_switch, parse_tau

    assert parse_tau("inf") == math.inf and parse_tau("5") == 5.0 and parse_tau(2) == 2.0
    for bad in ("hot", 0, "-1", None):
        with pytest.raises(ValueError, match=r"Expected `tau` to be a positive number or 'inf'"):
            parse_tau(bad)
    assert [cooldown_switch(e, 0.5) for e in (1, 2, 6, 30)] == [1, 1, 3, 15]
    assert cooldown_switch(6, 0.0) == 1 and cooldown_switch(6, 2.0) == 6


def test_tuning_grid_gives_every_scheme_the_same_budget_and_registered_names():
    from collections import Counter

    from fairlib.experiments.registry import get_method
    from fairlib.studies.gradient_noise import METHODS, tuning_grid

    grid = tuning_grid(lrs=[0.01, 0.1], tau="5", balance="group", epochs=4, n_rows=500)
    assert Counter(s.method for s in grid) == {m: 2 for m in METHODS}
    assert all(dict(s.dataset_params) == {"sensitive": "sex", "n": 500} for s in grid)
    cooldown = [s for s in grid if s.method == "Cooldown sampling"][0]
    assert dict(cooldown.method_params) == {"groups": "group", "switch_at": 2, "tau": "5"}
    for spec in grid:  # every name builds its strategy from the spec's parameters
        strategy = get_method(spec.method).factory(**dict(spec.method_params))
        assert strategy is not None
    up = get_method("Upweighting").factory(tau="inf", groups="group_label")
    assert isinstance(up, GroupUpweighting) and up.tau == math.inf
    cd = get_method("Cooldown sampling").factory(tau="inf", switch_at=3)
    assert isinstance(cd, GroupBalancedSampling) and isinstance(cd.tau, Cooldown)
    with pytest.raises(ValueError, match="Expected `model` to be 'logistic' or 'mlp'"):
        tuning_grid(model="cnn")


def test_german_grid():
    from fairlib.studies.gradient_noise import german_grid

    grid = german_grid(lrs=[0.05, 0.1], german_attribute="sex", model="mlp", hidden=8)
    assert [s.method for s in grid] == ["ERM", "ERM", "Reweighing", "Reweighing"]
    assert all(s.train_settings["batch_size"] == 64 and dict(s.model_params) == {"hidden": (8,)}
               and s.metrics == ("train_split_rates",) for s in grid)


def test_corrected_threshold_undoes_the_label_prior(data):
    from fairlib.studies.gradient_noise import corrected_threshold

    pi = float(data.y.double().mean())
    assert corrected_threshold(ERM(), data) == 0.5
    assert corrected_threshold(Reweighing(), data) == 0.5
    cooldown = GroupBalancedSampling(Cooldown(tau=math.inf, switch_at=1))
    assert corrected_threshold(cooldown, data) == 0.5
    for strategy in (GroupUpweighting(math.inf), GroupBalancedSampling(math.inf)):
        assert corrected_threshold(strategy, data) == pytest.approx(1 - pi, abs=1e-12)
    assert corrected_threshold(GroupUpweighting(1.0), data) == pytest.approx(0.5, abs=1e-12)


def test_chapter_metrics_are_added_to_a_record():
    from fairlib.experiments import RunSpec, execute
    from fairlib.studies.gradient_noise import learning_curves

    spec = RunSpec("synthetic", "logistic", "Upweighting", seed=0, dataset_params={"n": 400},
                   method_params={"tau": "inf"}, train={"epochs": 2, "device": "cpu"},
                   metrics=["balancing_curve", "prior_corrected", "train_split_rates"])
    record = execute(spec)
    assert record["status"] == "ok", record["error"]
    assert {"curve_accuracy[1]", "curve_equal_opportunity_difference[2]"} <= set(record)
    assert 0.5 < record["corrected_threshold"] < 1 and "corrected_test_accuracy" in record
    assert 0 <= record["train_accuracy"] <= 1
    curves = learning_curves(pd.DataFrame([record]))
    assert curves["epoch"].tolist() == [1, 2]
    assert curves["meta_accuracy"].tolist() == [record["curve_accuracy[1]"],
                                                record["curve_accuracy[2]"]]
    with pytest.raises(ValueError, match=r"curve_accuracy\[<epoch>\] columns"):
        learning_curves(pd.DataFrame({"method": ["ERM"], "seed": [0]}))


def test_base_rate_table_and_temperature_shares(data):
    from fairlib.studies.gradient_noise import base_rate_table, temperature_shares
    from fairlib.weighting import reweighing_weights

    plain = base_rate_table(data)
    assert (plain["base rate"] == plain["weighted base rate"]).all()
    assert plain["rows"].sum() == len(data)
    table = base_rate_table(data, reweighing_weights(data.y, data.group))
    assert table["weighted base rate"].to_numpy() == pytest.approx(float(data.y.double().mean()))
    shares = temperature_shares(data, [1.0, math.inf])
    assert shares.loc["P(Y = 1)", "τ = 1"] == pytest.approx(float(data.y.double().mean()))
    assert shares.loc[list(data.cell_names), "τ = ∞"].to_numpy() == pytest.approx(0.25)
    by_group = temperature_shares(data, [math.inf], groups="group")
    assert by_group.loc[[f"P({g})" for g in data.group_categories], "τ = ∞"].to_numpy() == \
        pytest.approx(0.5)


def test_scheme_noise_imbalance_curve_and_ratios(data, grads):
    from fairlib.studies.gradient_noise import (gradient_norms, imbalance_curve, minority_rows,
                                                scheme_noise, variance_ratios)

    noise = scheme_noise(grads, data, tau=math.inf, groups="group_label", batch_size=16,
                         n_batches=200, seed=1)
    assert list(noise.table.index) == ["Upweighting", "Balanced sampling", "ERM"]
    assert noise.stats["mean_gap_rel"] < 1e-12 and noise.stats["identity_err"] < 1e-10
    assert noise.stats["var_ratio"] > 1 and 0 < noise.stats["ess_up_share"] < 1
    assert all(d.shape == (200, 3) for d in noise.draws.values())
    rows = minority_rows(data, 0.05, 1, torch.Generator().manual_seed(0))
    assert float((data.group[rows] == 1).double().mean()) == pytest.approx(0.05, abs=0.01)
    with pytest.raises(ValueError, match="Expected `share` to be in"):
        minority_rows(data, 1.0, 1, torch.Generator())
    curve = imbalance_curve(grads, data, [0.05], tau=math.inf, groups="group_label",
                            batch_size=16, n_batches=50, minority=1)
    assert len(curve) == 4 and (curve["mean gap"] < 1e-12).all()
    up = curve[curve["scheme"] == "Upweighting"].sort_values("share")
    assert up["exact"].iloc[0] > up["exact"].iloc[-1]  # rarer minority, noisier upweighting
    ratios = variance_ratios(grads, data, [1.0, math.inf], batch_size=32)
    assert ratios.loc["1"].to_numpy() == pytest.approx((600 - 32) / (600 - 1), rel=1e-12)
    assert gradient_norms(grads, data).index.tolist() == list(data.cell_names)
    assert gradient_norms(grads, data, cells=False).index.tolist() == list(data.group_categories)


def test_plot_gradient_noise(data, grads):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fairlib.studies.gradient_noise import imbalance_curve, plot_gradient_noise, scheme_noise

    noise = scheme_noise(grads, data, tau=math.inf, groups="group", batch_size=8, n_batches=30)
    curve = imbalance_curve(grads, data, [0.05], tau=math.inf, groups="group", batch_size=8,
                            n_batches=10, minority=1)
    fig = plot_gradient_noise(noise, curve, natural_share=0.1)
    assert len(fig.axes) == 2 and fig.axes[0].get_title().startswith("(a) 30 mini-batch")
    plt.close(fig)
