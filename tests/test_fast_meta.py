"""L2RW and FORML with ``method="last_layer"``: the closed-form meta-gradients through the
final linear layer (fairlib/weighting/_last_layer.py)."""

import dataclasses
import pytest
import torch
from torch import nn

from fairlib.datasets import FairDataset, make_biased_classification
from fairlib.train import MLP, LogisticRegression, SmallCNN, fit
from fairlib.weighting import check_strategy
from fairlib.weighting.base import Batch
from fairlib.weighting.forml import FORML
from fairlib.weighting.l2rw import L2RW


def tabular(n: int, d: int, seed: int) -> FairDataset:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen)
    group = (torch.rand(n, generator=gen) < 0.3).long()
    y = (torch.rand(n, generator=gen) < torch.sigmoid(x[:, :3].sum(1) - 0.8 * group)).long()
    return FairDataset(X=x, y=y, sensitive={"group": group}, categories={"group": ["a", "b"]})


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def _batch(data: FairDataset, idx: torch.Tensor, dtype=torch.float32) -> Batch:
    return Batch(data.X[idx].to(dtype), data.y[idx], data.group[idx], idx)


def _setup(cls, data, meta, model, **kw):
    return cls(**kw).setup(data, meta=meta, model=model, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("cls", [L2RW, FORML])
def test_last_layer_scores_rank_correlate_with_the_exact_ones_on_an_mlp(cls):
    """Per-batch Spearman correlation of the pre-normalisation scores (L2RW: -dL/deps;
    FORML: dL/dw), same batch, held-out batch and parameters, over 20 steps of training
    with the exact weights. Measured with seed 0: mean 0.81 (L2RW) and 0.89 (FORML);
    over seeds 0-5 the means ranged 0.72-0.96. Bound: 0.6."""
    steps, bs = 20, 64
    train, meta = tabular(bs * steps, 10, 0), tabular(200, 10, 100)
    model = MLP(10, (16, 16), seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    exact = _setup(cls, train, meta, model)
    fast = _setup(cls, train, meta, model, method="last_layer")
    corr = []
    for k in range(steps):
        idx = torch.arange(k * bs, (k + 1) * bs)
        batch = _batch(train, idx)
        losses = nn.functional.binary_cross_entropy_with_logits(model(batch.x), batch.y.float(), reduction="none")
        if cls is L2RW:
            f = fast.raw_scores(batch, model)  # reuses the forward above through the hooks
            e = exact.raw_scores(batch, model, losses)
            w = e.clamp_min(0)
            w = w / w.sum().clamp_min(1e-12) * bs
        else:
            w_now = exact.weights_[idx]
            f = fast.meta_gradient(batch, model, w_now)
            e = exact.meta_gradient(batch, model, w_now, losses)
            w = torch.ones(bs)
        corr.append(rank_correlation(f, e))
        opt.zero_grad()
        (w.detach() * losses).mean().backward()
        opt.step()
    assert sum(corr) / len(corr) > 0.6, corr


@pytest.mark.parametrize("cls, kw", [
    (L2RW, {}),
    (L2RW, {"meta_objective": "group_balanced"}),
    (FORML, {}),
    (FORML, {"meta_objective": "mean", "normalize": "global_mean"}),
    (FORML, {"meta_objective": "eo_gap", "normalize": "none", "lookahead_lr": 0.5}),
    (FORML, {"meta_objective": "worst_group"}),
])
def test_logistic_regression_last_layer_is_exact(cls, kw):
    """The final layer is the whole model: the closed form is the exact meta-gradient
    (float64, against the per-example-gradient and double-backward paths)."""
    data, meta = make_biased_classification(200, seed=0), make_biased_classification(60, seed=1)
    meta = dataclasses.replace(meta)
    object.__setattr__(meta, "X", meta.X.double())  # float64 held-out rows (the dataset keeps float32)
    idx = torch.arange(48)
    batch = _batch(data, idx, torch.float64)
    w = torch.rand(48, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 0.5
    out = {}
    for method in ("double_backward", "per_example", "last_layer"):
        model = LogisticRegression(2, seed=0).double()
        s = _setup(cls, data, meta, model, method=method, meta_batch_size=40, **kw)
        model(batch.x)  # the loop's forward, which the last-layer path reuses
        if cls is L2RW:
            out[method] = s.raw_scores(batch, model)
        else:
            s.weights_ = s.weights_.double()
            out[method] = s.meta_gradient(batch, model, w)
    assert out["last_layer"].abs().max() > 0
    torch.testing.assert_close(out["last_layer"], out["double_backward"], atol=1e-12, rtol=1e-9)
    torch.testing.assert_close(out["last_layer"], out["per_example"], atol=1e-12, rtol=1e-9)


@pytest.mark.parametrize("cls", [L2RW, FORML])
def test_captured_features_give_the_same_scores_as_a_fresh_forward(cls):
    """With the loop's forward (hooks) or without (features computed again): same scores."""
    train, meta = tabular(128, 6, 0), tabular(80, 6, 1)
    model = MLP(6, (8,), seed=0)
    batch = _batch(train, torch.arange(64))
    out = []
    for forward_first in (True, False):
        s = _setup(cls, train, meta, model, method="last_layer")
        if forward_first:
            model(batch.x)
        out.append(s.raw_scores(batch, model) if cls is L2RW
                   else s.meta_gradient(batch, model, s.weights_[batch.index]))
    torch.testing.assert_close(out[0], out[1], atol=1e-6, rtol=1e-5)


class NoHook(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)


class WrongHook(NoHook):
    def split_final(self):
        return nn.Identity(), nn.Linear(2, 1)  # not the layers forward uses


@pytest.mark.parametrize("cls", [L2RW, FORML])
def test_a_model_without_the_hook_is_refused_naming_the_method(cls):
    data, meta = make_biased_classification(100, seed=0), make_biased_classification(40, seed=1)
    with pytest.raises(ValueError, match=r"Expected a model with a `split_final\(\)` method .* for "
                                         r"`method='last_layer'`, but got NoHook without one"):
        fit(NoHook(), data, strategy=cls(method="last_layer"), meta=meta, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"`method='last_layer'`.* such that model\(x\) == "
                                         r"head\(features\(x\)\)"):
        fit(WrongHook(), data, strategy=cls(method="last_layer"), meta=meta, epochs=1, progress=False)


@pytest.mark.parametrize("cls", [L2RW, FORML])
def test_check_strategy_passes(cls):
    check_strategy(cls(method="last_layer"))
    check_strategy(cls(method="last_layer", meta_objective="eo_gap"), model=MLP(2, (8,), seed=0))


@pytest.mark.parametrize("cls", [L2RW, FORML])
def test_same_seed_same_run_and_no_hooks_left(cls):
    data, meta = make_biased_classification(300, seed=0), make_biased_classification(80, seed=1)
    runs = []
    for _ in range(2):
        model = MLP(2, (8,), seed=1)
        hist = fit(model, data, strategy=cls(method="last_layer"), meta=meta, epochs=2, batch_size=50,
                   seed=3, progress=False)
        runs.append((hist.frame, [p.detach().clone() for p in model.parameters()]))
        assert not model._forward_pre_hooks and not model.net[-1]._forward_hooks
    assert runs[0][0].equals(runs[1][0])
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


@pytest.mark.parametrize("cls", [L2RW, FORML])
def test_smallcnn_trains_and_batchnorm_statistics_move_only_with_the_loop(cls):
    """The held-out forward runs on copies of the BatchNorm buffers: with the parameters
    held still (lr 0) the running statistics end as with the exact path, which leaves
    them alone (tests/test_meta_weighting.py), i.e. they move with the loop's forwards only."""
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(64, 3, 8, 8, generator=gen)
    y = torch.arange(64) % 2
    sens = {"color": (torch.arange(64) // 8) % 2}
    data = FairDataset(X=images, y=y, sensitive=sens, categories={"color": ["red", "green"]})
    states = {}
    for method in ("double_backward", "last_layer"):
        model = SmallCNN(width=4, seed=0)
        fit(model, data, strategy=cls(method=method), meta=data, epochs=2, batch_size=16,
            optimizer=lambda params: torch.optim.SGD(params, lr=0.0), progress=False)
        states[method] = {k: v for k, v in model.state_dict().items() if "running" in k or "tracked" in k}
    for k, v in states["double_backward"].items():
        assert torch.equal(states["last_layer"][k], v), k


def test_split_final_of_the_reference_models():
    x = torch.randn(5, 3, 8, 8)
    for model in (LogisticRegression(192, seed=0), MLP(192, (8, 4), seed=0), SmallCNN(seed=0).eval()):
        features, head = model.split_final()
        assert isinstance(head, nn.Linear) and head.out_features == 1
        torch.testing.assert_close(head(features(x)).squeeze(-1), model(x))


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 3)
        self.b = nn.Linear(3, 3)
        self.b.weight = self.a.weight  # tied: one tensor under two names
        self.norm = nn.BatchNorm1d(3)
        self.out = nn.Linear(3, 1)

    def forward(self, x):
        return self.out(self.norm(self.b(torch.relu(self.a(x))))).squeeze(-1)


@pytest.mark.parametrize("make", [Tied, lambda: SmallCNN(width=4, seed=0)])
def test_exact_path_call_equals_functional_call_bit_for_bit(make):
    """The exact lookahead's forward at given parameters (fairlib/weighting/_lookahead.py
    ``_logits``) computes what ``torch.func.functional_call`` does, and leaves the model's
    own parameters and buffers in place."""
    from torch.func import functional_call

    from fairlib.weighting import _lookahead as la

    torch.manual_seed(0)
    model = make().train()
    x = torch.randn(6, 3) if isinstance(model, Tied) else torch.randn(6, 3, 8, 8)
    own = {k: v for k, v in [*model.named_parameters(), *model.named_buffers()]}
    before = {k: v.clone() for k, v in own.items()}
    params = {k: v * 1.5 for k, v in model.named_parameters()}
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    for _ in range(2):  # the second call uses the cached layout
        got = la._logits(model, params, buffers, x)
        want = functional_call(model, (params, {k: v.clone() for k, v in buffers.items()}), (x,))
        assert torch.equal(got, want)
    now = {k: v for k, v in [*model.named_parameters(), *model.named_buffers()]}
    assert all(now[k] is own[k] and torch.equal(own[k], before[k]) for k in own)
    assert all(torch.equal(buffers[k], before[k]) for k in buffers)  # the clones took the updates


def test_cached_group_balanced_share_changes_no_bit():
    """Held-out batches with a fixed cell layout reuse each row's group-balanced share:
    the logit gradient is the one computed afresh, to the bit, batch after batch."""
    from fairlib.weighting._last_layer import logit_grad
    from fairlib.weighting._lookahead import MetaBatches

    meta = tabular(300, 4, 5)
    batches = MetaBatches(meta, 48, torch.device("cpu"), seed=2, stratified=True)
    shares: dict = {}
    for step in range(4):
        _, y, g = batches.draw(128)
        z = torch.randn(len(y), generator=torch.Generator().manual_seed(step))
        fresh = logit_grad("group_balanced", None, z, y, g)
        assert torch.equal(logit_grad("group_balanced", None, z, y, g, shares), fresh)
    assert len(shares) == 1
    unstratified = MetaBatches(meta, 48, torch.device("cpu"), seed=2, stratified=False)
    assert not unstratified.fixed_cells  # cell sizes vary by draw: nothing cached
