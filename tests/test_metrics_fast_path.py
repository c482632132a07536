"""The one-pass fast path of the public metric calls (CPU integer tensors, no weights).

It must give fairlearn's numbers, the general path's table and groups bit for bit, and
let every bad input through to the general path, which raises the same error as before.
"""

import re
import warnings

import fairlearn.metrics as flm
import numpy as np
import pytest
import torch

import fairlib.metrics as fm
from fairlib.metrics import _core as core
from fairlib.metrics import _fast, _prepare

PARITY = [
    (fm.demographic_parity_difference, flm.demographic_parity_difference),
    (fm.demographic_parity_ratio, flm.demographic_parity_ratio),
    (fm.equal_opportunity_difference, flm.equal_opportunity_difference),
    (fm.equal_opportunity_ratio, flm.equal_opportunity_ratio),
    (fm.equalized_odds_difference, flm.equalized_odds_difference),
    (fm.equalized_odds_ratio, flm.equalized_odds_ratio),
]
DTYPES = [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool]


@pytest.fixture
def small_chunks(monkeypatch):
    """Several chunks, ragged odd-length last chunks and the two-thread split on small data."""
    monkeypatch.setattr(_fast, "CHUNK", 1001)
    monkeypatch.setattr(_fast, "THREADS_MIN_ROWS", 3000)


def _no_fast(monkeypatch):
    monkeypatch.setattr(_prepare, "fast_table", lambda *args: None)


def _case(seed, n, groups, dtype=torch.int64):
    gen = torch.Generator().manual_seed(seed)
    y_true = torch.randint(0, 2, (n,), generator=gen).to(dtype)
    y_pred = torch.randint(0, 2, (n,), generator=gen).to(dtype)
    g = torch.randint(0, groups, (n,), generator=gen)
    if groups > 2:
        g[g == 1] = 2  # an unobserved code: its level is dropped, as on the general path
    return y_true, y_pred, g


@pytest.mark.parametrize("seed", range(12))
def test_fast_path_matches_fairlearn(seed, small_chunks):
    n = [3, 8, 7, 2999, 3001, 10_007][seed % 6]
    groups = [1, 2, 5, 8, 32][seed % 5]
    y_true, y_pred, g = _case(seed, n, groups, DTYPES[seed % len(DTYPES)])
    assert _fast.fast_table(y_true, y_pred, g, None, False) is not None  # the path is taken
    args = (y_true.long().numpy(), y_pred.long().numpy())
    for ours, theirs in PARITY:
        for method in ("between_groups", "to_overall"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = theirs(*args, sensitive_features=g.numpy(), method=method)
                got = ours(y_true, y_pred, sensitive_features=g, method=method, zero_division=0.0)
            np.testing.assert_allclose(float(got), expected, rtol=0, atol=1e-12, equal_nan=True)
    assert float(fm.selection_rate(y_true, y_pred)) == pytest.approx(
        flm.selection_rate(*args), abs=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("groups", [1, 3, 8, 32])
def test_fast_table_equals_general_path(dtype, groups, small_chunks, monkeypatch):
    for n in (1, 2, 3, 1001, 3001, 6003):
        y_true, y_pred, g = _case(n + groups, n, groups, dtype)
        fast = _prepare.build_table(y_true, y_pred, g)
        fast_all = _prepare.build_table(y_true, y_pred, None, overall_only=True)
        with monkeypatch.context() as m:
            _no_fast(m)
            slow = _prepare.build_table(y_true, y_pred, g)
            slow_all = _prepare.build_table(y_true, y_pred, None, overall_only=True)
        for (t1, g1, _), (t2, g2, _) in [(fast, slow), (fast_all, slow_all)]:
            assert torch.equal(t1, t2)
            assert g1.index.equals(g2.index) and g1.shape == g2.shape and g1.names == g2.names
            assert torch.equal(g1.ids, g2.ids)


def _bad_cases():
    n = 7000
    y_true, y_pred, g = _case(0, n, 4)
    last = n - 1  # a bad value in the last chunk, on the second thread's half
    cases = {}
    for name, value in [("two", 2), ("minus_one", -1), ("int64_min", -(2**63)),
                        ("two_pow_32", 2**32), ("two_pow_63_minus_1", 2**63 - 1)]:
        for where in (0, last):
            bad = y_true.clone()
            bad[where] = value
            cases[f"y_true_{name}_{where}"] = (bad, y_pred, g)
            bad = y_pred.clone()
            bad[where] = value
            cases[f"y_pred_{name}_{where}"] = (y_true, bad, g)
    for name, value in [("negative", -1), ("int64_min", -(2**63)), ("large", 2**40)]:
        bad = g.clone()
        bad[last] = value
        cases[f"groups_{name}"] = (y_true, y_pred, bad)
    cases["float_labels"] = (y_true.double() * 0.5, y_pred, g)
    cases["length_mismatch"] = (y_true[:-1], y_pred, g)
    cases["groups_short"] = (y_true, y_pred, g[:-1])
    cases["empty"] = (y_true[:0], y_pred[:0], g[:0])
    cases["two_dimensional"] = (y_true.view(-1, 2), y_pred.view(-1, 2), g)
    cases["scalar"] = (torch.tensor(1), y_pred, g)
    cases["minus_one_one_labels"] = (2 * y_true - 1, 2 * y_pred - 1, g)  # valid: general path
    cases["groups_from_32"] = (y_true, y_pred, g + 30)  # valid: general path
    return cases


BAD = _bad_cases()


def _outcome(fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ("value", float(fn()))
    except Exception as err:  # noqa: BLE001 - the exact type and message are compared
        return (type(err).__name__, str(err))


@pytest.mark.parametrize("case", sorted(BAD))
def test_every_bad_input_gives_the_general_paths_error(case, small_chunks, monkeypatch):
    y_true, y_pred, g = BAD[case]
    calls = [
        lambda: fm.demographic_parity_difference(y_true, y_pred, sensitive_features=g),
        lambda: fm.equalized_odds_ratio(y_true, y_pred, sensitive_features=g),
        lambda: fm.fairness_report(y_true, y_pred, sensitive_features=g).measure(
            "equal_opportunity_difference"),
        lambda: fm.accuracy(y_true, y_pred),
    ]
    fast = [_outcome(c) for c in calls]
    with monkeypatch.context() as m:
        _no_fast(m)
        slow = [_outcome(c) for c in calls]
    for got, expected in zip(fast, slow):
        if got[0] == "value":
            assert got == pytest.approx(expected, nan_ok=True)
        else:
            assert got == expected
    if case.startswith(("y_true_", "y_pred_")):
        name = case.split("_")[0] + "_" + case.split("_")[1]
        assert fast[0][0] == "ValueError" and re.search(f"`{name}`", fast[0][1])


def _one_rate(
    table: torch.Tensor,
    num_cells: tuple[int, ...],
    den_cells: tuple[int, ...],
    conditional: bool,
    present: torch.Tensor | None,
    zero_division: float,
) -> torch.Tensor:
    """One rate the way fairlib computed it before core.rates was vectorised (the reference)."""
    num = sum(table[..., k] for k in num_cells)
    den = sum(table[..., k] for k in den_cells)
    zero = den == 0
    value = num / torch.where(zero, 1.0, den)
    if conditional:
        fill = zero_division if present is None else torch.where(present, zero_division, float("nan"))
    else:
        fill = float("nan")
    return torch.where(zero, fill, value)


def test_vectorised_rates_and_measures_equal_the_per_rate_code():
    """core.rates and core.all_measures compute all rates at once; values are bit-identical."""
    gen = torch.Generator().manual_seed(1)
    for trial in range(60):
        shape = [(5, 4), (3, 7, 4), (1, 4)][trial % 3]
        counts = torch.randint(0, 4, shape, generator=gen).double()
        weighted = counts * torch.rand(shape, generator=gen, dtype=torch.float64)
        for w in (counts, weighted):
            for zd in (float("nan"), 0.0, 1.0):
                by_group, overall, _ = core.rates(w, counts, zd)
                present = counts.sum(-1) > 0
                exact = {"rtol": 0, "atol": 0, "equal_nan": True}
                for r, (num, den, cond) in enumerate(core.RATE_CELLS.values()):
                    one = _one_rate(w, num, den, cond, present, zd)
                    torch.testing.assert_close(by_group[..., r], one, **exact)
                    one = _one_rate(w.sum(-2), num, den, cond, None, zd)
                    torch.testing.assert_close(overall[..., r], one, **exact)
                for method in ("between_groups", "to_overall"):
                    for agg in ("worst_case", "mean"):
                        every = core.all_measures(by_group, overall, method, agg)
                        for i, name in enumerate(core.MEASURES):
                            one = core.measure(by_group, overall, name, method, agg)
                            torch.testing.assert_close(every[..., i], one, rtol=0, atol=0,
                                                       equal_nan=True)
