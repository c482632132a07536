"""The training loop: reproducible, device-agnostic, honest about bad arguments."""

import pytest
import torch

from fairlib.datasets import make_biased_classification, make_colored_digits
from fairlib.train import (
    MLP,
    LogisticRegression,
    SmallCNN,
    evaluate,
    fit,
    per_sample_grads,
    predict_scores,
)
from fairlib.weighting import ERM, WeightingStrategy


@pytest.fixture(scope="module")
def data():
    return make_biased_classification(600, seed=1)


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_same_seed_same_parameters_and_history(data):
    runs = []
    for _ in range(2):
        model = MLP(2, hidden=(8,), seed=3)
        hist = fit(model, data, test=data, epochs=3, batch_size=64, seed=5, progress=False)
        runs.append((_params(model), hist.frame))
    assert torch.equal(runs[0][0], runs[1][0])
    assert runs[0][1].equals(runs[1][1])
    other = MLP(2, hidden=(8,), seed=3)
    fit(other, data, epochs=3, batch_size=64, seed=6, progress=False)
    assert not torch.equal(_params(other), runs[0][0])


def test_erm_learns_and_history_records_metrics(data):
    model = LogisticRegression(2, seed=0)
    hist = fit(model, data, meta=data, test=data, epochs=5, lr=0.05, progress=False)
    frame = hist.frame
    assert list(frame.index) == [1, 2, 3, 4, 5]
    assert frame["train_loss"].iloc[-1] < frame["train_loss"].iloc[0]
    assert hist.last("test_accuracy") > 0.75
    for col in ("meta_accuracy", "test_worst_group_accuracy", "test_equal_opportunity_difference"):
        assert col in frame
    report = evaluate(model, data)
    assert report.by_group["n"].sum() == len(data)
    assert float(report.overall["accuracy"]) == pytest.approx(hist.last("test_accuracy"))
    scores = predict_scores(model, data)
    assert scores.shape == (len(data),) and bool(((scores >= 0) & (scores <= 1)).all())


def test_weights_from_the_strategy_are_used(data):
    class OnlyGroupZero(WeightingStrategy):
        def weights(self, batch, losses, model):
            return (batch.group == 0).float()

    base = LogisticRegression(2, seed=0)
    weighted = LogisticRegression(2, seed=0)
    fit(base, data, epochs=2, progress=False)
    fit(weighted, data, strategy=OnlyGroupZero(), epochs=2, progress=False)
    assert not torch.equal(_params(base), _params(weighted))


def test_small_cnn_trains_on_colored_digits():
    splits = make_colored_digits(seed=0)
    train = splits.train
    model = SmallCNN(seed=0)
    before = _params(model).clone()
    hist = fit(model, train, epochs=1, batch_size=64, progress=False)
    assert torch.isfinite(torch.tensor(hist.last("train_loss")))
    assert not torch.equal(_params(model), before)  # the optimiser stepped


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, r"Expected `epochs` to be a positive integer, but got 0"),
        ({"batch_size": 2.5}, r"Expected `batch_size` to be a positive integer, but got 2.5"),
        ({"lr": -1.0}, r"Expected `lr` to be a finite positive number, but got -1.0"),
        ({"optimizer": "lbfgs"}, r"Expected `optimizer` to be one of 'sgd', 'adam' or a callable, but got 'lbfgs'"),
    ],
)
def test_bad_arguments(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit(LogisticRegression(2), data, progress=False, **kwargs)


def test_strategy_that_needs_meta_refuses_none(data):
    class NeedsMeta(ERM):
        requires_meta = True

    with pytest.raises(ValueError, match=r"Expected `meta` to be a non-empty held-out dataset for NeedsMeta, but got None"):
        fit(LogisticRegression(2), data, strategy=NeedsMeta(), progress=False)


# -- per-sample gradients ---------------------------------------------------------------------
def test_per_sample_grads_match_the_logistic_closed_form():
    data = make_biased_classification(600, minority_fraction=0.1, seed=3)
    model = LogisticRegression(2, seed=0).double()
    with torch.no_grad():
        model.linear.weight.copy_(torch.tensor([[0.8, -0.3]]))
        model.linear.bias.fill_(0.1)
    grads = per_sample_grads(model, data.X.double(), data.y)
    X = torch.cat([data.X.double(), torch.ones(len(data), 1, dtype=torch.float64)], 1)
    theta = torch.tensor([0.8, -0.3, 0.1], dtype=torch.float64)
    closed = (torch.sigmoid(X @ theta) - data.y.double())[:, None] * X
    assert grads.shape == (len(data), 3)
    assert torch.allclose(grads, closed, atol=1e-14)


def test_per_sample_grads_match_autograd_row_by_row_on_an_mlp(data):
    model = MLP(2, hidden=(5,), dropout=0.5, seed=1).double().train()
    x, y = data.X[:7].double(), data.y[:7]
    got = per_sample_grads(model, x, y, chunk_size=3)  # several chunks
    assert model.training  # mode restored
    model.eval()
    for i in range(len(x)):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x[i:i + 1]),
                                                                    y[i:i + 1].double())
        ref = torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(model.parameters()))])
        assert torch.allclose(got[i], ref, atol=1e-12)


def test_per_sample_grads_refuses_bad_arguments(data):
    model = LogisticRegression(2, seed=0)
    with pytest.raises(ValueError, match="`chunk_size` to be a positive integer"):
        per_sample_grads(model, data.X, data.y, chunk_size=0)
    with pytest.raises(ValueError, match="same number of rows"):
        per_sample_grads(model, data.X, data.y[:-1])
