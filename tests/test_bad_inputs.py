"""Bad inputs to the training, strategy and model entry points: one row per (callable, bad
argument). Each must raise fairlib's ``ValueError``/``TypeError`` naming the argument, before
any work (a model's parameters are untouched, a strategy is never set up)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from fairlib.datasets import make_biased_classification
from fairlib.train import MLP, LogisticRegression, SmallCNN, evaluate, fit, predict_logits, predict_scores
from fairlib.train import resolve_device, sample_losses, train_twice
from fairlib.weighting import (
    ERM,
    FEBS,
    FIS,
    FORML,
    JTT,
    KLDRO,
    L2RW,
    Cooldown,
    FairBatch,
    GroupBalancedSampling,
    GroupDRO,
    GroupUpweighting,
    Reweighing,
    StepWeightRecorder,
    clone,
    reweighing_weights,
)

DATA = make_biased_classification(120, seed=0)
META = make_biased_classification(40, seed=1)
Y = np.array([0, 1, 0, 1, 1, 0])


def _fit(**kwargs):
    args = {"model": LogisticRegression(2, seed=0), "train": DATA, "epochs": 1, "device": "cpu",
            "progress": False, **kwargs}
    return fit(args.pop("model"), args.pop("train"), **args)


class TwoOutputs(nn.Module):
    def __init__(self, width: int = 2) -> None:
        super().__init__()
        self.linear = nn.Linear(2, width)

    def forward(self, x):
        return self.linear(x)


# (id, call, exception type, the argument the message must name, other words it must hold)
ROWS = [
    # -- fit: hyper-parameters
    ("fit lr=inf", lambda: _fit(lr=math.inf), ValueError, "lr", ["finite"]),
    ("fit lr=nan", lambda: _fit(lr=math.nan), ValueError, "lr", []),
    ("fit lr='0.1'", lambda: _fit(lr="0.1"), ValueError, "lr", ["'0.1'"]),
    ("fit weight_decay=-1", lambda: _fit(weight_decay=-1), ValueError, "weight_decay", ["-1"]),
    ("fit weight_decay=inf", lambda: _fit(weight_decay=math.inf), ValueError, "weight_decay", []),
    ("fit seed='a'", lambda: _fit(seed="a"), ValueError, "seed", ["'a'"]),
    ("fit seed=1.5", lambda: _fit(seed=1.5), ValueError, "seed", []),
    ("fit seed=True", lambda: _fit(seed=True), ValueError, "seed", []),
    ("fit seed=2**70", lambda: _fit(seed=2**70), ValueError, "seed", []),
    ("fit epochs=0", lambda: _fit(epochs=0), ValueError, "epochs", []),
    ("fit batch_size=2.5", lambda: _fit(batch_size=2.5), ValueError, "batch_size", []),
    ("fit optimizer='lbfgs'", lambda: _fit(optimizer="lbfgs"), ValueError, "optimizer", []),
    # -- fit: objects
    ("fit strategy='erm'", lambda: _fit(strategy="erm"), TypeError, "strategy", ["ERM()"]),
    ("fit strategy=ERM", lambda: _fit(strategy=ERM), TypeError, "strategy", []),
    ("fit model='mlp'", lambda: _fit(model="mlp"), TypeError, "model", []),
    ("fit train=tensor", lambda: _fit(train=DATA.X), TypeError, "train", ["FairDataset", "Tensor"]),
    ("fit train=ndarray", lambda: _fit(train=DATA.X.numpy()), TypeError, "train", ["ndarray"]),
    ("fit train=DataFrame", lambda: _fit(train=pd.DataFrame(DATA.X.numpy())), TypeError, "train", []),
    ("fit train=list of pairs", lambda: _fit(train=[(DATA.X[0], DATA.y[0])]), TypeError, "train", ["2 parts"]),
    ("fit train empty", lambda: _fit(train=DATA.subset(torch.arange(0))), ValueError, "train", ["empty"]),
    ("fit meta=tensor", lambda: _fit(meta=META.X), TypeError, "meta", []),
    ("fit test=ndarray", lambda: _fit(test=META.X.numpy()), TypeError, "test", []),
    # -- fit: device
    ("fit device='gpu'", lambda: _fit(device="gpu"), ValueError, "device", ["'gpu'"]),
    ("fit device=1.5", lambda: _fit(device=1.5), TypeError, "device", []),
    ("fit device='cuda:99'", lambda: _fit(device="cuda:99"), ValueError, "device", ["CUDA"]),
    ("resolve_device('gpu')", lambda: resolve_device("gpu"), ValueError, "device", []),
    # -- device: a function given a model refuses a device other than the model's; a
    #    device this machine lacks is refused before any work (FairDataset.to too)
    ("predict_logits device='meta'",
     lambda: predict_logits(LogisticRegression(2), DATA, device="meta"), ValueError, "device", ["model's parameters", "model.to"]),
    ("sample_losses device='gpu'",
     lambda: sample_losses(LogisticRegression(2), DATA, device="gpu"), ValueError, "device", ["'gpu'"]),
    ("evaluate device='cuda:99'", lambda: evaluate(LogisticRegression(2), DATA, device="cuda:99"),
     ValueError, "device", ["CUDA"]),
    ("FairDataset.to('gpu')", lambda: DATA.to("gpu"), ValueError, "device", ["'gpu'"]),
    ("FairDataset.to('cuda:99')", lambda: DATA.to("cuda:99"), ValueError, "device", ["CUDA"]),
    ("FairDataset.to(1.5)", lambda: DATA.to(1.5), TypeError, "device", []),
    ("strategy setup device='cuda:99'", lambda: ERM().setup(DATA, device="cuda:99"), ValueError,
     "device", ["CUDA"]),
    ("strategy setup device='gpu'", lambda: FORML().setup(DATA, meta=META, device="gpu"),
     ValueError, "device", ["'gpu'"]),
    # -- fit: the model does not fit the data (first rows, both shapes named)
    ("fit model input size", lambda: _fit(model=LogisticRegression(3, seed=0)), ValueError, "model",
     ["shape (2, 2)", "takes 3 features", "mat1"]),
    ("fit model two outputs", lambda: _fit(model=TwoOutputs()), ValueError, "model",
     ["one logit per row", "shape (2,)", "shape (2, 2)"]),
    ("fit model [B, 1] output", lambda: _fit(model=TwoOutputs(1)), ValueError, "model", ["squeeze"]),
    ("fit model float64 data", lambda: _fit(model=LogisticRegression(2, seed=0).double()), ValueError,
     "model", ["dtype torch.float32"]),
    # -- fit refuses a strategy's bad parameter before training
    ("fit FORML(init=inf)", lambda: _fit(strategy=FORML(init=math.inf), meta=META), ValueError, "init", []),
    ("fit FORML(meta_lr='a')", lambda: _fit(strategy=FORML(meta_lr="a"), meta=META), ValueError,
     "meta_lr", ["'a'"]),
    ("fit FORML(clamp=None)", lambda: _fit(strategy=FORML(clamp=None), meta=META), ValueError, "clamp", []),
    ("fit JTT(up_weight='5')", lambda: _fit(strategy=JTT(up_weight="5")), ValueError, "up_weight", []),
    # -- evaluation helpers
    ("evaluate threshold=1.5", lambda: evaluate(LogisticRegression(2), DATA, threshold=1.5), ValueError,
     "threshold", []),
    ("evaluate data=tensor", lambda: evaluate(LogisticRegression(2), DATA.X), TypeError, "data", []),
    ("predict_logits batch_size=0", lambda: predict_logits(LogisticRegression(2), DATA, batch_size=0),
     ValueError, "batch_size", []),
    ("predict_scores model='x'", lambda: predict_scores("x", DATA), TypeError, "model", []),
    ("sample_losses data=ndarray", lambda: sample_losses(LogisticRegression(2), DATA.X.numpy()),
     TypeError, "data", []),
    # -- models
    ("MLP in_features=0", lambda: MLP(0), ValueError, "in_features", []),
    ("MLP hidden=64", lambda: MLP(2, hidden=64), TypeError, "hidden", []),
    ("MLP hidden=(8, 0)", lambda: MLP(2, hidden=(8, 0)), ValueError, "hidden[1]", []),
    ("MLP dropout=1.5", lambda: MLP(2, dropout=1.5), ValueError, "dropout", []),
    ("MLP dropout=nan", lambda: MLP(2, dropout=math.nan), ValueError, "dropout", []),
    ("MLP seed='a'", lambda: MLP(2, seed="a"), ValueError, "seed", []),
    ("LogisticRegression in_features=2.5", lambda: LogisticRegression(2.5), ValueError, "in_features", []),
    ("SmallCNN width=0", lambda: SmallCNN(width=0), ValueError, "width", []),
    # -- two-stage training: refused before stage 1
    ("train_twice stage1_epochs=0", lambda: train_twice(_no_model, DATA, stage1_epochs=0), ValueError,
     "stage1_epochs", []),
    ("train_twice up_weight='5'", lambda: train_twice(_no_model, DATA, stage1_epochs=1, up_weight="5"),
     ValueError, "up_weight", []),
    ("train_twice mode='x'", lambda: train_twice(_no_model, DATA, stage1_epochs=1, mode="x"), ValueError,
     "mode", []),
    # -- reweighing_weights
    ("reweighing_weights NaN group", lambda: reweighing_weights(Y, np.array([0, 0, 0, np.nan, np.nan, np.nan])),
     ValueError, "groups", ["NaN"]),
    ("reweighing_weights float codes", lambda: reweighing_weights(Y[:4], np.array([0.2, 0.7, 0.2, 0.7])),
     ValueError, "groups", ["integer", "0.2"]),
    ("reweighing_weights inf group", lambda: reweighing_weights(Y, [0, 1, math.inf, 0, 1, 0]), ValueError,
     "groups", ["infinity"]),
    ("reweighing_weights missing name", lambda: reweighing_weights(Y, ["a", "b", None, "a", "b", "a"]),
     ValueError, "groups", ["missing"]),
    ("reweighing_weights scalar groups", lambda: reweighing_weights(Y, 1), TypeError, "groups", ["one value per sample"]),
    ("reweighing_weights short groups", lambda: reweighing_weights(Y, ["a", "b"]), ValueError, "groups", []),
    ("reweighing_weights non-binary y", lambda: reweighing_weights([0, 2, 1], [0, 1, 1]), ValueError, "y", []),
    ("reweighing_weights sample_weight=True", lambda: reweighing_weights(Y, [0, 1, 0, 1, 0, 1], True),
     TypeError, "sample_weight", []),
    ("reweighing_weights clip=nan", lambda: reweighing_weights(Y, [0, 1, 0, 1, 0, 1], clip=math.nan),
     ValueError, "clip", []),
    # -- strategies: parameters the generic table below does not reach
    ("FORML clamp=('a', None)", lambda: FORML(clamp=("a", None)).check_params(), ValueError, "clamp", []),
    ("FORML clamp=(0, nan)", lambda: FORML(clamp=(0.0, math.nan)).check_params(), ValueError, "clamp", []),
    ("FORML clamp=(1, 0.5)", lambda: FORML(clamp=(1.0, 0.5)).check_params(), ValueError, "clamp", []),
    ("FORML meta_batch_size=0.5", lambda: FORML(meta_batch_size=0.5).check_params(), ValueError,
     "meta_batch_size", []),
    ("L2RW meta_batch_size=0", lambda: L2RW(meta_batch_size=0).check_params(), ValueError, "meta_batch_size", []),
    ("Reweighing clip=nan", lambda: Reweighing(clip=math.nan).check_params(), ValueError, "clip", []),
    ("Reweighing attributes=5", lambda: Reweighing(attributes=5).check_params(), TypeError, "attributes", []),
    ("Cooldown tau=nan", lambda: GroupBalancedSampling(tau=Cooldown(math.nan)).check_params(), ValueError,
     "Cooldown.tau", []),
    ("Cooldown switch_at=-1", lambda: GroupUpweighting(tau=Cooldown(5.0, switch_at=-1)).check_params(),
     ValueError, "Cooldown.switch_at", []),
    ("StepWeightRecorder strategy='erm'", lambda: StepWeightRecorder("erm").check_params(), TypeError,
     "strategy", []),
    ("StepWeightRecorder inner bad", lambda: StepWeightRecorder(KLDRO(tau=math.nan)).check_params(),
     ValueError, "tau", []),
    ("clone('x')", lambda: clone("x"), TypeError, "strategy", []),
]


def _no_model():
    raise AssertionError("a refused call must not build a model")


@pytest.mark.parametrize("call, kind, name, words", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_is_refused_naming_the_argument(call, kind, name, words):
    if "cuda" in repr(words) + name and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(kind) as err:
        call()
    message = str(err.value)
    assert f"`{name}`" in message, message
    assert all(w in message for w in words), message


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_dataset_to_cuda_without_cuda_names_device_and_says_why():
    with pytest.raises(ValueError) as err:
        DATA.to("cuda")
    assert "`device`" in str(err.value) and "CUDA is not available" in str(err.value)


def test_strategy_setup_auto_follows_the_model():
    assert ERM().setup(DATA, model=LogisticRegression(2)).device_ == torch.device("cpu")
    assert ERM().setup(DATA).device_.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_model_functions_default_to_the_models_device():
    model = LogisticRegression(2, seed=0)
    assert predict_logits(model, DATA).device == torch.device("cpu")
    assert torch.equal(predict_logits(model, DATA, device="auto" if not torch.cuda.is_available()
                                      else "cpu"), predict_logits(model, DATA))


def test_cuda_without_cuda_names_device_and_says_why():
    with pytest.raises(ValueError) as err:
        _fit(device="cuda")
    assert "`device`" in str(err.value) and "CUDA is not available" in str(err.value)


# -- every strategy: each numeric, boolean and choice parameter refuses a bad value ------------
STRATEGIES = [ERM, Reweighing, GroupUpweighting, GroupBalancedSampling, GroupDRO, FairBatch, KLDRO, FEBS,
              FIS, L2RW, FORML, JTT]


def _bad_values(default):
    if isinstance(default, bool):
        return ["yes", 1]
    if isinstance(default, (int, float)):
        return [math.nan, -math.inf, "a", None]
    if isinstance(default, str):
        return ["no-such-choice", 3]
    return []


GENERIC = [(cls, name, bad) for cls in STRATEGIES
           for name, default in cls().get_params(deep=False).items() for bad in _bad_values(default)]


@pytest.mark.parametrize("cls, name, bad", GENERIC,
                         ids=[f"{c.__name__}({n}={b!r})" for c, n, b in GENERIC])
def test_every_strategy_parameter_refuses_a_bad_value_before_training(cls, name, bad):
    strategy = cls(**{name: bad})  # the constructor only stores (scikit-learn's convention)
    with pytest.raises((ValueError, TypeError)) as err:
        strategy.check_params()
    assert f"`{name}`" in str(err.value), str(err.value)
    model = LogisticRegression(2, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(type(err.value), match=f"`{name}`"):
        fit(model, DATA, strategy=strategy, meta=META, epochs=1, device="cpu", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert not [k for k in vars(strategy) if k.endswith("_") and not k.startswith("_")]


def test_default_parameters_pass_check_params():
    for cls in [*STRATEGIES, StepWeightRecorder]:
        s = cls()
        assert s.check_params() is s


def test_string_groups_are_names_like_the_metrics():
    y = np.array([0, 1] * 6)
    codes = reweighing_weights(y, [0, 0, 1, 1, 2, 2] * 2)
    names = reweighing_weights(y, ["a", "a", "b", "b", "c", "c"] * 2)
    categorical = reweighing_weights(y, pd.Categorical(["a", "a", "b", "b", "c", "c"] * 2))
    assert torch.equal(codes, names) and torch.equal(codes, categorical)
    # several attributes: a list of columns, a DataFrame, a 2-d array
    r, s = ["a", "a", "b", "b", "a", "a", "b", "b", "a", "a", "b", "b"], [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1]
    listed = reweighing_weights(y, [r, s])
    assert torch.equal(listed, reweighing_weights(y, pd.DataFrame({"r": r, "s": s})))
    assert torch.equal(listed, reweighing_weights(y, np.array([[v == "b" for v in r], s], dtype=np.int64).T))
    # integral float codes stay accepted
    assert torch.equal(reweighing_weights(y, np.array([0.0, 0.0, 1.0, 1.0, 2.0, 2.0] * 2)), codes)
