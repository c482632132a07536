"""Regularisers passed to ``fit``: FERMI (Lowy et al., arXiv 2102.12586) and the hook itself.

FERMI's minibatch penalty is a mean over rows with the training set's ``P(S | C)`` as a
constant, so it is unbiased for any batch size: checked here by enumerating every
single-row estimate on a fixed float64 model (exact to round-off) and by random
single-row draws (within 4 standard errors).
"""

import math

import numpy as np
import pytest
import torch

from fairlib.datasets import make_biased_classification
from fairlib.regularizers import FERMI, Regularizer, ermi
from fairlib.train import LogisticRegression, fit, evaluate
from fairlib.weighting import Batch, Reweighing
from fairlib.weighting.checks import HostSyncRecorder

TARGETS = ("dp", "eo", "eodds")
MEASURE = {"dp": "demographic_parity_difference", "eo": "equal_opportunity_difference",
           "eodds": "equalized_odds_difference"}
# ERM is clearly unfair here: weak label signal, the group visible in x, unequal base rates.
BIASED = dict(separation=1.0, base_rates=(0.6, 0.2), group_shift=2.0)
TRAIN = make_biased_classification(2000, seed=0, **BIASED)
TEST = make_biased_classification(4000, seed=1, **BIASED)
SMALL = make_biased_classification(300, seed=2)


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _train(regularizer=None, strategy=None, data=TRAIN, batch_size=64, epochs=10, lr=0.05, seed=0):
    model = LogisticRegression(2, seed=0)
    hist = fit(model, data, strategy=strategy, regularizer=regularizer, epochs=epochs,
               batch_size=batch_size, lr=lr, seed=seed, progress=False)
    return model, hist


def _gap(model, target):
    return evaluate(model, TEST).measure(MEASURE[target])


@pytest.fixture(scope="module")
def erm_model():
    return _train()[0]


# -- effect -----------------------------------------------------------------------------------
@pytest.mark.parametrize("target", TARGETS)
def test_fermi_lowers_the_targeted_gap_vs_erm(target, erm_model):
    """Measured (LogisticRegression, 2000 rows, 10 epochs, batch 64, lam=10, lr_w=1, test
    4000 rows): DP 0.396 -> 0.029, EO 0.326 -> 0.033, EOdds 0.326 -> 0.059."""
    model, hist = _train(FERMI(target))
    erm_gap, fermi_gap = _gap(erm_model, target), _gap(model, target)
    print(f"{target}: ERM {erm_gap:.3f} -> FERMI {fermi_gap:.3f}")
    assert fermi_gap < 0.5 * erm_gap, (target, erm_gap, fermi_gap)
    scores = torch.sigmoid(model(TEST.X).detach())
    erm_scores = torch.sigmoid(erm_model(TEST.X).detach())
    assert ermi(TEST.y, scores, groups=TEST.group, target=target) < \
        ermi(TEST.y, erm_scores, groups=TEST.group, target=target)
    assert all(math.isfinite(v) for v in hist.frame["train_penalty"])


@pytest.mark.parametrize("target", TARGETS)
def test_batch_size_one_trains(target):
    data = make_biased_classification(1000, seed=0, **BIASED)
    fermi = FERMI(target, lr_w=0.1)
    model, hist = _train(fermi, data=data, batch_size=1, epochs=1, lr=0.01)
    erm, _ = _train(None, data=data, batch_size=1, epochs=1, lr=0.01)
    assert torch.isfinite(_params(model)).all() and torch.isfinite(fermi.W_).all()
    assert not torch.equal(fermi.W_, torch.ones_like(fermi.W_))
    # measured: DP 0.420 -> 0.158, EO 0.347 -> 0.034, EOdds 0.347 -> 0.018
    print(f"{target}, batch 1: ERM {_gap(erm, target):.3f} -> FERMI {_gap(model, target):.3f}")
    assert _gap(model, target) < _gap(erm, target)


# -- the estimator ----------------------------------------------------------------------------
def _cells(y, target):
    return {"dp": [np.ones_like(y, dtype=bool)], "eo": [y == 1], "eodds": [y == 0, y == 1]}[target]


def _ermi_numpy(y, p, s, target, m):
    """Independent plug-in ERMI: loops over cells, predicted classes and groups."""
    y, p, s = np.asarray(y), np.asarray(p, dtype=np.float64), np.asarray(s)
    cells = _cells(y, target)
    total = 0.0
    for mask in cells:
        prob = np.stack([1 - p[mask], p[mask]], 1)
        inner = 0.0
        for j in range(2):
            for r in range(m):
                joint = prob[s[mask] == r, j].sum() / mask.sum()
                p_j, p_r = prob[:, j].mean(), (s[mask] == r).mean()
                inner += joint ** 2 / (p_j * p_r) if p_r > 0 else 0.0
        total += (mask.mean() if target == "eodds" else 1.0) * (inner - 1)
    return total


def _w_star(y, p, s, target, m):
    """The maximiser W* = P(Yhat, S | C) / (P(Yhat | C) P(S | C)), ``[C, 2, m]``."""
    y, p, s = np.asarray(y), np.asarray(p, dtype=np.float64), np.asarray(s)
    cells = _cells(y, target)
    out = np.ones((len(cells), 2, m))
    for c, mask in enumerate(cells):
        prob = np.stack([1 - p[mask], p[mask]], 1)
        for j in range(2):
            for r in range(m):
                if (s[mask] == r).any():
                    out[c, j, r] = prob[s[mask] == r, j].mean() / prob[:, j].mean()
    return torch.from_numpy(out)


def _fixed_model_and_data():
    """Three groups (so the formulas are not special to two), a float64 model."""
    gen = torch.Generator().manual_seed(0)
    n = 400
    s = torch.randint(0, 3, (n,), generator=gen)
    y = (torch.rand(n, generator=gen, dtype=torch.float64) < 0.25 + 0.2 * s).long()
    x = torch.randn(n, 2, generator=gen, dtype=torch.float64) + torch.stack([y - 0.5, s - 1.0], 1)
    model = LogisticRegression(2, seed=0).double()
    with torch.no_grad():
        model.linear.weight.copy_(torch.tensor([[1.5, -1.0]], dtype=torch.float64))
        model.linear.bias.fill_(-0.3)
    data = SimpleData(x, y, s, 3)
    return model, data


class SimpleData:
    def __init__(self, X, y, group, n_groups):
        self.X, self.y, self.group, self.n_groups = X, y, group, n_groups
        self.index = torch.arange(len(y))

    def __len__(self):
        return len(self.y)


@pytest.mark.parametrize("target", TARGETS)
def test_ermi_matches_an_independent_formula(target):
    model, d = _fixed_model_and_data()
    p = torch.sigmoid(model(d.X)).detach()
    expected = _ermi_numpy(d.y, p, d.group, target, 3)
    assert float(ermi(d.y, p, groups=d.group, target=target)) == pytest.approx(expected, rel=1e-12)
    independent = torch.full_like(p, 0.3)
    assert float(ermi(d.y, independent, groups=d.group, target=target)) == \
        pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("target", TARGETS)
def test_penalty_is_unbiased_for_any_batch_size(target):
    """At a fixed model and fixed W the penalty is a mean over rows: the mean of the N
    single-row penalties (and of their gradients) equals the full-batch value to
    round-off; at W = W* that value is lam * ERMI and its gradient ERMI's (Danskin)."""
    model, d = _fixed_model_and_data()
    lam = 3.0
    fermi = FERMI(target, lam=lam).setup(d, model=model)
    assert fermi.W_.dtype == torch.float64
    p = torch.sigmoid(model(d.X)).detach()
    fermi.W_ = _w_star(d.y, p, d.group, target, 3)
    full = Batch(d.X, d.y, d.group, d.index)
    value = ermi(d.y, p, groups=d.group, target=target)
    pen_full = fermi.penalty(full, model(d.X))
    assert float(pen_full.detach()) == pytest.approx(lam * float(value), rel=1e-10, abs=1e-13)
    params = list(model.parameters())
    g_full = torch.autograd.grad(pen_full, params)
    scores = torch.sigmoid(model(d.X))
    g_ermi = torch.autograd.grad(lam * ermi(d.y, scores, groups=d.group, target=target), params)
    for a, b in zip(g_full, g_ermi):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)

    singles, grads = [], []
    for i in range(len(d)):
        row = Batch(d.X[i:i + 1], d.y[i:i + 1], d.group[i:i + 1], d.index[i:i + 1])
        pen = fermi.penalty(row, model(row.x))
        singles.append(pen.detach())
        grads.append(torch.cat([g.flatten() for g in torch.autograd.grad(pen, params)]))
    singles = torch.stack(singles)
    assert float(singles.mean()) == pytest.approx(float(pen_full.detach()), rel=1e-10, abs=1e-13)
    torch.testing.assert_close(torch.stack(grads).mean(0),
                               torch.cat([g.flatten() for g in g_full]), rtol=1e-9, atol=1e-12)

    # random single rows, with replacement: the Monte Carlo mean within 4 standard errors
    draws = singles[torch.randint(0, len(d), (20000,), generator=torch.Generator().manual_seed(1))]
    se = float(draws.std()) / math.sqrt(len(draws))
    assert abs(float(draws.mean()) - lam * float(value)) < 4 * se


@pytest.mark.parametrize("target", TARGETS)
def test_w_update_is_unbiased_and_its_fixed_point_is_w_star(target):
    model, d = _fixed_model_and_data()
    logits = model(d.X).detach()
    start = 1 + 0.5 * torch.rand(FERMI(target).setup(d, model=model).W_.shape,
                                 generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    full = FERMI(target, lr_w=0.5).setup(d, model=model)
    full.W_ = start.clone()
    full.update(Batch(d.X, d.y, d.group, d.index), logits)
    steps = []
    for i in range(len(d)):
        one = FERMI(target, lr_w=0.5).setup(d, model=model)
        one.W_ = start.clone()
        row = slice(i, i + 1)
        one.update(Batch(d.X[row], d.y[row], d.group[row], d.index[row]), logits[row])
        steps.append(one.W_ - start)
    torch.testing.assert_close(torch.stack(steps).mean(0), full.W_ - start, rtol=1e-10, atol=1e-12)
    # full-batch ascent converges to W*, where the penalty is lam * ERMI
    fermi = FERMI(target, lam=1.0, lr_w=1.0).setup(d, model=model)
    for _ in range(300):
        fermi.update(Batch(d.X, d.y, d.group, d.index), logits)
    w_star = _w_star(d.y, torch.sigmoid(logits), d.group, target, 3)
    torch.testing.assert_close(fermi.W_, w_star, rtol=1e-8, atol=1e-10)


# -- the hook ---------------------------------------------------------------------------------
class ZeroPenalty(Regularizer):
    def penalty(self, batch, logits):
        return logits.new_zeros(())


def test_composes_with_reweighing():
    """A zero penalty leaves Reweighing's training bit-identical; FERMI on top of it
    lowers the DP gap further (measured: Reweighing 0.194 -> with FERMI 0.014)."""
    alone, hist = _train(strategy=Reweighing())
    zero, _ = _train(ZeroPenalty(), strategy=Reweighing())
    assert torch.equal(_params(alone), _params(zero))
    both, hist_both = _train(FERMI("dp"), strategy=Reweighing())
    rw_gap, both_gap = _gap(alone, "dp"), _gap(both, "dp")
    print(f"dp: Reweighing {rw_gap:.3f} -> Reweighing + FERMI {both_gap:.3f}")
    assert both_gap < 0.5 * rw_gap
    assert "train_penalty" not in hist.frame and "train_penalty" in hist_both.frame


@pytest.mark.parametrize("strategy", ["GroupDRO", "FairBatch", "L2RW", "FORML"])
def test_composes_with_online_sampling_and_meta_strategies(strategy):
    import fairlib.weighting as weighting

    fermi = FERMI("eo")
    hist = fit(LogisticRegression(2, seed=0), SMALL, strategy=getattr(weighting, strategy)(),
               regularizer=fermi, meta=make_biased_classification(100, seed=3), epochs=2,
               batch_size=32, progress=False)
    assert all(math.isfinite(v) for v in hist.frame["train_penalty"])
    assert torch.isfinite(fermi.W_).all() and not torch.equal(fermi.W_, torch.ones_like(fermi.W_))


def test_same_seed_same_bits():
    runs = []
    for _ in range(2):
        fermi = FERMI("eodds")
        model, hist = _train(fermi, data=SMALL, batch_size=16, epochs=2, seed=7)
        runs.append((_params(model), fermi.W_.clone(), hist.frame))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert runs[0][2].equals(runs[1][2])
    other = FERMI("eodds")
    model, _ = _train(other, data=SMALL, batch_size=16, epochs=2, seed=8)
    assert not torch.equal(_params(model), runs[0][0])


def test_state_dict_round_trip():
    fermi = FERMI("eo", lam=2.0)
    model, _ = _train(fermi, data=SMALL, batch_size=32, epochs=2)
    state = fermi.state_dict()
    assert set(state) == {"W_", "group_prior_", "cell_scale_", "device_"}
    twin = FERMI("eo", lam=2.0).setup(SMALL, model=model)
    twin.load_state_dict(state)
    assert torch.equal(twin.W_, fermi.W_) and twin.W_ is not fermi.W_
    batch = Batch(SMALL.X[:50], SMALL.y[:50], SMALL.group[:50], SMALL.index[:50])
    logits = model(batch.x).detach()
    assert torch.equal(twin.penalty(batch, logits), fermi.penalty(batch, logits))
    twin.update(batch, logits)  # training the copy leaves the original alone
    assert not torch.equal(twin.W_, fermi.W_)
    with pytest.raises(ValueError, match="`state`"):
        twin.load_state_dict({"lam": 1.0})


def test_penalty_and_update_never_sync_with_the_host():
    for target in TARGETS:
        model = LogisticRegression(2, seed=0)
        fermi = FERMI(target).setup(SMALL, model=model)
        idx = torch.arange(40, 90)
        batch = Batch(SMALL.X[idx], SMALL.y[idx], SMALL.group[idx], idx)
        with HostSyncRecorder("cpu") as rec:
            logits = model(batch.x)
            fermi.penalty(batch, logits).backward()
            fermi.update(batch, logits.detach())
        assert rec.ops, "the recorder saw nothing"
        assert not rec.syncs and not rec.foreign, (target, rec.syncs + rec.foreign)


# -- bad arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, name", [
    ({"target": "xyz"}, "target"),
    ({"target": "eqodds"}, "target"),
    ({"lam": -1}, "lam"),
    ({"lam": float("nan")}, "lam"),
    ({"lr_w": float("inf")}, "lr_w"),
    ({"lr_w": 0}, "lr_w"),
    ({"lr_w": 1.5}, "lr_w"),
    ({"lr_w": True}, "lr_w"),
])
def test_bad_parameters_are_refused_before_training(kwargs, name):
    fermi = FERMI(**kwargs)  # the constructor only stores
    assert not any(k.endswith("_") for k in vars(fermi))
    model = LogisticRegression(2, seed=0)
    before = _params(model)
    with pytest.raises(ValueError, match=f"Expected `{name}` to be"):
        fit(model, SMALL, regularizer=fermi, epochs=1, progress=False)
    assert torch.equal(_params(model), before)


def test_bad_regularizer_and_data_are_refused():
    with pytest.raises(TypeError, match="Expected `regularizer` to be a Regularizer"):
        fit(LogisticRegression(2, seed=0), SMALL, regularizer="FERMI", epochs=1, progress=False)
    no_positives = SimpleData(torch.randn(10, 2), torch.zeros(10, dtype=torch.long),
                              torch.arange(10) % 2, 2)
    with pytest.raises(ValueError, match="Expected `train` to be data with positive"):
        FERMI("eo").setup(no_positives)
    with pytest.raises(ValueError, match="`y_score`"):
        ermi([0, 1], [0.5, 1.5], groups=[0, 1])
    with pytest.raises(ValueError, match="`target`"):
        ermi([0, 1], [0.5, 0.5], groups=[0, 1], target="xyz")
    with pytest.raises(ValueError, match="`n_groups`"):
        ermi([0, 1], [0.5, 0.5], groups=[0, 1], n_groups=1)


def test_params_follow_the_estimator_convention():
    fermi = FERMI("eo", lam=2.0, lr_w=0.5)
    assert fermi.get_params() == {"target": "eo", "lam": 2.0, "lr_w": 0.5}
    assert repr(fermi.set_params(lam=1.0)) == "FERMI(target='eo', lam=1.0, lr_w=0.5)"
    with pytest.raises(ValueError, match="`eta`"):
        fermi.set_params(eta=1.0)
    with pytest.raises(NotImplementedError):
        Regularizer().penalty(None, torch.zeros(1))
