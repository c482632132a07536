"""Every strategy against the protocol: trains with fit, reproducible, valid weights, no host sync."""

import math

import pytest
import torch
from fairlib.datasets import make_biased_classification
from fairlib.train import MLP, LogisticRegression, fit
from fairlib.weighting import (
    ERM,
    FEBS,
    FIS,
    JTT,
    KLDRO,
    Batch,
    Cooldown,
    FairBatch,
    GroupBalancedSampling,
    GroupDRO,
    GroupUpweighting,
    Reweighing,
    WeightingStrategy,
)
from fairlib.weighting.checks import HostSyncRecorder

DATA = make_biased_classification(400, seed=0)


def _stage1():
    model = LogisticRegression(2, seed=0)
    fit(model, DATA, epochs=1, lr=0.05, progress=False)
    return model


STAGE1 = _stage1()

FACTORIES = {
    "ERM": ERM,
    "Reweighing": Reweighing,
    "Reweighing-upsample": lambda: Reweighing(mode="upsample"),
    "GroupUpweighting": lambda: GroupUpweighting(tau=Cooldown(tau=math.inf, switch_at=3, unit="step")),
    "GroupBalancedSampling": lambda: GroupBalancedSampling(tau=Cooldown(tau=5.0, switch_at=1)),
    "GroupDRO": lambda: GroupDRO(eta_q=0.1, adj_C=1.0),
    "JTT-upsample": lambda: JTT(up_weight=-1).identify_errors(STAGE1, DATA),
    "JTT-upweight": lambda: JTT(up_weight=4, mode="upweight").identify_errors(STAGE1, DATA),
    "FairBatch": lambda: FairBatch(target="eqodds", alpha=0.05),
    "KLDRO": lambda: KLDRO(tau=0.5),
    "FEBS": FEBS,
    "FIS": FIS,
}
RANDOM_SAMPLERS = {"Reweighing-upsample", "GroupBalancedSampling", "JTT-upsample", "FairBatch"}


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _run(name, seed=3):
    model = MLP(2, hidden=(8,), seed=0)
    strategy = FACTORIES[name]()
    hist = fit(model, DATA, strategy=strategy, epochs=2, batch_size=64, lr=0.01, seed=seed, progress=False)
    return model, strategy, hist


@pytest.mark.parametrize("name", list(FACTORIES))
def test_trains_a_small_model(name):
    model, strategy, hist = _run(name)
    assert not torch.equal(_params(model), _params(MLP(2, hidden=(8,), seed=0)))
    assert len(hist.rows) == 2 and all(math.isfinite(r["train_loss"]) for r in hist.rows)
    assert set(strategy.diagnostics()) <= set(hist.frame.columns)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_same_seed_same_parameters_weights_and_history(name):
    model_a, strat_a, hist_a = _run(name)
    model_b, strat_b, hist_b = _run(name)
    assert torch.equal(_params(model_a), _params(model_b))
    state_a, state_b = strat_a.state_dict(), strat_b.state_dict()
    assert state_a.keys() == state_b.keys()
    for key, value in state_a.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, state_b[key]), key
        else:
            assert value == state_b[key], key
    assert hist_a.frame.equals(hist_b.frame)
    batch = Batch(DATA.X[:32], DATA.y[:32], DATA.group[:32], torch.arange(32))
    losses = torch.linspace(0.1, 2.0, 32)
    assert torch.equal(strat_a.weights(batch, losses, model_a), strat_b.weights(batch, losses, model_b))
    if name in RANDOM_SAMPLERS:  # another seed, other draws
        model_c, _, _ = _run(name, seed=4)
        assert not torch.equal(_params(model_a), _params(model_c))


@pytest.mark.parametrize("name", list(FACTORIES))
def test_weights_are_valid(name):
    model, strategy, _ = _run(name)
    gen = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(DATA), generator=gen)[:50]
    batch = Batch(DATA.X[idx], DATA.y[idx], DATA.group[idx], idx)
    logits = model(batch.x)
    losses = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch.y.float(), reduction="none")
    w = strategy.weights(batch, losses.detach(), model)
    assert w.shape == (50,) and w.dtype == losses.dtype and w.device == losses.device
    assert not w.requires_grad
    assert torch.isfinite(w).all() and bool((w >= 0).all())


@pytest.mark.parametrize("name", list(FACTORIES))
def test_weights_and_update_never_sync_with_the_host(name):
    """``.item()``, ``float()``, ``bool()``, ``.tolist()`` dispatch to _local_scalar_dense;
    host data made into a tensor shows up as lift_fresh (the recorder of check_strategy)."""
    model, strategy, _ = _run(name)
    idx = torch.arange(40, 90)
    batch = Batch(DATA.X[idx], DATA.y[idx], DATA.group[idx], idx)
    with torch.no_grad():
        losses = torch.nn.functional.binary_cross_entropy_with_logits(model(batch.x), batch.y.float(),
                                                                      reduction="none")
    with HostSyncRecorder("cpu") as rec:
        strategy.weights(batch, losses, model)
        strategy.update(batch, losses, model)
    assert rec.ops, "the recorder saw nothing"
    assert not rec.syncs and not rec.foreign, f"{name}: host synchronisation in weights/update: {rec.syncs + rec.foreign}"


def test_constructors_only_store_their_arguments():
    # invalid values are accepted by the constructor and rejected by setup
    strategies = [GroupDRO(eta_q=-1), FairBatch(target="x"), KLDRO(tau=-1), JTT(up_weight=-5),
                  GroupUpweighting(tau=-1), FEBS(direction="x"), FIS(c=3), Reweighing(clip=-1)]
    for s in strategies:
        assert not any(k.endswith("_") for k in vars(s))
        with pytest.raises(ValueError, match=r"Expected `"):
            s.setup(DATA)
    assert repr(GroupDRO(eta_q=0.1)) == "GroupDRO(eta_q=0.1, adj_C=0.0, groups='group_label')"


def test_an_empty_meta_set_is_rejected_where_one_is_needed():
    class NeedsMeta(WeightingStrategy):
        requires_meta = True

    with pytest.raises(ValueError, match=r"Expected `meta` to be a non-empty held-out dataset for NeedsMeta, but got an empty dataset"):
        fit(LogisticRegression(2), DATA, strategy=NeedsMeta(), meta=DATA.subset(torch.zeros(len(DATA), dtype=torch.bool)), progress=False)
    with pytest.raises(ValueError, match=r"but got None"):
        fit(LogisticRegression(2), DATA, strategy=NeedsMeta(), progress=False)


def test_train_must_be_a_fair_dataset():
    with pytest.raises(TypeError, match=r"Expected `train` to be a FairDataset \(with `y`, `group`, `n_groups`\) for GroupDRO, but got list"):
        GroupDRO().setup([1, 2, 3])
