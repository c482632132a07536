"""Loss-based per-batch weights: KL-DRO, FEBS (both directions, absent groups), FIS (exact W2)."""

import math

import pytest
import torch

from fairlib.datasets import make_biased_classification
from fairlib.weighting import FEBS, FIS, KLDRO, Batch, wasserstein2_to_pooled


@pytest.fixture(scope="module")
def data():
    return make_biased_classification(200, seed=0)


def _batch(y, g):
    y, g = torch.tensor(y), torch.tensor(g)
    return Batch(torch.zeros(len(y), 2), y, g, torch.arange(len(y)))


def test_kldro_closed_form_and_limits():
    losses = torch.tensor([0.1, 0.5, 2.0, 0.7])
    kl = KLDRO(tau=0.5).setup(None)
    e = [math.exp(v / 0.5) for v in losses.tolist()]
    assert kl.weights(None, losses, None).tolist() == pytest.approx([4 * v / sum(e) for v in e], rel=1e-6)
    assert torch.allclose(KLDRO(tau=math.inf).setup(None).weights(None, losses, None), torch.ones(4))
    sharp = KLDRO(tau=1e-3).setup(None).weights(None, losses, None)
    assert sharp.tolist() == pytest.approx([0, 0, 4, 0], abs=1e-6)  # all weight on the largest loss
    big = KLDRO(tau=1e-3).setup(None).weights(None, torch.tensor([1e3, 2e3]), None)
    assert torch.isfinite(big).all()  # softmax, not exp / sum


def test_febs_directions_by_hand(data):
    batch = _batch([0, 1, 0, 1, 0], [0, 0, 1, 1, 2])
    losses = torch.tensor([0.2, 0.6, 0.3, 0.5, 1.2])  # group means 0.4, 0.4, 1.2
    ds3 = make_biased_classification(50, seed=0)
    ds3 = type(ds3)(X=ds3.X, y=ds3.y, sensitive={"g": ds3.y * 0 + torch.arange(50) % 3},
                    categories={"g": ["a", "b", "c"]})
    paper = FEBS(gamma=2.0, normalize=False).setup(ds3).weights(batch, losses, None)
    L = [0.4, 0.4, 1.2]
    expected = [math.tanh((L[k] / 1.2) ** 2) for k in (0, 0, 1, 1, 2)]
    assert paper.tolist() == pytest.approx(expected, rel=1e-6)
    code = FEBS(gamma=2.0, direction="code", normalize=False).setup(ds3).weights(batch, losses, None)
    expected = [math.tanh((0.4 / L[k]) ** 2) for k in (0, 0, 1, 1, 2)]
    assert code.tolist() == pytest.approx(expected, rel=1e-6)
    # paper: the high-loss group weighs most; code: it weighs least
    assert float(paper[4]) > float(paper[0]) and float(code[4]) < float(code[0])
    normed = FEBS(gamma=2.0).setup(ds3).weights(batch, losses, None)
    assert float(normed.mean()) == pytest.approx(1.0) and torch.allclose(normed / normed[4], paper / paper[4])
    assert torch.allclose(FEBS(gamma=0.0).setup(ds3).weights(batch, losses, None), torch.ones(5))


@pytest.mark.parametrize("direction", ["paper", "code"])
def test_febs_absent_and_zero_loss_groups_stay_finite(direction):
    ds3 = make_biased_classification(60, seed=0)
    ds3 = type(ds3)(X=ds3.X, y=ds3.y, sensitive={"g": torch.arange(60) % 3}, categories={"g": ["a", "b", "c"]})
    febs = FEBS(direction=direction, normalize=False).setup(ds3)
    batch = _batch([0, 1, 0], [0, 0, 2])  # group 1 absent: its loss must not be read as 0
    w = febs.weights(batch, torch.tensor([0.3, 0.5, 0.8]), None)
    if direction == "code":
        assert w.tolist() == pytest.approx([math.tanh(1.0)] * 2 + [math.tanh(0.4 / 0.8)], rel=1e-6)
    else:
        assert w.tolist() == pytest.approx([math.tanh(0.4 / 0.8)] * 2 + [math.tanh(1.0)], rel=1e-6)
    zero = febs.weights(batch, torch.tensor([0.0, 0.0, 0.8]), None)
    assert torch.isfinite(zero).all() and bool((zero > 0).all())
    groups = febs.group_weights(torch.tensor([0.3, 0.5, 0.8]), torch.tensor([0, 0, 2]))
    assert float(groups[1]) == 0.0 and torch.isfinite(groups).all()


def _w2_brute(a, b):
    """W2^2 of two equal-weight empirical samples via replication to a common size."""
    n = math.lcm(len(a), len(b))
    qa = torch.sort(a).values.repeat_interleave(n // len(a))
    qb = torch.sort(b).values.repeat_interleave(n // len(b))
    return float(((qa - qb) ** 2).mean())


def test_wasserstein2_to_pooled_is_exact():
    gen = torch.Generator().manual_seed(0)
    values = torch.rand(12, generator=gen, dtype=torch.float64) * 3
    codes = torch.tensor([0, 1, 1, 0, 2, 1, 1, 1, 0, 1, 2, 1])
    got = wasserstein2_to_pooled(values, codes, 4)
    for k in range(3):
        assert float(got[k]) == pytest.approx(_w2_brute(values[codes == k], values), abs=1e-12)
    assert float(got[3]) == 0.0
    ties = torch.tensor([1.0, 1.0, 2.0, 2.0, 2.0, 5.0], dtype=torch.float64)
    tcodes = torch.tensor([0, 1, 0, 1, 1, 0])
    got = wasserstein2_to_pooled(ties, tcodes, 2)
    assert got.tolist() == pytest.approx([_w2_brute(ties[tcodes == k], ties) for k in (0, 1)], abs=1e-12)


def test_fis_weights_by_hand(data):
    batch = _batch([0, 1, 0, 1], [0, 0, 0, 1])
    losses = torch.tensor([0.2, 1.0, 0.4, 2.0])
    d = wasserstein2_to_pooled(losses.double(), batch.group, 2) / 2
    T, c = 0.5, 0.3
    ind = torch.softmax(losses.double() / T, 0)
    grp = torch.softmax(d[batch.group] / T, 0)
    expected = 4 * ((1 - c) * ind + c * grp)
    w = FIS(c=c, T=T).setup(data).weights(batch, losses, None)
    assert torch.allclose(w.double(), expected, atol=1e-6)
    assert float(w.mean()) == pytest.approx(1.0, abs=1e-6)
    # c = 1: only the group term; the lone group-1 sample is far from the pool and weighs most
    only_group = FIS(c=1.0).setup(data).weights(batch, losses, None)
    assert float(only_group[3]) > float(only_group[0]) and torch.allclose(only_group[:3], only_group[0].expand(3))


def test_diagnostics_track_the_effective_sample_size(data):
    from fairlib.train import LogisticRegression, fit

    for strategy in (KLDRO(tau=0.5), FEBS(), FIS()):
        hist = fit(LogisticRegression(2, seed=0), data, strategy=strategy, epochs=2, batch_size=50, progress=False)
        ess = hist.frame["ess_fraction"]
        assert ((ess > 0) & (ess <= 1)).all(), type(strategy).__name__
    assert len(hist.last("group_distances")) == 2


@pytest.mark.parametrize(
    "strategy, match",
    [
        (KLDRO(tau=0), r"Expected `tau` to be a positive temperature, but got 0"),
        (KLDRO(tau=-1.0), r"Expected `tau` to be a positive temperature, but got -1.0"),
        (FEBS(gamma=-1.0), r"Expected `gamma` to be a non-negative exponent, but got -1.0"),
        (FEBS(direction="inverse"), r"Expected `direction` to be one of 'paper', 'code', but got 'inverse'"),
        (FEBS(groups="cell"), r"Expected `groups` to be one of 'group', 'group_label', but got 'cell'"),
        (FIS(c=1.5), r"Expected `c` to be a share in \[0, 1\], but got 1.5"),
        (FIS(T=0.0), r"Expected `T` to be a positive temperature, but got 0.0"),
    ],
)
def test_bad_arguments(data, strategy, match):
    with pytest.raises(ValueError, match=match):
        strategy.setup(data)
