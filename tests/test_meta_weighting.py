"""L2RW and FORML: exact meta-gradients, BatchNorm safety, seeds, condensation, fairness effect."""

import pytest
import torch
from torch import nn

from fairlib.datasets import FairDataset, make_biased_classification
from fairlib.train import MLP, LogisticRegression, SmallCNN, fit
from fairlib.weighting.base import Batch
from fairlib.weighting.forml import FORML
from fairlib.weighting.l2rw import L2RW
from fairlib.weighting.meta_objectives import meta_loss

# A task where ERM has an equal-opportunity gap: a weak label signal, and a second
# feature that reveals the group, whose base rate is lower.
TASK = dict(separation=1.0, base_rates=(0.5, 0.2), minority_fraction=0.3)


def _double(ds: FairDataset) -> FairDataset:
    import dataclasses

    out = dataclasses.replace(ds)
    object.__setattr__(out, "X", ds.X.double())
    return out


@pytest.fixture(scope="module")
def small():
    data = make_biased_classification(200, seed=0, **TASK)
    meta = make_biased_classification(60, seed=1, **TASK)
    return data, meta


def _batch(data, n=32, dtype=torch.float64):
    return Batch(data.X[:n].to(dtype), data.y[:n], data.group[:n], torch.arange(n))


def test_l2rw_double_backward_equals_relu_of_per_example_dot_meta_gradient(small):
    data, meta = small
    model = LogisticRegression(2, seed=0).double()
    batch = _batch(data)
    strat = L2RW(method="double_backward", meta_batch_size=10_000).setup(
        data, meta=_double(meta), model=model, generator=torch.Generator().manual_seed(0))
    w = strat.weights(batch, torch.zeros(32, dtype=torch.float64), model) / 32  # back to sum-1
    # by hand: per-example gradients of the BCE at theta, dotted with the mean meta gradient
    x, y = batch.x, batch.y.double()
    p = torch.sigmoid(model(x)).detach()
    g_tr = torch.cat([((p - y)[:, None] * x), (p - y)[:, None]], 1)
    mx, my = meta.X.double(), meta.y.double()
    pm = torch.sigmoid(model(mx)).detach()
    g_meta = torch.cat([((pm - my)[:, None] * mx).mean(0), (pm - my).mean()[None]])
    expected = (g_tr @ g_meta).clamp_min(0)
    expected = expected / expected.sum()
    torch.testing.assert_close(w, expected, atol=1e-6, rtol=0)
    assert (w == 0).any() and (w > 0).any()


@pytest.mark.parametrize("normalize", ["batch", "global_mean", "none"])
def test_forml_closed_form_equals_double_backward(small, normalize):
    data, meta = small
    model = MLP(2, hidden=(5,), seed=0).double()
    batch = _batch(data)
    grads = {}
    for method in ("double_backward", "per_example"):
        strat = FORML(meta_objective="eo_gap", normalize=normalize, method=method, meta_batch_size=10_000).setup(
            data, meta=_double(meta), model=model, generator=torch.Generator().manual_seed(0))
        w = torch.rand(32, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 0.5
        strat.weights_ = strat.weights_.double()
        grads[method] = strat.meta_gradient(batch, model, w)
    torch.testing.assert_close(grads["per_example"], grads["double_backward"], atol=1e-12, rtol=1e-9)
    assert grads["per_example"].abs().max() > 0


def test_lookahead_leaves_batchnorm_statistics_and_mode_alone():
    images = torch.rand(40, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = (torch.arange(40) % 2)
    sens = {"color": torch.arange(40) // 20}
    data = FairDataset(X=images, y=y, sensitive=sens, categories={"color": ["red", "green"]})
    model = SmallCNN(seed=0)
    before = {k: v.clone() for k, v in model.named_buffers()}
    for strat in (L2RW(), FORML()):
        strat.setup(data, meta=data, model=model, generator=torch.Generator().manual_seed(0))
        assert strat.path_ == "double_backward"  # BatchNorm couples samples
        model.train()
        strat.weights(Batch(images[:16], y[:16], sens["color"][:16], torch.arange(16)), torch.zeros(16), model)
        assert model.training
    for k, v in model.named_buffers():
        assert torch.equal(v, before[k]), k


def test_forml_weights_never_negative_and_history_and_condense(small):
    data, meta = small
    forml = FORML(meta_objective="eo_gap", meta_lr=5.0)
    fit(LogisticRegression(2, seed=0), data, strategy=forml, meta=meta, epochs=3, batch_size=32, progress=False)
    assert bool((forml.weights_ >= 0).all()) and len(forml.history_) == 3
    assert not torch.equal(forml.history_[0], forml.history_[-1])
    idx = forml.condense(0.25)
    assert len(idx) == 50 and len(torch.unique(idx)) == 50
    kept_min = forml.weights_[idx].min()
    dropped = torch.ones(len(data), dtype=torch.bool)
    dropped[idx] = False
    assert kept_min >= forml.weights_[dropped].max()


def test_same_seed_same_weights_and_parameters(small):
    data, meta = small
    runs = []
    for _ in range(2):
        forml, model = FORML(meta_lr=3.0), MLP(2, hidden=(6,), seed=1)
        fit(model, data, strategy=forml, meta=meta, epochs=2, batch_size=50, seed=4, progress=False)
        runs.append((forml.weights_.clone(), torch.cat([p.flatten() for p in model.parameters()])))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_forml_lowers_the_equal_opportunity_gap_against_erm():
    data = make_biased_classification(2000, seed=0, **TASK)
    meta = make_biased_classification(400, seed=1, **TASK)
    test = make_biased_classification(6000, seed=2, **TASK)
    kw = dict(meta=meta, test=test, epochs=8, lr=0.05, progress=False)
    erm = fit(LogisticRegression(2, seed=0), data, **kw).frame.iloc[-1]
    forml = fit(LogisticRegression(2, seed=0), data, strategy=FORML(meta_objective="eo_gap"), **kw).frame.iloc[-1]
    assert erm.test_equal_opportunity_difference > 0.05  # the task has a gap to close
    assert forml.test_equal_opportunity_difference < 0.5 * erm.test_equal_opportunity_difference
    assert forml.test_accuracy > erm.test_accuracy - 0.02


def test_meta_objectives_by_hand():
    logits = torch.tensor([2.0, -1.0, 0.5, 0.0, 1.0])
    y, g = torch.tensor([1, 0, 1, 0, 1]), torch.tensor([0, 0, 1, 1, 1])
    ce = nn.functional.binary_cross_entropy_with_logits(logits, y.float(), reduction="none")
    cells = [ce[0], ce[1], (ce[2] + ce[4]) / 2, ce[3]]  # (0,1), (0,0), (1,1), (1,0)
    assert float(meta_loss(logits, y, g, 2, "group_balanced")) == pytest.approx(float(sum(cells) / 4))
    assert float(meta_loss(logits, y, g, 2, "worst_group")) == pytest.approx(float(max(cells)))
    p = torch.sigmoid(logits)
    gap = abs(float(p[0]) - float((p[2] + p[4]) / 2))
    assert float(meta_loss(logits, y, g, 2, "eo_gap", gap_weight=2.0)) == pytest.approx(float(sum(cells) / 4) + 2 * gap)
    # an absent cell is skipped, not counted as zero loss
    only = meta_loss(logits[:2], y[:2], g[:2], 2, "group_balanced")
    assert float(only) == pytest.approx(float((ce[0] + ce[1]) / 2))


@pytest.mark.parametrize(
    "strategy, match",
    [
        (FORML(normalize="softmax"), r"Expected `normalize` to be one of 'batch', 'global_mean', 'none', but got 'softmax'"),
        (FORML(meta_lr=0), r"Expected `meta_lr` to be a finite positive number, but got 0"),
        (FORML(clamp=(-1.0, None)), r"Expected `clamp` to be \(low >= 0, high > low or None\), but got \(-1.0, None\)"),
        (FORML(meta_objective="accuracy"), r"Expected `meta_objective` to be one of 'mean', .* but got 'accuracy'"),
        (L2RW(method="finite_differences"), r"Expected `method` to be one of 'auto', 'double_backward', 'per_example'"),
    ],
)
def test_bad_arguments(small, strategy, match):
    data, meta = small
    with pytest.raises(ValueError, match=match):
        strategy.setup(data, meta=meta, model=LogisticRegression(2))


def test_empty_meta_set_is_refused(small):
    data, _ = small
    with pytest.raises(ValueError, match=r"Expected `meta` to be a non-empty held-out dataset for FORML, but got None"):
        fit(LogisticRegression(2), data, strategy=FORML(), progress=False)


@pytest.mark.parametrize("cls", [L2RW, FORML])
def test_reusing_the_loops_forward_pass_gives_the_same_weights(small, cls):
    """The double-backward path may reuse the loop's attached losses; the result must not change."""
    data, meta = small
    model = MLP(2, hidden=(5,), seed=0).double()
    batch = _batch(data)
    out = []
    for attached in (False, True):
        strat = cls(method="double_backward", meta_batch_size=10_000).setup(
            data, meta=_double(meta), model=model, generator=torch.Generator().manual_seed(0))
        assert strat.needs_graph
        if cls is FORML:
            strat.weights_ = strat.weights_.double()
        losses = nn.functional.binary_cross_entropy_with_logits(model(batch.x), batch.y.double(), reduction="none")
        w = strat.weights(batch, losses if attached else losses.detach(), model)
        if attached:  # the loop can still backpropagate through its own graph afterwards
            (w.detach() * losses).mean().backward()
        out.append(w)
    torch.testing.assert_close(out[0], out[1], atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[
    pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")])])
def test_stratified_draw_is_each_cells_uniform_draw_in_cell_order(small, device):
    """A stratified held-out batch is, cell by cell in order of cell code, ``size // cells``
    rows drawn uniformly with replacement from that cell (one ``randint`` per cell, from the
    strategy's generator): the fast gather gives exactly the rows of that definition."""
    from fairlib.weighting._lookahead import MetaBatches

    _, meta = small
    batches = MetaBatches(meta, None, torch.device(device), seed=7, stratified=True)
    gen = torch.Generator(device=device).manual_seed(7)
    meta = meta.to(device)
    cell = meta.group * 2 + meta.y
    for size in (32, 32, 13, 32):  # a second size gets its own layout; the first comes back
        x, y, g = batches.draw(size)
        per = max(1, size // len(torch.unique(cell)))
        rows = torch.cat([torch.nonzero(cell == c).flatten()[torch.randint(int((cell == c).sum()), (per,),
                                                                             generator=gen, device=device)]
                          for c in torch.unique(cell).tolist()])
        assert torch.equal(x, meta.X[rows]) and torch.equal(y, meta.y[rows]) and torch.equal(g, meta.group[rows])
    x1, _, _ = batches.draw(32)
    x2, _, _ = batches.draw(32)
    assert not torch.equal(x1, x2)  # fresh rows each step, not a cached batch
