"""JTT: error set, automatic factor, upsampled epochs vs upweighted loss, the two-stage driver."""

import pytest
import torch

from fairlib.datasets import make_biased_classification
from fairlib.train import MLP, LogisticRegression, fit, train_twice
from fairlib.weighting import JTT, Batch


@pytest.fixture(scope="module")
def data():
    return make_biased_classification(400, seed=0)


@pytest.fixture(scope="module")
def stage1(data):
    model = LogisticRegression(2, seed=0)
    fit(model, data, epochs=2, lr=0.05, progress=False)
    return model


def test_error_set_and_automatic_factor(data, stage1):
    jtt = JTT().identify_errors(stage1, data)
    with torch.no_grad():
        wrong = (torch.sigmoid(stage1(data.X)) >= 0.5).long() != data.y
    assert torch.equal(jtt.error_mask_, wrong)
    n_err = int(wrong.sum())
    assert 0 < n_err < len(data) / 2
    assert jtt.up_weight_ == int((len(data) - n_err) / n_err) - 1  # the reference's int(...) - 1
    assert JTT(up_weight=7).identify_errors(stage1, data).up_weight_ == 7


def test_upsampled_epoch_repeats_each_error_point(data, stage1):
    jtt = JTT(up_weight=3).identify_errors(stage1, data).setup(data, generator=torch.Generator().manual_seed(0))
    sampler = jtt.sampler()
    epoch = torch.tensor(list(sampler))
    err = jtt.error_mask_
    assert len(epoch) == len(sampler) == len(data) + 3 * int(err.sum())
    seen = torch.bincount(epoch, minlength=len(data))
    assert torch.equal(seen, torch.where(err, 4, 1))  # lambda_up + 1 copies, exactly, every epoch
    assert not torch.equal(torch.tensor(list(sampler)), epoch)  # reshuffled next epoch
    ones = torch.ones(5)
    batch = Batch(data.X[:5], data.y[:5], data.group[:5], torch.arange(5))
    assert torch.equal(jtt.weights(batch, ones, None), ones)


def test_upweighting_mode_and_its_gradient_relation(data, stage1):
    up = JTT(up_weight=3, mode="upweight").identify_errors(stage1, data).setup(data)
    assert up.sampler() is None
    batch = Batch(data.X, data.y, data.group, torch.arange(len(data)))
    w = up.weights(batch, torch.ones(len(data)), None)
    assert torch.equal(w, torch.where(up.error_mask_, 4.0, 1.0))
    # full-batch gradient of mean(w * loss) = (epoch size / N) x mean gradient over the upsampled epoch
    sampler = JTT(up_weight=3).identify_errors(stage1, data).setup(data).sampler()
    epoch = torch.tensor(list(sampler))
    model = LogisticRegression(2, seed=3).double()
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
    g_w = torch.autograd.grad((w.double() * loss_fn(model(data.X.double()), data.y.double())).mean(),
                              list(model.parameters()))
    g_s = torch.autograd.grad(loss_fn(model(data.X[epoch].double()), data.y[epoch].double()).mean(),
                              list(model.parameters()))
    for a, b in zip(g_w, g_s):
        assert torch.allclose(a, b * len(epoch) / len(data), atol=1e-12)
    frac = JTT(up_weight=2.5, mode="upweight").identify_errors(stage1, data)
    assert frac.up_weight_ == 2.5


def test_identify_errors_restores_mode_and_runs_on_the_model_device(data):
    model = MLP(2, hidden=(4,), dropout=0.5, seed=0)
    JTT().identify_errors(model, data)
    assert model.training
    model.eval()
    JTT().identify_errors(model, data)
    assert not model.training


def test_no_error_and_too_many_errors_warn():
    data = make_biased_classification(200, separation=12.0, seed=0)
    model = LogisticRegression(2, seed=0)
    fit(model, data, epochs=20, lr=0.1, progress=False)
    with pytest.warns(UserWarning, match="error set is empty and stage 2 is plain ERM"):
        jtt = JTT().identify_errors(model, data)
    assert jtt.up_weight_ == 0
    flipped = LogisticRegression(2, seed=0)
    with torch.no_grad():
        flipped.linear.weight.copy_(-model.linear.weight)
        flipped.linear.bias.copy_(-model.linear.bias)
    with pytest.warns(UserWarning, match="is negative; using 0"):
        assert JTT().identify_errors(flipped, data).up_weight_ == 0


def test_train_twice_uses_a_fresh_model(data):
    made = []

    def make():
        made.append(LogisticRegression(2, seed=0))
        return made[-1]

    run = train_twice(make, data, stage1_epochs=2, up_weight=-1, epochs=2, lr=0.05,
                      stage1_kwargs={"lr": 0.05}, seed=1, progress=False)
    assert len(made) == 2 and run.stage1_model is made[0] and run.model is made[1]
    assert len(run.stage1_history.rows) == 2 and len(run.history.rows) == 2
    # stage 1 is plain ERM: the same as fitting by hand
    ref = LogisticRegression(2, seed=0)
    fit(ref, data, epochs=2, lr=0.05, seed=1, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(ref.parameters(), run.stage1_model.parameters()))
    assert torch.equal(run.strategy.error_mask_, JTT().identify_errors(ref, data).error_mask_)
    assert run.history.last("error_set_size") == int(run.strategy.error_mask_.sum())
    assert not torch.equal(run.model.linear.weight, run.stage1_model.linear.weight)


def test_bad_arguments(data, stage1):
    with pytest.raises(ValueError, match=r"call `jtt.identify_errors\(stage1_model, train\)` before `fit`"):
        JTT().setup(data)
    with pytest.raises(ValueError, match=r"Expected `up_weight` to be -1 \(automatic\) or a non-negative number of extra copies, but got -3"):
        JTT(up_weight=-3).identify_errors(stage1, data)
    with pytest.raises(ValueError, match=r"Expected `up_weight` to be an integer number of extra copies with mode='upsample', but got 2.5"):
        JTT(up_weight=2.5).identify_errors(stage1, data)
    with pytest.raises(ValueError, match=r"Expected `mode` to be one of 'upweight', 'upsample', but got 'both'"):
        JTT(mode="both").identify_errors(stage1, data)
    jtt = JTT().identify_errors(stage1, data)
    with pytest.raises(ValueError, match=r"Expected `train` to be the 400 samples the error set was identified on, but got 100 samples"):
        jtt.setup(data.subset(slice(0, 100)))
    with pytest.raises(ValueError, match=r"Expected `stage1_epochs` to be a positive integer, but got 0"):
        train_twice(lambda: LogisticRegression(2), data, stage1_epochs=0)
