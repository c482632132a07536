"""Group DRO: one update computed by hand, absent-group masking, adjustment, training."""

import math

import pytest
import torch

from fairlib.datasets import FairDataset, make_biased_classification
from fairlib.train import LogisticRegression, fit
from fairlib.weighting import Batch, GroupDRO


def _tiny(counts):
    """A dataset whose (group, label) cells 0..3 have the given sizes."""
    cells = torch.repeat_interleave(torch.arange(4), torch.tensor(counts))
    return FairDataset(X=torch.zeros(len(cells), 1), y=cells % 2, sensitive={"g": cells // 2},
                       categories={"g": ["a", "b"]})


def test_one_step_by_hand_with_an_absent_group():
    data = _tiny([4, 1, 9, 2])
    dro = GroupDRO(eta_q=0.5).setup(data)
    assert dro.q_.tolist() == [0.25] * 4
    # batch: cell 0 twice (losses 1 and 3), cell 1 once (0.5), cell 2 once (1.0); cell 3 absent
    y = torch.tensor([0, 0, 1, 0])
    g = torch.tensor([0, 0, 0, 1])
    batch = Batch(torch.zeros(4, 1), y, g, torch.arange(4))
    losses = torch.tensor([1.0, 3.0, 0.5, 1.0])
    # by hand: group means 2, 0.5, 1; q_g exp(0.5 L_g) for the present groups, which share
    # their mass 0.75; the absent group keeps q = 0.25
    e = [0.25 * math.exp(0.5 * 2.0), 0.25 * math.exp(0.5 * 0.5), 0.25 * math.exp(0.5 * 1.0)]
    q = [0.75 * v / sum(e) for v in e] + [0.25]
    w = dro.weights(batch, losses, None)
    # w_i = B q_g / m_g: the weighted mean is sum_g q_g L_g
    expected_w = [4 * q[0] / 2, 4 * q[0] / 2, 4 * q[1], 4 * q[2]]
    assert w.tolist() == pytest.approx(expected_w, abs=1e-6)
    assert float((w * losses).mean()) == pytest.approx(q[0] * 2.0 + q[1] * 0.5 + q[2] * 1.0, abs=1e-6)
    assert dro.q_.tolist() == [0.25] * 4  # weights() does not commit
    dro.update(batch, losses, None)
    assert dro.q_.tolist() == pytest.approx(q, abs=1e-7)
    assert float(dro.q_.sum()) == pytest.approx(1.0, abs=1e-6)


def test_group_adjustment_by_hand():
    data = _tiny([4, 1, 9, 16])
    dro = GroupDRO(eta_q=0.1, adj_C=2.0).setup(data)
    batch = Batch(torch.zeros(4, 1), torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1]), torch.arange(4))
    losses = torch.tensor([0.4, 0.8, 0.2, 0.6])
    adj = [0.4 + 2 / 2, 0.8 + 2 / 1, 0.2 + 2 / 3, 0.6 + 2 / 4]  # L_g + C / sqrt(n_g)
    e = [0.25 * math.exp(0.1 * a) for a in adj]
    q = [v / sum(e) for v in e]
    dro.update(batch, losses, None)
    assert dro.q_.tolist() == pytest.approx(q, abs=1e-7)
    # the adjustment changes q only, never the per-group loss that is minimised
    w = GroupDRO(eta_q=0.0, adj_C=5.0).setup(data).weights(batch, losses, None)
    assert w.tolist() == pytest.approx([1.0] * 4)


def test_groups_are_the_active_attribute_when_asked():
    data = _tiny([4, 1, 9, 2])
    dro = GroupDRO(eta_q=1.0, groups="group").setup(data)
    assert dro.q_.tolist() == [0.5, 0.5]
    batch = Batch(torch.zeros(3, 1), torch.tensor([0, 1, 0]), torch.tensor([0, 0, 1]), torch.arange(3))
    dro.update(batch, torch.tensor([1.0, 3.0, 1.0]), None)
    e = [0.5 * math.exp(2.0), 0.5 * math.exp(1.0)]
    assert dro.q_.tolist() == pytest.approx([v / sum(e) for v in e], abs=1e-7)


def test_group_empty_in_training_stays_at_zero():
    data = _tiny([5, 5, 5, 0])
    with pytest.warns(UserWarning, match=r"GroupDRO: no training samples in 'b, y=1'; their weight q stays 0"):
        dro = GroupDRO(eta_q=1.0).setup(data)
    assert dro.q_.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0.0])
    batch = Batch(torch.zeros(3, 1), torch.tensor([0, 1, 0]), torch.tensor([0, 0, 1]), torch.arange(3))
    dro.update(batch, torch.tensor([1.0, 2.0, 3.0]), None)
    assert float(dro.q_[3]) == 0.0 and torch.isfinite(dro.q_).all()


def _cell_losses(model, data):
    with torch.no_grad():
        losses = torch.nn.functional.binary_cross_entropy_with_logits(model(data.X), data.y.float(),
                                                                       reduction="none")
    cells = data.group * 2 + data.y
    return torch.stack([losses[cells == c].mean() for c in range(4)])


def test_lowers_the_worst_group_loss_relative_to_erm():
    data = make_biased_classification(400, seed=0)
    erm = LogisticRegression(2, seed=0)
    fit(erm, data, epochs=5, lr=0.05, progress=False)
    model, dro = LogisticRegression(2, seed=0), GroupDRO(eta_q=0.1)
    hist = fit(model, data, strategy=dro, epochs=5, lr=0.05, progress=False)
    assert float(dro.q_.sum()) == pytest.approx(1.0, abs=1e-5)
    assert len(hist.frame["group_weights"].iloc[0]) == 4
    erm_losses, dro_losses = _cell_losses(erm, data), _cell_losses(model, data)
    assert float(dro_losses.max()) < float(erm_losses.max()) - 0.1
    # the cells ERM fits worst (the positives, cells 1 and 3) carry most of q
    worst = erm_losses.argsort(descending=True)[:2]
    assert sorted(worst.tolist()) == [1, 3] and float(dro.q_[worst].sum()) > 0.55


def test_state_dict_round_trip():
    data = _tiny([4, 4, 4, 4])
    dro = GroupDRO(eta_q=1.0).setup(data)
    batch = Batch(torch.zeros(2, 1), torch.tensor([0, 1]), torch.tensor([0, 1]), torch.arange(2))
    dro.update(batch, torch.tensor([2.0, 0.1]), None)
    other = GroupDRO(eta_q=1.0).setup(data)
    other.load_state_dict(dro.state_dict())
    assert torch.equal(other.q_, dro.q_)
    assert torch.equal(other.weights(batch, torch.ones(2), None), dro.weights(batch, torch.ones(2), None))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"eta_q": -0.1}, r"Expected `eta_q` to be a non-negative step size, but got -0.1"),
        ({"adj_C": -1.0}, r"Expected `adj_C` to be a non-negative adjustment, but got -1.0"),
        ({"eta_q": "fast"}, r"Expected `eta_q` to be a non-negative step size, but got 'fast'"),
        ({"groups": "label"}, r"Expected `groups` to be one of 'group', 'group_label', but got 'label'"),
    ],
)
def test_bad_arguments(kwargs, match):
    strategy = GroupDRO(**kwargs)  # the constructor only stores
    with pytest.raises(ValueError, match=match):
        strategy.setup(_tiny([2, 2, 2, 2]))
