"""FairBatch: lambda updates equal hand-computed steps; epoch composition; mode restored.

Its tables are group-major: ``cell_losses_[z, y]`` holds the paper's ``L_yz``.
"""

import math

import pytest
import torch
from torch import nn

from fairlib.datasets import FairDataset, make_biased_classification
from fairlib.train import MLP, LogisticRegression, fit
from fairlib.weighting import FairBatch

# one feature x, the model's logit is scale * x; cells (y, z) with these x values
CELLS = {(1, 1): [0.0], (1, 0): [2.0, 1.0], (0, 1): [0.5], (0, 0): [-1.0, -2.0, -0.5]}


def _tiny():
    xs, ys, zs = [], [], []
    for (y, z), values in CELLS.items():
        xs += values
        ys += [y] * len(values)
        zs += [z] * len(values)
    return FairDataset(X=torch.tensor(xs)[:, None], y=torch.tensor(ys), sensitive={"z": torch.tensor(zs)},
                       categories={"z": ["z0", "z1"]})


class Scaled(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return self.scale * x[:, 0]


def _bce(logit, y):
    return math.log1p(math.exp(-logit)) if y == 1 else math.log1p(math.exp(logit))


def test_eo_step_by_hand():
    # L_11 = bce(0, 1) = log 2 = 0.693; L_10 = mean(log(1+e^-2), log(1+e^-1)) = 0.220 -> lambda_1 up
    fb = FairBatch(target="eo", alpha=0.01).setup(_tiny(), model=Scaled(1.0))
    assert fb.lambda_.tolist() == pytest.approx([1 / 3 + 0.01, 1 / 4], abs=1e-7)
    L = fb.cell_losses_  # [z, y]
    assert float(L[1, 1]) == pytest.approx(math.log(2.0), abs=1e-7)
    assert float(L[0, 1]) == pytest.approx((math.log1p(math.exp(-2)) + math.log1p(math.exp(-1))) / 2, abs=1e-7)
    fb.on_epoch_end(1, Scaled(-1.0))  # now L_11 = log 2 < L_10 = mean(log(1+e^2), log(1+e)) -> down
    assert fb.lambda_.tolist() == pytest.approx([1 / 3, 1 / 4], abs=1e-7)


def test_eqodds_step_by_hand():
    # |L_11 - L_10| = 0.693 - 0.220 = 0.473 < |L_01 - L_00| = 0.974 - 0.305 = 0.669: lambda_2 moves,
    # up because L_01 > L_00
    fb = FairBatch(target="eqodds", alpha=0.01).setup(_tiny(), model=Scaled(1.0))
    L01 = math.log1p(math.exp(0.5))
    L00 = (math.log1p(math.exp(-1)) + math.log1p(math.exp(-2)) + math.log1p(math.exp(-0.5))) / 3
    assert float(fb.cell_losses_[1, 0]) == pytest.approx(L01, abs=1e-7)  # [z, y]
    assert float(fb.cell_losses_[0, 0]) == pytest.approx(L00, abs=1e-7)
    assert fb.lambda_.tolist() == pytest.approx([1 / 3, 1 / 4 + 0.01], abs=1e-7)


def test_dp_step_by_hand():
    # all-ones target: softplus(-x), summed per cell and divided by n_z (n_{z=1} = 2, n_{z=0} = 5)
    fb = FairBatch(target="dp", alpha=0.01).setup(_tiny(), model=Scaled(1.0))
    sp = lambda x: math.log1p(math.exp(-x))  # noqa: E731
    L11, L10 = sp(0.0) / 2, (sp(2.0) + sp(1.0)) / 5
    L01, L00 = sp(0.5) / 2, (sp(-1.0) + sp(-2.0) + sp(-0.5)) / 5
    assert fb.cell_losses_.flatten().tolist() == pytest.approx([L00, L10, L01, L11], abs=1e-7)  # [z, y]
    # |L11 - L10| = 0.259 < |L01 - L00| = 0.646: lambda_2 moves; L01 < L00 -> +alpha (sign reversed)
    assert fb.lambda_.tolist() == pytest.approx([1 / 3, 1 / 4 + 0.01], abs=1e-7)
    # logits -3x: L11 = sp(0)/2 = 0.347, L10 = (sp(-6) + sp(-3))/5 = 1.810, L01 = sp(-1.5)/2 = 0.851,
    # L00 = (sp(3) + sp(6) + sp(1.5))/5 = 0.051: |L11 - L10| = 1.463 > 0.800, lambda_1 moves, down
    fb.on_epoch_end(1, Scaled(-3.0))
    L11, L10 = sp(0.0) / 2, (sp(-6.0) + sp(-3.0)) / 5
    L01, L00 = sp(-1.5) / 2, (sp(3.0) + sp(6.0) + sp(1.5)) / 5
    assert fb.cell_losses_.flatten().tolist() == pytest.approx([L00, L10, L01, L11], abs=1e-7)
    assert fb.lambda_.tolist() == pytest.approx([1 / 3 - 0.01, 1 / 4 + 0.01], abs=1e-7)


def _reference_step(lam, L, target, alpha):
    """The reference code's update, transcribed with Python floats (L[y][z])."""
    l1, l2 = lam
    if target == "eo":
        l1 += alpha if L[1][1] > L[1][0] else -alpha
    elif abs(L[1][1] - L[1][0]) > abs(L[0][1] - L[0][0]):
        l1 += alpha if L[1][1] > L[1][0] else -alpha
    else:
        up = L[0][1] > L[0][0]
        l2 += (alpha if up else -alpha) * (-1 if target == "dp" else 1)
    return [min(max(l1, 0.0), 1.0), min(max(l2, 0.0), 1.0)]


@pytest.mark.parametrize("target", ["eo", "eqodds", "dp"])
def test_several_steps_match_the_reference_rule(target):
    data = make_biased_classification(300, seed=4)
    model = LogisticRegression(2, seed=0)
    fb = FairBatch(target=target, alpha=0.3).setup(data)  # no model: no first adjustment
    lam = fb.lambda_.tolist()
    for epoch in range(1, 6):
        with torch.no_grad():
            model.linear.weight.add_(0.5)
        L = fb.cell_losses(model).T.tolist()  # group-major [z, y] -> the reference's L[y][z]
        fb.on_epoch_end(epoch, model)
        lam = _reference_step(lam, L, target, 0.3)
        assert fb.lambda_.tolist() == pytest.approx(lam, abs=1e-6)


def test_epoch_composition_follows_the_lambdas():
    data = make_biased_classification(400, seed=0)
    fb = FairBatch(target="eqodds").setup(data, generator=torch.Generator().manual_seed(0))
    fb.lambda_ = torch.tensor([0.9, 0.05])
    sizes = fb.epoch_cell_sizes()
    n = torch.bincount(data.group * 2 + data.y, minlength=4).view(2, 2)  # [z, y]
    n1, n0 = int(n[:, 1].sum()), int(n[:, 0].sum())
    assert sizes.tolist() == [[n0 - round(0.05 * n0), n1 - round(0.9 * n1)], [round(0.05 * n0), round(0.9 * n1)]]
    drawn = torch.tensor(list(fb.sampler()))
    assert len(drawn) == len(data)
    got = torch.bincount(data.group[drawn] * 2 + data.y[drawn], minlength=4).view(2, 2)
    assert torch.equal(got, sizes)
    # an over-drawn cell cycles through its members: each appears floor or ceil(m / n_c) times
    cell = (data.y == 1) & (data.group == 1)
    reps = torch.bincount(drawn, minlength=len(data))[cell]
    m, n_c = int(sizes[1, 1]), int(cell.sum())
    assert m > n_c and set(reps.tolist()) <= {m // n_c, -(-m // n_c)}
    eo = FairBatch(target="eo").setup(data)
    eo.lambda_ = torch.tensor([0.5, 0.0])
    assert eo.epoch_cell_sizes()[:, 0].tolist() == n[:, 0].tolist()  # y = 0 keeps its natural mix


def test_trains_restores_mode_and_counts_adjustments():
    data = make_biased_classification(400, seed=0)
    model = MLP(2, hidden=(8,), dropout=0.2, seed=0)
    fb = FairBatch(target="eo", alpha=0.01)
    fb.setup(data, model=model)
    assert model.training  # the loss pass ran in eval mode and restored train mode
    model.eval()
    fb.on_epoch_end(1, model)
    assert not model.training

    class Counting(FairBatch):
        calls = 0

        def _adjust(self, model):
            type(self).calls += 1
            super()._adjust(model)

    fb = Counting(target="eo", alpha=0.01)
    hist = fit(LogisticRegression(2, seed=0), data, strategy=fb, epochs=3, progress=False)
    assert Counting.calls == 4  # once in setup (before epoch 1), then after every epoch
    assert len(hist.frame["lambda"]) == 3 and len(hist.last("lambda")) == 2


@pytest.mark.parametrize(
    "strategy, match",
    [
        (FairBatch(target="equal_opportunity"), r"Expected `target` to be one of 'eo', 'eqodds', 'dp', but got 'equal_opportunity'"),
        (FairBatch(alpha=0.0), r"Expected `alpha` to be a step in \(0, 1\], but got 0.0"),
        (FairBatch(alpha=-0.1), r"Expected `alpha` to be a step in \(0, 1\], but got -0.1"),
    ],
)
def test_bad_arguments(strategy, match):
    with pytest.raises(ValueError, match=match):
        strategy.setup(_tiny())


def test_needs_a_binary_attribute_and_four_cells():
    three = FairDataset(X=torch.zeros(6, 1), y=torch.tensor([0, 1] * 3), sensitive={"r": torch.tensor([0, 0, 1, 1, 2, 2])},
                        categories={"r": ["a", "b", "c"]})
    with pytest.raises(ValueError, match=r"Expected `train` to be a binary active sensitive attribute .* but got 3 groups \('a', 'b', 'c'\)"):
        FairBatch().setup(three)
    empty = make_biased_classification(200, base_rates=(0.5, 0.0), seed=0)
    with pytest.raises(ValueError, match=r"samples in all four .* but got no samples in \(y=1, 'minority'\)"):
        FairBatch().setup(empty)
