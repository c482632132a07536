"""The device core never synchronises with the host and never leaves the input device.

Runnable on CPU: a TorchDispatchMode records every aten op.  ``.item()``, ``float()``,
``bool()`` of a tensor and ``.tolist()`` all dispatch to ``aten._local_scalar_dense``;
host data turned into a tensor shows up as ``lift_fresh``; a device move as
``_to_copy``/``copy_`` with another device.
"""

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from fairlib.metrics import _bootstrap as boot
from fairlib.metrics import _core as core
from fairlib.metrics import equity, scores

FORBIDDEN = ("_local_scalar_dense", "lift_fresh", "lift_fresh_copy")


class OpRecorder(TorchDispatchMode):
    def __init__(self, device):
        super().__init__()
        self.device = torch.device(device)
        self.ops = []
        self.foreign = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.ops.append(func.__name__)
        out = func(*args, **kwargs)
        for t in tree_flatten((args, kwargs, out))[0]:
            if isinstance(t, torch.Tensor) and t.device != self.device and t.dim() > 0:
                self.foreign.append((func.__name__, t.device))
        if kwargs.get("device") not in (None, self.device):
            self.foreign.append((func.__name__, kwargs["device"]))
        return out


def _inputs(n=5000, groups=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    y_true = torch.randint(0, 2, (n,), generator=gen)
    y_pred = torch.randint(0, 2, (n,), generator=gen)
    g = torch.randint(0, groups, (n,), generator=gen)
    w = torch.rand(n, generator=gen, dtype=torch.float64)
    score = torch.rand(n, generator=gen, dtype=torch.float64)
    return y_true, y_pred, g, w, score


def test_count_table_and_every_measure_never_sync():
    y_true, y_pred, g, w, score = _inputs()
    rec = OpRecorder("cpu")
    with rec:
        table = core.count_table(y_true, y_pred, g, 6, w)
        by_group, overall, undefined = core.rates(table[core.WEIGHT], table[core.COUNT])
        results = [core.measure(by_group, overall, name, method, agg)
                   for name in core.MEASURES
                   for method in ("between_groups", "to_overall")
                   for agg in ("worst_case", "mean")]
        acc = by_group[:, core.RATES.index("accuracy")]
        acc_all = overall[core.RATES.index("accuracy")]
        results += [core.nanmin(acc),
                    equity.equity_scaled(acc, acc_all, 1.0, "abs"),
                    equity.equity_scaled(acc, acc_all, 1.0, "std", 1),
                    equity.scaled_disparity(acc, acc_all, "mean"),
                    equity.scaled_disparity(acc, acc_all, "max")]
        auc = scores.grouped_auc(y_true, score, g, 6, w)
        edges = torch.linspace(0, 1, 11, dtype=torch.float64)[1:-1]
        cal = scores.calibration_table(y_true, score, g, 6, edges, w)
        results += [auc, scores.ece_from_table(cal), scores.gap_from_table(cal),
                    scores.weighted_quantiles(score, edges, w)]
    bad = [op for op in rec.ops if op.startswith(FORBIDDEN)]
    assert not bad, f"host synchronisation in the device core: {bad}"
    assert not rec.foreign, f"tensors left the input device: {rec.foreign}"
    assert len(rec.ops) > 50  # the recorder did see the work
    assert all(r.device.type == "cpu" for r in results)


def test_gpu_table_path_never_syncs_and_equals_cpu_path():
    """count_table uses bincount on the CPU and a scatter-add elsewhere; check the latter here."""
    y_true, y_pred, g, w, _ = _inputs()
    rec = OpRecorder("cpu")
    with rec:
        scattered = core.count_table_scatter(core.cell_index(y_true, y_pred, g), 24, w)
    assert not [op for op in rec.ops if op.startswith(FORBIDDEN)] and not rec.foreign
    assert "index_add.default" in rec.ops or any(op.startswith("index_add") for op in rec.ops)
    torch.testing.assert_close(scattered.view(3, 6, 4), core.count_table(y_true, y_pred, g, 6, w),
                               rtol=1e-12, atol=1e-9)
    unweighted = core.count_table_scatter(core.cell_index(y_true, y_pred, g), 24)
    assert torch.equal(unweighted.view(3, 6, 4), core.count_table(y_true, y_pred, g, 6))


def test_bootstrap_resampling_never_syncs():
    y_true, y_pred, g, _, _ = _inputs()
    table = core.count_table(y_true, y_pred, g, 6)
    gen = torch.Generator().manual_seed(0)
    rec = OpRecorder("cpu")
    with rec:
        counts = boot.multinomial_counts(table[core.COUNT], 200, gen)
        by_group, overall = boot.resampled_rates(counts, counts, float("nan"))
        core.measure(by_group, overall, "equalized_odds_difference")
    assert not [op for op in rec.ops if op.startswith(FORBIDDEN)]
    assert not rec.foreign


def test_recorder_catches_item_and_device_moves():
    """Guard against a vacuous test: the recorder must see a sync when there is one."""
    x = torch.ones(3)
    rec = OpRecorder("cpu")
    with rec:
        float(x.sum())
        torch.tensor([1.0, 2.0])
    assert "_local_scalar_dense.default" in rec.ops or "_local_scalar_dense" in " ".join(rec.ops)
    assert any(op.startswith("lift_fresh") for op in rec.ops)
    rec = OpRecorder("meta")
    with rec:
        torch.zeros(2, device="cpu") + 1
    assert rec.foreign


def test_chunked_cpu_table_equals_scatter_table(monkeypatch):
    y_true, y_pred, g, w, _ = _inputs(n=5003)
    monkeypatch.setattr(core, "_CPU_CHUNK", 777)  # several chunks and a ragged last one
    for weight in (None, w):
        chunked = core.count_table(y_true, y_pred, g, 6, weight)
        scattered = core.count_table_scatter(core.cell_index(y_true, y_pred, g), 24, weight)
        torch.testing.assert_close(chunked, scattered.view(3, 6, 4), rtol=1e-12, atol=1e-9)
    assert float(chunked[core.COUNT].sum()) == 5003


def test_unchecked_accumulator_update_never_syncs():
    from fairlib.metrics import FairnessAccumulator

    y_true, y_pred, g, w, _ = _inputs()
    acc = FairnessAccumulator(num_groups=6, validate_args=False)
    rec = OpRecorder("cpu")
    with rec:
        acc.update(y_true, y_pred, g, w)
        acc.update(y_true, y_pred, g, w)
    assert not [op for op in rec.ops if op.startswith(FORBIDDEN)] and not rec.foreign
    assert torch.allclose(acc.table_, 2 * core.count_table(y_true, y_pred, g, 6, w))
