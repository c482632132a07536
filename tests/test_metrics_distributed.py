"""FairnessAccumulator.sync across torch.distributed processes: 2 CPU processes, gloo.

Each process feeds its half of the data; after ``sync`` every process must hold exactly the
table, report and measures that one process fed with all the data gets.  The workers run
their checks themselves (an exception there fails the spawn in the parent) and return
nothing, so the whole test is one ``spawn`` of two processes (a few seconds).
"""

from __future__ import annotations

import copy
import datetime
import socket
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import fairlib.metrics as fm

WORLD = 2
N = 400
pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")


def _data(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 3, N)
    codes[: N // 2][codes[: N // 2] == 2] = 1  # group 2 only in the second half (rank 1)
    labels = np.array(["a", "b", "c"])[codes]
    return {
        "y_true": rng.integers(0, 2, N),
        "y_pred": rng.integers(0, 2, N),
        "codes": codes,
        "labels": labels,
        "frame": pd.DataFrame({"race": labels, "sex": rng.choice(["F", "M"], N)}),
        # quarters: partial sums are exact in float64, so weighted tables must match bit for bit
        "weight": rng.integers(1, 9, N) / 4,
    }


def _feed(acc: fm.FairnessAccumulator, d: dict, rows: slice, groups: str, weighted: bool) -> None:
    # several batches per process, so sync sums tables that were themselves accumulated
    for start in range(rows.start, rows.stop, 64):
        s = slice(start, min(start + 64, rows.stop))
        g = d[groups].iloc[s] if groups == "frame" else d[groups][s]
        acc.update(d["y_true"][s], d["y_pred"][s], g, d["weight"][s] if weighted else None)


def _assert_same_report(synced: fm.FairnessAccumulator, one: fm.FairnessAccumulator) -> None:
    assert torch.equal(synced.table_.cpu(), one.table_.cpu()), (synced.table_, one.table_)
    got, want = synced.compute(), one.compute()
    pd.testing.assert_frame_equal(got.by_group, want.by_group, check_exact=True)
    pd.testing.assert_series_equal(got.overall, want.overall, check_exact=True)
    for method in ("between_groups", "to_overall"):
        for agg in ("worst_case", "mean"):
            pd.testing.assert_series_equal(got.measures(method, agg), want.measures(method, agg),
                                           check_exact=True)


CASES = [  # (name, accumulator settings, group column, weighted, rows on rank 0 / rank 1)
    ("fixed codes", {"num_groups": 3, "group_names": ["a", "b", "c"]}, "codes", False, "half"),
    ("fixed codes, weighted", {"num_groups": 3}, "codes", True, "half"),
    ("discovered labels", {}, "labels", False, "half"),
    ("discovered labels, weighted", {}, "labels", True, "half"),
    ("discovered two columns", {}, "frame", True, "half"),
    ("rank 1 sees nothing, fixed", {"num_groups": 3}, "codes", False, "all on 0"),
    ("rank 1 sees nothing, discovered", {}, "labels", False, "all on 0"),
]


def _rows(split: str, rank: int) -> slice:
    if split == "half":
        return slice(0, N // 2) if rank == 0 else slice(N // 2, N)
    return slice(0, N) if rank == 0 else slice(N, N)


def _worker(rank: int, port: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=60))
    try:
        warnings.simplefilter("ignore", fm.UndefinedMetricWarning)
        d = _data()
        for name, settings, groups, weighted, split in CASES:
            one = fm.FairnessAccumulator(**settings)
            _feed(one, d, slice(0, N), groups, weighted)
            mine = fm.FairnessAccumulator(**settings)
            _feed(mine, d, _rows(split, rank), groups, weighted)
            if split == "half" and groups != "codes":  # the other half's group is really missing here
                assert ("c" in str(mine._labels)) == (rank == 1), (name, mine._labels)
            peek = copy.deepcopy(mine).sync()  # a synced copy leaves the local counts alone
            assert mine.sync() is mine, name
            _assert_same_report(mine, one)
            _assert_same_report(peek, one)
        _check_errors(rank, d)
    finally:
        dist.destroy_process_group()


def _raises(fn, match: str) -> None:
    try:
        fn()
    except ValueError as err:
        assert match in str(err), str(err)
    else:
        raise AssertionError(f"no ValueError matching {match!r}")


def _check_errors(rank: int, d: dict) -> None:
    acc = fm.FairnessAccumulator(num_groups=3)
    _feed(acc, d, _rows("half", rank), "codes", False)
    acc.sync()
    _raises(lambda: acc.update([1], [1], [0]), "`update` after `sync()`")
    _raises(lambda: acc.merge(fm.FairnessAccumulator(num_groups=3)), "`merge` after `sync()`")
    _raises(acc.sync, "`sync` after `sync()`")  # every process raises, nobody hangs
    acc.reset()
    _feed(acc, d, _rows("half", rank), "codes", False)
    acc.sync()  # usable again after reset
    # disagreements are found on every process before any counts move
    _raises(fm.FairnessAccumulator(num_groups=3 + rank).sync, "Expected `num_groups` to be the same")
    _raises(fm.FairnessAccumulator(num_groups=3, group_names=list("abc") if rank else None).sync,
            "Expected `group_names` to be the same")
    cols = fm.FairnessAccumulator()
    cols.update([1, 0], [1, 1], pd.DataFrame({"race" if rank == 0 else "sex": ["x", "y"]}))
    _raises(cols.sync, "Expected `sensitive_features` to be the same columns")
    empty = fm.FairnessAccumulator()
    assert empty.sync().table_ is None  # nobody saw data: nothing to report
    dist.barrier()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_processes_sync_to_the_one_process_result(monkeypatch):
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")  # loopback: no network interface needed
    mp.spawn(_worker, args=(_free_port(),), nprocs=WORLD, join=True)


def _cuda_worker(rank: int, port: int) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=60))
    try:
        d = {k: torch.as_tensor(v, device="cuda") for k, v in _data().items() if k in ("y_true", "y_pred", "codes")}
        one = fm.FairnessAccumulator(num_groups=3, validate_args=False)
        one.update(d["y_true"], d["y_pred"], d["codes"])
        mine = fm.FairnessAccumulator(num_groups=3, validate_args=False)
        s = _rows("half", rank)
        mine.update(d["y_true"][s], d["y_pred"][s], d["codes"][s])
        assert mine.sync().table_.device.type == "cuda"  # gloo sums on the CPU; the table comes back
        _assert_same_report(mine, one)
    finally:
        dist.destroy_process_group()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_two_processes_sync_cuda_tables(monkeypatch):
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(_cuda_worker, args=(_free_port(),), nprocs=WORLD, join=True)


def test_sync_without_process_group_is_a_no_op():
    assert not dist.is_initialized()
    d = _data()
    acc = fm.FairnessAccumulator()
    _feed(acc, d, slice(0, N), "labels", True)
    table, labels = acc.table_.clone(), list(acc._labels)
    assert acc.sync() is acc
    assert torch.equal(acc.table_, table) and acc._labels == labels
    acc.update([1], [0], ["a"])  # not synced: still accumulating
    assert acc.sync().sync() is acc
    assert fm.FairnessAccumulator(num_groups=2).sync().table_ is None
