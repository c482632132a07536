"""Every strategy as a scikit-learn-like estimator: check_strategy on all of them, get_params /
set_params / clone, the shared ``mode=`` and ``groups=`` keywords, deprecated spellings,
keyword-only constructors, and group-major cell tables (FairBatch)."""

import inspect
import math
import warnings

import pytest
import torch

import fairlib.weighting as W
from fairlib.datasets import make_biased_classification
from fairlib.train import LogisticRegression, fit
from fairlib.weighting import (
    FIS,
    FORML,
    JTT,
    L2RW,
    Cooldown,
    FairBatch,
    GroupBalancedSampling,
    GroupDRO,
    GroupUpweighting,
    Reweighing,
    StrategyCheckError,
    WeightingStrategy,
    check_strategy,
    clone,
)
from fairlib.weighting._common import GROUP_MODES, SAMPLING_MODES
from fairlib.weighting._lookahead import METHODS
from fairlib.weighting.checks import HostSyncRecorder
from fairlib.weighting.meta_objectives import OBJECTIVES

#: Every strategy the package exports (the base class itself excepted).
STRATEGIES = [getattr(W, name) for name in W.__all__
              if isinstance(getattr(W, name), type) and issubclass(getattr(W, name), WeightingStrategy)
              and getattr(W, name) is not WeightingStrategy]

#: Beyond the defaults: every mode, cell choice, target and meta-gradient path.
VARIANTS = {
    "LossShaping": [dict(shape=s, r=0.5, delta=2.0, burn_in_steps=1) for s in ("quadratic", "extremes", "upper")]
    + [dict(r=math.inf)],
    "Reweighing": [dict(mode="upsample"), dict(clip=1.2)],
    "GroupUpweighting": [dict(tau=Cooldown(tau=math.inf, switch_at=2, unit="step"), groups="group"),
                         dict(tau=2.0)],
    "GroupBalancedSampling": [dict(tau=Cooldown(tau=5.0, switch_at=1, unit="step")),
                              dict(tau=1.0, groups="group")],
    "GroupDRO": [dict(eta_q=0.5, adj_C=1.0), dict(groups="group")],
    "JTT": [dict(mode="upweight"), dict(up_weight=2, mode="upweight", threshold=0.4)],
    "FairBatch": [dict(target="eqodds", alpha=0.05), dict(target="dp", alpha=0.1)],
    "KLDRO": [dict(tau=0.1), dict(tau=math.inf)],
    "FEBS": [dict(direction="code"), dict(gamma=2.0, groups="group_label", normalize=False)],
    "FIS": [dict(c=1.0, T=0.5), dict(groups="group_label")],
    "L2RW": [dict(method=m) for m in METHODS]
    + [dict(meta_objective="eo_gap", stratified=False, meta_batch_size=16)],
    "StepWeightRecorder": [dict(strategy=L2RW()), dict(strategy=GroupDRO(eta_q=0.1))],
    "FORML": [dict(method=m, normalize=n) for m in METHODS for n in ("batch", "global_mean", "none")]
    + [dict(meta_objective=o) for o in OBJECTIVES]
    + [dict(stratified=False, meta_batch_size=8, clamp=(0.1, 3.0), init=2.0)],
}


def _cases():
    for cls in STRATEGIES:
        yield pytest.param(cls, {}, id=f"{cls.__name__}()")
        for kw in VARIANTS.get(cls.__name__, []):
            text = ", ".join(f"{k}={v!r}" for k, v in kw.items())
            yield pytest.param(cls, kw, id=f"{cls.__name__}({text})")


def test_the_list_covers_every_exported_strategy():
    names = {cls.__name__ for cls in STRATEGIES}
    assert {"ERM", "Reweighing", "GroupUpweighting", "GroupBalancedSampling", "GroupDRO", "JTT",
            "FairBatch", "KLDRO", "FEBS", "FIS", "L2RW", "FORML"} <= names
    assert set(VARIANTS) <= names
    assert set(METHODS) == {"auto", "double_backward", "per_example"}  # both meta-gradient paths


@pytest.mark.parametrize("cls, kwargs", list(_cases()))
def test_check_strategy(cls, kwargs):
    check_strategy(cls(**kwargs))


# -- check_strategy itself ----------------------------------------------------------------
DATA = make_biased_classification(200, seed=0)


class _Plain(WeightingStrategy):
    """A correct minimal strategy: per-group weights learned in update (for mutation tests)."""

    def __init__(self, step=0.1, *, scale=1.0):
        self.step = step
        self.scale = scale

    def setup(self, train, *, meta=None, model=None, device="cpu", generator=None):
        super().setup(train, meta=meta, model=model, device=device, generator=generator)
        self.q_ = torch.ones(train.n_groups, device=self.device_)
        return self

    def weights(self, batch, losses, model):
        return self.scale * self.q_[batch.group].to(losses.dtype)

    def update(self, batch, losses, model):
        self.q_ = self.q_ + self.step * torch.zeros_like(self.q_).index_add_(0, batch.group, losses)


def test_a_correct_minimal_strategy_passes():
    check_strategy(_Plain())


class _Positional(_Plain):
    def __init__(self, step=0.1, scale=1.0):  # scale can be passed by position
        super().__init__(step, scale=scale)


class _Validates(_Plain):
    def __init__(self, step=0.1, *, scale=1.0):
        if scale < 0:
            raise ValueError("negative")
        super().__init__(step, scale=scale)


class _Converts(_Plain):
    def __init__(self, step=0.1, *, scale=(1.0,)):
        super().__init__(step, scale=list(scale))  # a new object, not the argument


class _LearnsInInit(_Plain):
    def __init__(self, step=0.1, *, scale=1.0):
        super().__init__(step, scale=scale)
        self.q_ = None


class _Renames(WeightingStrategy):
    def __init__(self, step=0.1):
        self._step = step


class _Args(_Plain):
    def __init__(self, *steps):
        super().__init__()


class _OverwritesParams(_Plain):
    def setup(self, train, **kw):
        super().setup(train, **kw)
        self.scale = 2.0 * self.scale
        return self


class _Negative(_Plain):
    def weights(self, batch, losses, model):
        return losses - 10.0


class _WrongShape(_Plain):
    def weights(self, batch, losses, model):
        return torch.ones(len(losses) + 1)


class _Attached(_Plain):
    def weights(self, batch, losses, model):
        return torch.ones_like(losses).requires_grad_(True)


class _Syncs(_Plain):
    def weights(self, batch, losses, model):
        if float(losses.max()) > 100:  # a read back to the host
            return torch.zeros_like(losses)
        return torch.ones_like(losses)


class _MasksOnHost(_Plain):
    def update(self, batch, losses, model):
        self.q_ = self.q_ + losses[batch.y == 1].sum()  # boolean-mask indexing


class _Unseeded(_Plain):
    def weights(self, batch, losses, model):
        return torch.rand(len(losses))  # the global RNG, not the setup generator


class _HiddenState(_Plain):
    def setup(self, train, **kw):
        super().setup(train, **kw)
        self._count = 0
        return self

    def weights(self, batch, losses, model):
        return torch.full_like(losses, 1.0 + self._count)

    def update(self, batch, losses, model):
        self._count += 1  # state outside state_dict


@pytest.mark.parametrize("strategy, check", [
    (_Positional(), "signature"),
    (_Args(), "signature"),
    (_Validates(), "constructor"),
    (_Converts(), "constructor"),
    (_LearnsInInit(), "constructor"),
    (_Renames(), "constructor"),
    (_OverwritesParams(), "setup"),
    (_Negative(), "weights"),
    (_WrongShape(), "weights"),
    (_Attached(), "weights"),
    (_Syncs(), "no host sync"),
    (_MasksOnHost(), "no host sync"),
    (_Unseeded(), "same seed"),
    (_HiddenState(), "state_dict"),
])
def test_check_strategy_names_the_failed_check(strategy, check):
    with pytest.raises(StrategyCheckError, match=rf"failed the check '{check}': "):
        check_strategy(strategy)


def test_check_strategy_error_is_an_assertion_error_and_names_the_strategy():
    with pytest.raises(AssertionError, match=r"^_Negative\(step=0.1, scale=1.0\) failed the check 'weights': "
                                             r"weights must be >= 0"):
        check_strategy(_Negative())


def test_check_strategy_leaves_the_strategy_alone_and_takes_data():
    jtt = JTT(mode="upweight")
    model = LogisticRegression(2, seed=0)
    fit(model, DATA, epochs=1, lr=0.05, progress=False)
    jtt.identify_errors(model, DATA)  # already has its first stage
    mask = jtt.error_mask_
    before = dict(vars(jtt))
    check_strategy(jtt, train=make_biased_classification(150, seed=3))
    assert vars(jtt) == before and jtt.error_mask_ is mask
    with pytest.raises(ValueError, match=r"Expected `meta` to be a non-empty held-out dataset for FORML"):
        check_strategy(FORML(), train=DATA)
    check_strategy(FORML(), train=DATA, meta=make_biased_classification(50, seed=1), batch_size=16)
    with pytest.raises(TypeError, match=r"Expected `strategy` to be a WeightingStrategy, but got str"):
        check_strategy("GroupDRO")


def test_host_sync_recorder_is_not_vacuous():
    x = torch.arange(6.0)
    cases = {
        "item": lambda: x.sum().item(),
        "float": lambda: float(x.max()),
        "tolist": lambda: x.tolist(),
        "host data": lambda: torch.tensor([1.0, 2.0]),
        "boolean mask": lambda: x[x > 2],
        "nonzero": lambda: torch.nonzero(x),
        "unique": lambda: torch.unique(x),
        "repeat_interleave": lambda: torch.repeat_interleave(x, torch.ones(6, dtype=torch.int64)),
    }
    for what, op in cases.items():
        with HostSyncRecorder("cpu") as rec:
            op()
        assert rec.syncs, what
    idx = torch.arange(2)
    with HostSyncRecorder("cpu") as rec:
        torch.where(x > 2, x, 0.0).sum() / x.numel()
        x[idx]
        torch.repeat_interleave(x, 2)
    assert rec.ops and not rec.syncs, rec.syncs
    with HostSyncRecorder("meta") as rec:
        torch.zeros(2) + 1
    assert rec.foreign


# -- get_params / set_params / clone ------------------------------------------------------
@pytest.mark.parametrize("cls", STRATEGIES, ids=lambda c: c.__name__)
def test_get_params_lists_the_constructor_arguments_in_order(cls):
    sig = [p for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
           if p.kind is not p.VAR_KEYWORD] if cls.__init__ is not object.__init__ else []
    s = cls()
    params = s.get_params()
    assert list(params) == [p.name for p in sig]
    assert all(params[p.name] is p.default or params[p.name] == p.default for p in sig)
    assert repr(s) == f"{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


def test_set_params_sets_returns_self_and_rejects_unknown_names():
    dro = GroupDRO()
    assert dro.set_params(eta_q=0.3, groups="group") is dro
    assert dro.get_params() == {"eta_q": 0.3, "adj_C": 0.0, "groups": "group"}
    assert dro.set_params() is dro
    with pytest.raises(ValueError, match=r"Expected `eta` to be a parameter of GroupDRO \(`eta_q`, `adj_C`, "
                                         r"`groups`\), but got no such parameter"):
        dro.set_params(eta=0.1)
    bad = GroupDRO().set_params(eta_q=-1.0)  # stores only: setup validates
    with pytest.raises(ValueError, match=r"Expected `eta_q` to be a non-negative step size"):
        bad.setup(DATA)
    with pytest.raises(ValueError, match=r"Expected `mode` to be a parameter of GroupUpweighting"):
        GroupUpweighting().set_params(mode="upsample")  # the class fixes the mode


class _Wrapper(WeightingStrategy):
    def __init__(self, inner=None, *, factor=1.0):
        self.inner = inner
        self.factor = factor


def test_nested_params_and_clone_of_a_wrapper():
    w = _Wrapper(GroupDRO(eta_q=0.2), factor=2.0)
    deep = w.get_params()
    assert deep["inner__eta_q"] == 0.2 and deep["inner__groups"] == "group_label"
    assert "inner__eta_q" not in w.get_params(deep=False)
    w.set_params(inner__eta_q=0.7, factor=3.0)
    assert w.inner.eta_q == 0.7 and w.factor == 3.0
    with pytest.raises(ValueError, match=r"`factor__x`"):
        w.set_params(factor__x=1)
    twin = clone(w)
    assert twin.inner is not w.inner and twin.inner.get_params() == w.inner.get_params()


class _Delegating(WeightingStrategy):
    """A wrapper that delegates the protocol and keeps state of its own (as a recorder)."""

    def __init__(self, strategy=None):
        self.strategy = strategy

    @property
    def requires_meta(self):
        return self.strategy.requires_meta

    def setup(self, train, *, meta=None, model=None, device="cpu", generator=None):
        self.strategy.setup(train, meta=meta, model=model, device=device, generator=generator)
        self.device_ = torch.device(device)
        self.seen_ = torch.zeros(len(train), device=self.device_)
        return self

    @property
    def needs_graph(self):
        return self.strategy.needs_graph

    def sampler(self):
        return self.strategy.sampler()

    def weights(self, batch, losses, model):
        w = self.strategy.weights(batch, losses, model)
        self.seen_.index_add_(0, batch.index, torch.ones_like(w))
        return w

    def update(self, batch, losses, model):
        self.strategy.update(batch, losses, model)


@pytest.mark.parametrize("inner", [GroupDRO(eta_q=0.5), FORML(), JTT(mode="upweight")], ids=repr)
def test_a_wrapper_carries_the_inner_state_in_its_state_dict(inner):
    wrapper = _Delegating(inner)
    check_strategy(wrapper)  # clone, same seed and the state_dict round trip reach the inner strategy
    if isinstance(inner, JTT):
        return
    wrapper.setup(DATA, meta=make_biased_classification(60, seed=1), model=LogisticRegression(2))
    keys = set(wrapper.state_dict())
    assert {"seen_", "device_"} <= keys
    assert {f"strategy__{k}" for k in inner.state_dict()} <= keys


def test_clone_copies_parameters_and_drops_learned_state():
    ds = DATA
    attrs = ["group"]
    rw = Reweighing(attributes=attrs, mode="upsample").setup(ds)
    twin = clone(rw)
    assert type(twin) is Reweighing and twin is not rw
    assert twin.get_params() == rw.get_params() and twin.attributes is not attrs
    assert not [k for k in vars(twin) if k.endswith("_")]
    cd = Cooldown(tau=4.0, switch_at=2)
    bs = GroupBalancedSampling(tau=cd, groups="group")
    assert clone(bs).tau == cd and repr(clone(bs)) == repr(bs)
    jtt = JTT().identify_errors(LogisticRegression(2, seed=0), ds)
    assert not hasattr(clone(jtt), "error_mask_")
    with pytest.raises(TypeError, match=r"Expected `strategy` to be a WeightingStrategy, but got dict"):
        clone({"eta_q": 0.1})


def test_clone_refuses_a_constructor_that_does_not_store():
    with pytest.raises(RuntimeError, match=r"Cannot clone _Converts: its constructor does not store `scale`"):
        clone(_Converts(scale=(2.0,)))


def test_state_dict_is_copied_on_load():
    data = make_biased_classification(100, seed=0)
    a = GroupDRO(eta_q=1.0).setup(data)
    b = clone(a).setup(data)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.q_, b.q_) and a.q_ is not b.q_
    b.q_.mul_(0.0)  # changing the copy leaves the original alone
    assert float(a.q_.sum()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"ending in '_'"):
        b.load_state_dict({"eta_q": 1.0})


# -- mode= and groups= ----------------------------------------------------------------------
def _with(keyword):
    return [c for c in STRATEGIES if keyword in c._get_param_names()]


def test_one_mode_keyword_and_one_groups_keyword():
    assert {c.__name__ for c in _with("mode")} == {"Reweighing", "JTT"}
    assert {c.__name__ for c in _with("groups")} == {
        "GroupUpweighting", "GroupBalancedSampling", "GroupDRO", "FEBS", "FIS"}
    assert GroupUpweighting.mode == "upweight" and GroupBalancedSampling.mode == "upsample"
    assert "mode" not in GroupUpweighting().get_params()
    # no other spelling of either choice is a parameter anywhere
    for cls in STRATEGIES:
        assert not {"sampling", "balance", "upsample", "cells"} & set(cls._get_param_names()), cls


@pytest.mark.parametrize("make", [
    lambda mode: Reweighing(mode=mode),
    lambda mode: JTT(up_weight=2, mode=mode).identify_errors(LogisticRegression(2, seed=0), DATA),
    lambda mode: (GroupUpweighting if mode == "upweight" else GroupBalancedSampling)(tau=2.0),
], ids=["Reweighing", "JTT", "temperature"])
def test_mode_means_the_same_everywhere(make):
    for mode in SAMPLING_MODES:
        s = make(mode)
        assert s.mode == mode
        s.setup(DATA, generator=torch.Generator().manual_seed(0))
        n = len(DATA)
        w = s.weights(W.Batch(DATA.X, DATA.y, DATA.group, torch.arange(n)), torch.ones(n), None)
        if mode == "upweight":  # loss weights, uniform shuffling
            assert s.sampler() is None and not torch.equal(w, torch.ones(n))
        else:  # a sampler, unweighted loss
            assert s.sampler() is not None and torch.equal(w, torch.ones(n))


@pytest.mark.parametrize("cls", [GroupUpweighting, GroupBalancedSampling, GroupDRO, W.FEBS, FIS],
                         ids=lambda c: c.__name__)
def test_groups_means_the_same_everywhere(cls):
    sizes = {}
    for groups in GROUP_MODES:
        s = cls(groups=groups).setup(DATA)
        state = next(v for k, v in s.state_dict().items()
                     if isinstance(v, torch.Tensor) and v.dim() == 1 and k != "device_")
        sizes[groups] = len(state)
    assert sizes == {"group": DATA.n_groups, "group_label": 2 * DATA.n_groups}
    with pytest.raises(ValueError, match=r"Expected `groups` to be one of 'group', 'group_label', but got 'cell'"):
        cls(groups="cell").setup(DATA)


# -- deprecated spellings -------------------------------------------------------------------
def test_reweighing_sampling_is_a_deprecated_alias_of_mode():
    with pytest.warns(FutureWarning, match=r"Reweighing: `sampling` is deprecated .* use `mode` instead "
                                           r"\(`sampling=True` is `mode='upsample'`\)"):
        old = Reweighing(sampling=True)
    assert old.get_params() == {"attributes": None, "mode": "upsample", "clip": None}
    assert "sampling" not in vars(old) and repr(old) == repr(Reweighing(mode="upsample"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        twin = clone(old)  # the new spelling only: no warning
        assert twin.mode == "upsample"
    with pytest.warns(FutureWarning, match=r"`sampling=False` is `mode='upweight'`"):
        assert Reweighing(sampling=False).mode == "upweight"
    # same behaviour: same sampler, same training run
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = old.setup(DATA, generator=gen())
    b = Reweighing(mode="upsample").setup(DATA, generator=gen())
    assert list(a.sampler()) == list(b.sampler())
    with pytest.warns(FutureWarning):
        h_old = fit(LogisticRegression(2, seed=0), DATA, strategy=Reweighing(sampling=True), epochs=2,
                    seed=1, progress=False)
    h_new = fit(LogisticRegression(2, seed=0), DATA, strategy=Reweighing(mode="upsample"), epochs=2,
                seed=1, progress=False)
    assert h_old.frame.equals(h_new.frame)
    # reading the old attribute still works, with the same warning
    with pytest.warns(FutureWarning, match=r"use `mode` instead"):
        assert b.sampling is True
    # set_params accepts it too
    with pytest.warns(FutureWarning):
        assert Reweighing().set_params(sampling=True).mode == "upsample"


def test_deprecated_alias_conflicts_and_unknown_keywords():
    with pytest.raises(TypeError, match=r"got both `mode='upsample'` and the deprecated `sampling=False`"):
        Reweighing(mode="upsample", sampling=False)
    with pytest.raises(TypeError, match=r"got both `mode='upweight'` and the deprecated `sampling=True`"):
        Reweighing().set_params(sampling=True, mode="upweight")
    with pytest.warns(FutureWarning):  # both given and consistent: fine
        assert Reweighing(mode="upsample", sampling=True).mode == "upsample"
    with pytest.raises(TypeError, match=r"Reweighing\(\) got an unexpected keyword argument 'balance'"):
        Reweighing(balance=True)
    with pytest.warns(FutureWarning), pytest.raises(
            ValueError, match=r"Expected `mode` to be one of 'upweight', 'upsample', but got 'yes'"):
        Reweighing(sampling="yes").setup(DATA)  # not a bool: setup rejects it as a mode


# -- keyword-only constructors --------------------------------------------------------------
@pytest.mark.parametrize("cls", STRATEGIES, ids=lambda c: c.__name__)
def test_every_parameter_after_the_first_is_keyword_only(cls):
    if cls.__init__ is object.__init__:
        return
    params = [p for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
              if p.kind is not p.VAR_KEYWORD]
    assert all(p.kind is p.KEYWORD_ONLY for p in params[1:]), cls


@pytest.mark.parametrize("call", [
    lambda: GroupDRO(0.01, 0.1),
    lambda: FIS(0.5, 1.0),
    lambda: FairBatch("eo", 0.005),
    lambda: L2RW(64, "mean"),
    lambda: FORML("eo_gap", 1.0),
    lambda: JTT(-1, "upweight"),
    lambda: Reweighing(None, "upsample"),
    lambda: GroupUpweighting(2.0, "group"),
    lambda: W.FEBS(1.0, "code"),
    lambda: Cooldown(5.0, 2),
])
def test_positional_arguments_after_the_first_are_refused(call):
    with pytest.raises(TypeError, match=r"positional argument"):
        call()


def test_the_first_argument_may_still_be_positional():
    assert GroupDRO(0.2).eta_q == 0.2 and FORML("eo_gap").meta_objective == "eo_gap"
    assert L2RW(64).meta_batch_size == 64 and Cooldown(5.0, switch_at=2).tau == 5.0


# -- group-major cell tables ----------------------------------------------------------------
def test_fairbatch_tables_are_group_major_like_reweighing():
    model = LogisticRegression(2, seed=0)
    fb = FairBatch(target="eqodds", alpha=0.05).setup(DATA, model=model)
    z, y = DATA.group, DATA.y
    n = torch.bincount(z * 2 + y, minlength=4).view(2, 2)  # [group, label]
    assert torch.equal(fb.cell_counts_, n)
    with torch.no_grad():
        losses = torch.nn.functional.binary_cross_entropy_with_logits(
            model(DATA.X).double(), y.double(), reduction="none")
    by_hand = torch.stack([torch.stack([losses[(z == g) & (y == c)].mean() for c in (0, 1)])
                           for g in (0, 1)])
    torch.testing.assert_close(fb.cell_losses_, by_hand)
    torch.testing.assert_close(fb.diagnostics()["cell_losses"], by_hand)
    sizes = fb.epoch_cell_sizes()
    assert sizes.sum(0).tolist() == n.sum(0).tolist()  # label totals kept; the group mix moves
    # lambda_ keeps the paper's order: share of group 1 among y = 1, then among y = 0
    fresh = FairBatch().setup(DATA)
    share = n[1].double() / n.sum(0).double()
    torch.testing.assert_close(fresh.lambda_, torch.stack([share[1], share[0]]))
    # the same orientation as Reweighing's factor table W[a, y]
    rw = Reweighing().setup(DATA)
    assert rw.cell_weights_.shape == fb.cell_counts_.shape
    p_y = n.sum(0).double() / n.sum()
    p_a = n.sum(1).double() / n.sum()
    torch.testing.assert_close(rw.cell_weights_, p_a[:, None] * p_y[None, :] / (n.double() / n.sum()))
