"""Kamiran-Calders reweighing: closed form, the independence property, empty cells, options."""

import pytest
import torch

from fairlib.datasets import FairDataset, make_biased_classification
from fairlib.train import LogisticRegression, fit
from fairlib.weighting import Reweighing, effective_sample_size, reweighing_weights


def _closed_form(y, g):
    """n_a n_y / (n n_{a,y}) computed sample by sample with Python counts."""
    y, g = y.tolist(), g.tolist()
    n = len(y)
    out = []
    for yi, gi in zip(y, g):
        n_a = sum(1 for x in g if x == gi)
        n_y = sum(1 for x in y if x == yi)
        n_ay = sum(1 for a, b in zip(g, y) if a == gi and b == yi)
        out.append(n_a * n_y / (n * n_ay))
    return torch.tensor(out, dtype=torch.float64)


def _weighted_rate(w, y, mask):
    return float((w * y * mask).sum() / (w * mask).sum())


@pytest.fixture(scope="module")
def data():
    return make_biased_classification(400, seed=0)


def test_closed_form_and_independence(data):
    y, g = data.y, data.group
    w = reweighing_weights(y, g)
    assert torch.allclose(w, _closed_form(y, g), rtol=0, atol=1e-12)
    overall = float(y.double().mean())
    for k in (0, 1):
        assert _weighted_rate(w, y, g == k) == pytest.approx(overall, abs=1e-12)
    assert float(w.sum()) == pytest.approx(len(y), abs=1e-9)  # no empty cell: sum(w) = n


def test_three_groups_and_intersections():
    gen = torch.Generator().manual_seed(3)
    n = 300
    a = torch.randint(0, 3, (n,), generator=gen)
    b = torch.randint(0, 2, (n,), generator=gen)
    y = (torch.rand(n, generator=gen) < 0.2 + 0.2 * a + 0.1 * b).long()
    w = reweighing_weights(y, [a, b])
    inter = a * 2 + b
    assert torch.allclose(w, _closed_form(y, inter), atol=1e-12)
    for k in range(6):
        assert _weighted_rate(w, y, inter == k) == pytest.approx(float(y.double().mean()), abs=1e-12)
    assert torch.equal(w, reweighing_weights(y, torch.stack([a, b], 1)))

    ds = FairDataset(X=torch.randn(n, 2), y=y, sensitive={"a": a, "b": b},
                     categories={"a": ["p", "q", "r"], "b": ["u", "v"]})
    rw = Reweighing(attributes=["a", "b"]).setup(ds)
    assert torch.allclose(rw.sample_weights_.double(), w, atol=1e-6)
    assert rw.group_names_ == ["p & u", "p & v", "q & u", "q & v", "r & u", "r & v"]
    assert rw.cell_weights_.shape == (6, 2)
    # the same through the dataset's own intersection attribute
    rw2 = Reweighing().setup(ds.with_sensitive("a", "b"))
    assert torch.equal(rw2.sample_weights_, rw.sample_weights_)


def test_empty_cell_policy():
    # group 1 has only positives: cell (1, y=0) is empty
    y = torch.tensor([0, 0, 1, 1, 1, 1, 1])
    g = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    with pytest.warns(UserWarning, match=r"empty group x label cells \('group 1', y=0\)"):
        w = reweighing_weights(y, g)
    raw = _closed_form(y, g)  # every observed cell still gets its factor
    assert torch.allclose(w, raw * len(y) / raw.sum(), atol=1e-12)  # then mean 1
    assert float(w.sum()) == pytest.approx(len(y))
    assert float(raw.sum()) != pytest.approx(len(y))  # the normalisation did something
    ds = FairDataset(X=torch.zeros(7, 1), y=y, sensitive={"g": g}, categories={"g": ["a", "b"]})
    with pytest.warns(UserWarning, match=r"\('b', y=0\).*cannot be equalised"):
        rw = Reweighing().setup(ds)
    assert torch.isnan(rw.cell_weights_[1, 0]) and not torch.isnan(rw.cell_weights_[0]).any()
    assert torch.isfinite(rw.sample_weights_).all()


def test_sample_weight_counts_and_clip(data):
    y, g = data.y, data.group
    gen = torch.Generator().manual_seed(0)
    sw = torch.randint(1, 4, (len(y),), generator=gen).double()
    w = reweighing_weights(y, g, sw, normalize=False)
    rep = torch.repeat_interleave(torch.arange(len(y)), sw.long())
    w_rep = reweighing_weights(y[rep], g[rep], normalize=False)
    # integer prior weights act as repeated rows; the result is multiplied into them
    assert torch.allclose((w / sw)[rep], w_rep, atol=1e-12)
    assert torch.allclose(reweighing_weights(y, g, 5 * sw), reweighing_weights(y, g, sw), atol=1e-12)
    clipped = reweighing_weights(y, g, clip=1.1, normalize=False)
    assert float(clipped.max()) <= 1.1 + 1e-12
    assert float(reweighing_weights(y, g, clip=1.1).mean()) == pytest.approx(1.0)


def test_loss_weights_vs_sampler_and_ess(data):
    rw = Reweighing().setup(data)
    w = rw.sample_weights_
    ess = float(effective_sample_size(w))
    assert float(rw.effective_sample_size_) == pytest.approx(ess)
    assert ess == pytest.approx(float(w.sum()) ** 2 / float((w * w).sum()), rel=1e-6)
    assert 0 < ess < len(data)
    sampled = Reweighing(mode="upsample").setup(data, generator=torch.Generator().manual_seed(0))
    sampler = sampled.sampler()
    assert torch.allclose(sampler.weights, w.double(), atol=1e-6) and sampler.replacement
    # the sampled loss is unweighted; the loss-weight mode returns the weights by index
    idx = torch.tensor([5, 0, 17])
    batch = type("B", (), {"index": idx})()
    assert torch.equal(sampled.weights(batch, torch.ones(3), None), torch.ones(3))
    assert torch.equal(rw.weights(batch, torch.ones(3), None), w[idx])
    # empirical draw frequencies follow w / sum(w)
    draws = torch.cat([torch.tensor(list(sampler)) for _ in range(50)])
    freq_minority = float((data.group[draws] == 1).double().mean())
    expected = float(w[data.group == 1].sum() / w.sum())
    assert freq_minority == pytest.approx(expected, abs=0.02)


def test_reweighing_trains(data):
    model = LogisticRegression(2, seed=0)
    hist = fit(model, data, strategy=Reweighing(), epochs=2, progress=False)
    assert hist.last("effective_sample_size") == pytest.approx(float(Reweighing().setup(data).effective_sample_size_))
    hist_s = fit(LogisticRegression(2, seed=0), data, strategy=Reweighing(mode="upsample"), epochs=2,
                 progress=False)
    assert torch.isfinite(torch.tensor(hist_s.frame["train_loss"].to_numpy())).all()


def test_bad_arguments(data):
    with pytest.raises(ValueError, match=r"Expected `attributes` to be names of sensitive attributes among 'group', but got \['race'\]"):
        Reweighing(attributes="race").setup(data)
    with pytest.raises(ValueError, match=r"Expected `clip` to be a positive number or None, but got 0"):
        Reweighing(clip=0).setup(data)
    with pytest.raises(ValueError, match=r"Expected `mode` to be one of 'upweight', 'upsample', but got 'yes'"):
        Reweighing(mode="yes").setup(data)
    with pytest.raises(ValueError, match=r"Expected `y` to be binary labels in \{0, 1\}, but got values \[0, 1, 2\]"):
        reweighing_weights(torch.tensor([0, 2, 1]), torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples"):
        reweighing_weights(torch.tensor([0, 1, 1]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"Expected `sample_weight` to be non-negative"):
        reweighing_weights(torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([1.0, -1.0]))
