"""Group upweighting vs balanced sampling: same expected gradient, temperatures, Cooldown."""

import math

import pytest
import torch
from torch.utils.data import DataLoader

from fairlib.datasets import make_biased_classification
from fairlib.train import LogisticRegression, fit
from fairlib.weighting import (
    Batch,
    Cooldown,
    GroupBalancedSampling,
    GroupUpweighting,
    Reweighing,
    temperature_probabilities,
)


@pytest.fixture(scope="module")
def data():
    return make_biased_classification(400, minority_fraction=0.2, seed=2)


def _per_sample_grads(data, theta):
    """Gradients of the logistic BCE of every sample w.r.t. (w, b), float64, closed form."""
    X = torch.cat([data.X.double(), torch.ones(len(data), 1, dtype=torch.float64)], 1)
    p = torch.sigmoid(X @ theta)
    return (p - data.y.double())[:, None] * X


def _full_batch(data):
    return Batch(data.X, data.y, data.group, torch.arange(len(data)))


def test_temperature_probabilities():
    counts = torch.tensor([900, 90, 10, 0])
    p1 = temperature_probabilities(counts, 1.0)
    assert torch.allclose(p1, torch.tensor([0.9, 0.09, 0.01, 0.0], dtype=torch.float64))
    assert torch.allclose(temperature_probabilities(counts, math.inf),
                          torch.tensor([1 / 3, 1 / 3, 1 / 3, 0], dtype=torch.float64))
    p2 = temperature_probabilities(counts, 2.0)
    assert torch.allclose(p2, torch.tensor([30, 90 ** 0.5, 10 ** 0.5, 0], dtype=torch.float64) / (30 + 90 ** 0.5 + 10 ** 0.5))
    tiny = temperature_probabilities(torch.tensor([30000, 29000]), 0.01)  # 30000^100 overflows float64
    assert torch.isfinite(tiny).all() and float(tiny[0]) > 0.96
    # higher temperature, flatter shares
    assert float(p2[2]) > float(p1[2]) and float(p2[0]) < float(p1[0])


@pytest.mark.parametrize("groups", ["group_label", "group"])
@pytest.mark.parametrize("tau", [1.0, 3.0, math.inf])
def test_upweighting_and_sampling_same_expected_gradient(data, groups, tau):
    theta = torch.tensor([0.7, -0.4, 0.2], dtype=torch.float64)
    grads = _per_sample_grads(data, theta)
    uw = GroupUpweighting(tau=tau, groups=groups).setup(data)
    w = uw.weights(_full_batch(data), torch.ones(len(data), dtype=torch.float64), None)
    assert float(w.mean()) == pytest.approx(1.0, abs=1e-12)  # mean weight 1
    g_weighted = (w[:, None] * grads).mean(0)  # full-batch gradient of mean(w * loss)
    bs = GroupBalancedSampling(tau=tau, groups=groups).setup(data)
    pi = bs.sample_probabilities()
    assert float(pi.sum()) == pytest.approx(1.0, abs=1e-12)
    g_sampled = (pi[:, None] * grads).sum(0)  # E[gradient of a drawn sample] = E[batch-mean gradient]
    assert torch.allclose(g_weighted, g_sampled, rtol=0, atol=1e-13)
    if tau != 1.0:  # and it is not just the unweighted gradient
        assert not torch.allclose(g_weighted, grads.mean(0), atol=1e-4)


def test_same_expected_gradient_through_autograd_on_the_model(data):
    """The same identity with the library's model and the loop's loss, not a closed form."""
    model = LogisticRegression(2, seed=1).double()
    X, y = data.X.double(), data.y.double()
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
    uw = GroupUpweighting(tau=2.0).setup(data)
    bs = GroupBalancedSampling(tau=2.0).setup(data)
    losses = loss_fn(model(X), y)
    w = uw.weights(_full_batch(data), losses.detach(), model)
    g1 = torch.autograd.grad((w * losses).mean(), list(model.parameters()))
    losses = loss_fn(model(X), y)
    g2 = torch.autograd.grad((bs.sample_probabilities() * losses).sum(), list(model.parameters()))
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-13)


def test_sampler_draws_with_the_stated_probabilities(data):
    bs = GroupBalancedSampling(tau=math.inf).setup(data, generator=torch.Generator().manual_seed(0))
    sampler = bs.sampler()
    assert len(sampler) == len(data)
    draws = torch.cat([torch.tensor(list(sampler)) for _ in range(100)])
    cells = (data.group * 2 + data.y)[draws]
    freq = torch.bincount(cells, minlength=4).double() / len(draws)
    assert torch.allclose(freq, torch.full((4,), 0.25, dtype=torch.float64), atol=0.01)
    natural = torch.bincount(data.group * 2 + data.y, minlength=4).double() / len(data)
    assert float((natural - 0.25).abs().max()) > 0.1  # balancing really changed the mix


def test_reweighing_weights_vs_its_sampler_same_expected_gradient(data):
    theta = torch.tensor([0.3, 0.5, -0.1], dtype=torch.float64)
    grads = _per_sample_grads(data, theta)
    rw = Reweighing().setup(data)
    w = rw.sample_weights_.double()
    probs = Reweighing(mode="upsample").setup(data).sampler().weights
    assert torch.allclose((w[:, None] * grads).mean(0), ((probs / probs.sum())[:, None] * grads).sum(0),
                          atol=1e-7)


def test_cooldown_schedule_values():
    epochs = Cooldown(tau=5.0, switch_at=2, final_tau=1.0)
    assert [epochs(e, 100) for e in range(4)] == [5.0, 5.0, 1.0, 1.0]
    steps = Cooldown(tau=math.inf, switch_at=3, unit="step")
    assert [steps(0, s) for s in range(5)] == [math.inf] * 3 + [1.0, 1.0]


def test_cooldown_epochs_in_fit(data):
    bs = GroupBalancedSampling(tau=Cooldown(tau=math.inf, switch_at=2))
    hist = fit(LogisticRegression(2, seed=0), data, strategy=bs, epochs=3, batch_size=64, progress=False)
    assert list(hist.frame["tau"]) == [math.inf, math.inf, 1.0]
    probs = hist.frame["group_probabilities"]
    assert probs.iloc[0] == pytest.approx([0.25] * 4)
    natural = (torch.bincount(data.group * 2 + data.y, minlength=4).double() / len(data)).tolist()
    assert probs.iloc[2] == pytest.approx(natural)
    uw = GroupUpweighting(tau=Cooldown(tau=4.0, switch_at=1), groups="group")
    hist = fit(LogisticRegression(2, seed=0), data, strategy=uw, epochs=2, progress=False)
    assert list(hist.frame["tau"]) == [4.0, 1.0]
    one = torch.ones(len(data))
    assert torch.allclose(uw.weights(_full_batch(data), one, None), one)  # tau = 1: ERM weights


def test_cooldown_steps_switch_the_sampler_mid_epoch():
    data = make_biased_classification(1000, minority_fraction=0.1, seed=5)
    bs = GroupBalancedSampling(tau=Cooldown(tau=math.inf, switch_at=4, unit="step"), groups="group")
    bs.setup(data, generator=torch.Generator().manual_seed(1))
    loader = DataLoader(data, batch_size=100, sampler=bs.sampler())
    minority_share = []
    for x, y, g, idx in loader:
        minority_share.append(float((g == 1).double().mean()))
        bs.update(Batch(x, y, g, idx), torch.zeros(len(y)), None)
    assert len(minority_share) == 10
    assert min(minority_share[:4]) > 0.35  # balanced: about 0.5
    assert max(minority_share[4:]) < 0.22  # natural: about 0.1
    # the step switch also applies to upweighting
    uw = GroupUpweighting(tau=Cooldown(tau=math.inf, switch_at=1, unit="step"), groups="group").setup(data)
    batch = _full_batch(data)
    before = uw.weights(batch, torch.ones(len(data)), None)
    uw.update(batch, torch.ones(len(data)), None)
    after = uw.weights(batch, torch.ones(len(data)), None)
    assert float(before[data.group == 1][0]) == pytest.approx(0.5 * 1000 / int((data.group == 1).sum())) and torch.allclose(after, torch.ones(len(data)))


def test_empty_group_gets_probability_zero():
    data = make_biased_classification(200, base_rates=(0.5, 0.0), seed=0)  # no (minority, y=1)
    with pytest.warns(UserWarning, match=r"no training samples in 'minority, y=1'"):
        bs = GroupBalancedSampling().setup(data)
    assert float(bs.group_probabilities()[3]) == 0.0
    assert bs.group_probabilities()[:3].tolist() == pytest.approx([1 / 3] * 3)


@pytest.mark.parametrize(
    "strategy, match",
    [
        (GroupBalancedSampling(tau=-1.0), r"Expected `tau` to be a positive number \(math.inf for fully balanced\), but got -1.0"),
        (GroupUpweighting(tau=0), r"Expected `tau` to be a positive number .*, but got 0"),
        (GroupUpweighting(tau=float("nan")), r"Expected `tau` to be a positive number .*, but got nan"),
        (GroupUpweighting(tau=Cooldown(tau=-2.0)), r"Expected `Cooldown.tau` to be a positive number .*, but got -2.0"),
        (GroupBalancedSampling(tau=Cooldown(switch_at=-1)), r"Expected `Cooldown.switch_at` to be a non-negative integer, but got -1"),
        (GroupBalancedSampling(tau=Cooldown(unit="iteration")), r"Expected `Cooldown.unit` to be one of 'epoch', 'step', but got 'iteration'"),
        (GroupUpweighting(groups="cells"), r"Expected `groups` to be one of 'group', 'group_label', but got 'cells'"),
    ],
)
def test_bad_arguments(data, strategy, match):
    with pytest.raises(ValueError, match=match):
        strategy.setup(data)
    with pytest.raises(ValueError, match=r"Expected `tau` to be a positive number"):
        temperature_probabilities(torch.tensor([3, 1]), -0.5)


def test_upweighting_reports_the_effective_sample_size(data):
    from fairlib.weighting import effective_sample_size

    uw = GroupUpweighting(tau=2.0).setup(data)
    w = uw.weights(_full_batch(data), torch.ones(len(data)), None)
    ess = float(uw.diagnostics()["effective_sample_size"])
    assert ess == pytest.approx(float(effective_sample_size(w)), rel=1e-6)
    assert ess < len(data)
    assert float(GroupUpweighting(tau=1.0).setup(data).diagnostics()["effective_sample_size"]) == pytest.approx(len(data))
