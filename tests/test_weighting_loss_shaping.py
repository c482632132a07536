"""LossShaping (Sow et al., ICLR 2025): closed forms per shape, limits, the equal-losses guard,
burn-in, determinism, bad parameters, and training through fit and fairlib.experiments."""

import math

import pytest
import torch

from fairlib.datasets import make_biased_classification
from fairlib.experiments import RunSpec, execute
from fairlib.experiments.registry import methods
from fairlib.train import LogisticRegression, fit
from fairlib.weighting import ERM, LossShaping, check_strategy, clone

SHAPES = ["linupper", "quadratic", "extremes", "upper"]


def _reference(losses, shape, r=1.0, delta=1.0):
    """The reference code's h_func / f_func_* / g_func in plain Python, scaled to mean 1."""
    lo, hi = min(losses), max(losses)
    rng = max(hi - lo, 1e-6)
    h = [2 * delta * v / rng - delta * (hi + lo) / rng for v in losses]
    f = {"linupper": lambda x: min(x + delta, delta), "quadratic": lambda x: 1 - x**2 / delta**2,
         "extremes": abs, "upper": lambda x: 0.5 * x + 0.5 * delta}[shape]
    fs = [f(x) for x in h]
    e = [math.exp((v - max(fs)) / r) for v in fs]
    return [len(e) * v / sum(e) for v in e]


def _w(strategy, losses):
    losses = losses if torch.is_tensor(losses) else torch.tensor(losses, dtype=torch.float32)
    return strategy.setup(None).weights(None, losses, None)


# -- closed forms -----------------------------------------------------------------------------
#: losses [0, 1, 2, 4] -> h = [-1, -0.5, 0, 1] (delta = 1); f by hand per shape.
HAND_F = {"linupper": [0, 0.5, 1, 1], "quadratic": [0, 0.75, 1, 0],
          "extremes": [1, 0.5, 0, 1], "upper": [0, 0.25, 0.5, 1]}


@pytest.mark.parametrize("shape", SHAPES)
def test_closed_form_by_hand(shape):
    e = [math.exp(v) for v in HAND_F[shape]]
    expected = [4 * v / sum(e) for v in e]
    w = _w(LossShaping(shape), [0.0, 1.0, 2.0, 4.0])
    assert w.tolist() == pytest.approx(expected, rel=1e-6)
    assert float(w.mean()) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("r, delta", [(0.5, 2.0), (3.0, 0.25)])
def test_matches_the_reference_formulas(shape, r, delta):
    losses = torch.rand(17, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 3
    w = _w(LossShaping(shape, r=r, delta=delta), losses)
    assert w.dtype == torch.float64
    assert w.tolist() == pytest.approx(_reference(losses.tolist(), shape, r, delta), rel=1e-9)


@pytest.mark.parametrize("shape", SHAPES)
def test_weights_ignore_the_loss_scale_and_offset(shape):
    losses = torch.tensor([0.2, 0.9, 0.4, 1.7, 0.05], dtype=torch.float64)
    s = LossShaping(shape, r=0.7)
    assert torch.allclose(_w(s, losses), _w(s, 10 * losses + 3), rtol=1e-12)


def test_which_rows_each_shape_favours():
    losses = [0.0, 1.0, 2.0, 4.0]
    assert _w(LossShaping("upper"), losses).argmax() == 3
    assert _w(LossShaping("quadratic"), losses).argmax() == 2
    ext = _w(LossShaping("extremes"), losses)
    assert float(ext[0]) == pytest.approx(float(ext[3])) and ext.argmin() == 2
    lin = _w(LossShaping("linupper"), losses)
    assert float(lin[2]) == float(lin[3]) and lin.argmin() == 0  # flat above the midpoint


def test_delta_only_matters_through_delta_over_r():
    losses = [0.3, 0.1, 0.8, 0.5]
    for shape in ("linupper", "extremes", "upper"):
        assert torch.allclose(_w(LossShaping(shape, r=2.0, delta=2.0), losses),
                              _w(LossShaping(shape, r=1.0, delta=1.0), losses))
    assert torch.allclose(_w(LossShaping("quadratic", delta=5.0), losses),
                          _w(LossShaping("quadratic", delta=1.0), losses))


# -- limits and the equal-losses guard ----------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
def test_large_r_gives_uniform_weights(shape):
    losses = [0.1, 2.0, 0.7, 5.0, 0.0]
    assert torch.allclose(_w(LossShaping(shape, r=1e8), losses), torch.ones(5))
    assert _w(LossShaping(shape, r=math.inf), losses).tolist() == [1.0] * 5  # exactly


def test_small_r_puts_the_weight_on_the_favoured_row():
    w = _w(LossShaping("upper", r=1e-3), [0.1, 0.5, 3.0, 0.2])
    assert w.tolist() == pytest.approx([0, 0, 4, 0], abs=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("losses", [[0.3] * 7, [0.0] * 5, [12.5], [1e-30, 1e-30]])
def test_equal_losses_give_exactly_uniform_weights(shape, losses):
    w = _w(LossShaping(shape, r=0.01), losses)
    assert w.tolist() == [1.0] * len(losses)


@pytest.mark.parametrize("shape", SHAPES)
def test_nearly_equal_losses_stay_finite_and_near_uniform(shape):
    w = _w(LossShaping(shape), [0.5, 0.5 + 1e-9, 0.5 - 1e-9])
    assert torch.isfinite(w).all() and torch.allclose(w, torch.ones(3), atol=1e-6)


# -- burn-in, state, determinism -----------------------------------------------------------------
def test_burn_in_gives_ones_then_reweights():
    s = LossShaping("upper", burn_in_steps=2).setup(None)
    losses = torch.tensor([0.0, 1.0, 2.0, 4.0])
    for _ in range(2):
        assert s.weights(None, losses, None).tolist() == [1.0] * 4
        s.update(None, losses, None)
    assert s.steps_done_ == 2
    assert torch.allclose(s.weights(None, losses, None), _w(LossShaping("upper"), losses))
    s.update(None, losses, None)
    s.on_epoch_end(1, None)
    assert 0 < float(s.diagnostics()["ess_fraction"]) < 1  # two uniform steps, one not


def test_state_dict_carries_the_burn_in_progress():
    s = LossShaping("extremes", burn_in_steps=3).setup(None)
    losses = torch.tensor([0.1, 0.4, 0.9])
    for _ in range(3):
        s.update(None, losses, None)
    fresh = clone(s).setup(None)
    assert fresh.weights(None, losses, None).tolist() == [1.0] * 3
    fresh.load_state_dict(s.state_dict())
    assert torch.equal(fresh.weights(None, losses, None), s.weights(None, losses, None))
    assert fresh.setup(None).steps_done_ == 0  # setup starts over


@pytest.mark.parametrize("shape", SHAPES)
def test_check_strategy(shape):
    check_strategy(LossShaping(shape))
    check_strategy(LossShaping(shape, r=0.2, delta=3.0, burn_in_steps=2))


def test_check_strategy_with_r_inf():
    check_strategy(LossShaping("quadratic", r=math.inf))


# -- bad parameters ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(shape="xyz"), r"Expected `shape` to be one of 'linupper', 'quadratic', 'extremes', "
                            r"'upper', but got 'xyz'"),
        (dict(shape="mid"), r"`shape`.*but got 'mid'"),
        (dict(shape=None), r"`shape`.*but got None"),
        (dict(r=0), r"Expected `r` to be a positive temperature \(math.inf for uniform weights\), "
                    r"but got 0\."),
        (dict(r=-1.0), r"`r`.*but got -1.0"),
        (dict(r=float("nan")), r"`r`.*but got nan"),
        (dict(r=-math.inf), r"`r`.*but got -inf"),
        (dict(r="1"), r"`r`.*but got '1'"),
        (dict(r=True), r"`r`.*but got True"),
        (dict(delta=0.0), r"Expected `delta` to be a finite positive half-width, but got 0.0"),
        (dict(delta=-1), r"`delta`.*but got -1"),
        (dict(delta=math.inf), r"`delta`.*but got inf"),
        (dict(burn_in_steps=-1),
         r"Expected `burn_in_steps` to be a non-negative integer, but got -1"),
        (dict(burn_in_steps=2.5), r"`burn_in_steps`.*but got 2.5"),
        (dict(burn_in_steps=True), r"`burn_in_steps`.*but got True"),
    ],
)
def test_bad_parameters_name_the_argument(kwargs, match):
    s = LossShaping(**kwargs)  # the constructor only stores
    with pytest.raises(ValueError, match=match):
        s.check_params()
    with pytest.raises(ValueError, match=match):
        s.setup(None)
    model = LogisticRegression(2, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=match):
        fit(model, make_biased_classification(50, seed=0), strategy=s, epochs=1, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # nothing trained


# -- training ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data():
    splits = make_biased_classification(600, seed=0).split(seed=0)
    return splits.train, splits.test


def _train(strategy, train, test, seed=0):
    model = LogisticRegression(2, seed=seed)
    hist = fit(model, train, test=test, strategy=strategy, epochs=3, batch_size=64, lr=0.05,
               seed=seed, progress=False)
    return model, hist


@pytest.mark.parametrize("shape", SHAPES)
def test_trains_through_fit_deterministically(data, shape):
    train, test = data
    m1, h1 = _train(LossShaping(shape, r=0.5), train, test)
    m2, h2 = _train(LossShaping(shape, r=0.5), train, test)
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters()))
    assert h1.rows == h2.rows
    assert h1.last("test_accuracy") > 0.6 and math.isfinite(h1.last("train_loss"))
    assert 0 < h1.last("ess_fraction") < 1
    m0, _ = _train(ERM(), train, test)
    assert not all(torch.equal(a, b) for a, b in zip(m0.parameters(), m1.parameters()))


@pytest.mark.parametrize("kwargs", [dict(burn_in_steps=10**6), dict(r=math.inf)])
def test_uniform_settings_train_exactly_as_erm(data, kwargs):
    train, test = data
    m0, h0 = _train(ERM(), train, test)
    m1, h1 = _train(LossShaping("extremes", **kwargs), train, test)
    assert all(torch.equal(a, b) for a, b in zip(m0.parameters(), m1.parameters()))
    assert [r["test_accuracy"] for r in h0.rows] == [r["test_accuracy"] for r in h1.rows]


def test_runs_through_experiments():
    assert "LossShaping" in methods()
    spec = RunSpec("synthetic", "mlp", "LossShaping", seed=0, dataset_params={"n": 400},
                   method_params={"shape": "quadratic", "r": 0.5, "burn_in_steps": 2},
                   train={"epochs": 2, "device": "cpu"})
    a, b = execute(spec), execute(spec)
    assert a["status"] == "ok", a["error"]
    assert a["method"] == "LossShaping" and a["method.shape"] == "quadratic"
    assert 0.5 < a["test_accuracy"] <= 1
    assert {k: v for k, v in a.items() if k != "seconds"} == {
        k: v for k, v in b.items() if k != "seconds"}
    bad = execute(RunSpec("synthetic", "mlp", "LossShaping", method_params={"shape": "xyz"},
                          dataset_params={"n": 400}, train={"epochs": 1, "device": "cpu"}))
    assert bad["status"] == "failed" and "`shape`" in bad["error"]
