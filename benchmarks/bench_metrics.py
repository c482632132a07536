"""fairlib metrics against fairlearn and torchmetrics, side by side in one run.

Workload at each size: 8 groups, binary labels and predictions as int64 tensors
(numpy arrays for fairlearn).  Each library computes per-group selection rate, TPR
and FPR plus its parity measures:

* fairlib: ``fairness_report`` (validates, builds the count table, every rate) and
  every parity measure for both methods; "one call" is a single
  ``demographic_parity_difference(...)`` read as a float; "fairlib core" is the streaming
  accumulator's unchecked update (``validate_args=False``, the path inside a training
  loop) followed by every parity measure on the device;
* fairlearn: ``MetricFrame`` over {selection_rate, TPR, FPR} with ``difference`` and
  ``ratio``;
* torchmetrics: ``binary_fairness(task="all")`` (demographic-parity and
  equal-opportunity ratios);
* roofline proxy: one sum over each input, i.e. reading the same bytes once.

Times are the best of several repeats after a warm-up. Run: ``make bench``; on a GPU,
``--device cuda`` times fairlib and torchmetrics there (fairlearn, a CPU library, is then
left out).
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np
import torch

import fairlib.metrics as fm
from fairlib.metrics import _core as core

GROUPS = 8


DEVICE = torch.device("cpu")


def _sync() -> None:
    if DEVICE.type == "cuda":  # GPU work is asynchronous: wait for it inside the timed region
        torch.cuda.synchronize(DEVICE)


def best_time(fn, repeats: int, min_repeats: int = 3) -> float:
    """Best wall time in seconds over ``repeats`` calls after one warm-up call."""
    fn()
    _sync()
    times = []
    for _ in range(max(repeats, min_repeats)):
        start = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - start)
    return min(times)


def make_inputs(n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    groups = torch.randint(0, GROUPS, (n,), generator=gen)
    y_true = torch.randint(0, 2, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.2 + 0.05 * groups
    y_pred = torch.where(flip, 1 - y_true, y_true)
    return y_true.to(DEVICE), y_pred.to(DEVICE), groups.to(DEVICE)


def fairlib_full(y_true, y_pred, groups):
    rep = fm.fairness_report(y_true, y_pred, sensitive_features=groups)
    return rep.measures("between_groups"), rep.measures("to_overall")


def fairlib_single(y_true, y_pred, groups):
    """One validated public call, as a user writes it (a float out)."""
    return float(fm.demographic_parity_difference(y_true, y_pred, sensitive_features=groups))


def fairlib_core(y_true, y_pred, groups):
    acc = fm.FairnessAccumulator(num_groups=GROUPS, validate_args=False)
    acc.update(y_true, y_pred, groups)
    table = acc.table_
    by_group, overall, _ = core.rates(table[core.WEIGHT], table[core.COUNT])
    return [core.measure(by_group, overall, name, method)
            for name in core.MEASURES for method in ("between_groups", "to_overall")]


def fairlearn_frame(y_true, y_pred, groups):
    import fairlearn.metrics as flm

    mf = flm.MetricFrame(
        metrics={"sr": flm.selection_rate, "tpr": flm.true_positive_rate, "fpr": flm.false_positive_rate},
        y_true=y_true, y_pred=y_pred, sensitive_features=groups,
    )
    return mf.difference(), mf.ratio(), mf.difference(method="to_overall")


def torchmetrics_fairness(y_true, y_pred, groups):
    from torchmetrics.functional.classification import binary_fairness

    return binary_fairness(y_pred, y_true, groups, task="all")


def roofline(y_true, y_pred, groups):
    return y_true.sum() + y_pred.sum() + groups.sum()


def bench_sizes(sizes, fairlearn_max: int, repeats: int) -> list[dict]:
    rows = []
    for n in sizes:
        y_true, y_pred, groups = make_inputs(n)
        np_args = (y_true.cpu().numpy(), y_pred.cpu().numpy(), groups.cpu().numpy())
        r = max(1, repeats if n < 10**7 else repeats // 2)
        row = {"n": n}
        row["fairlib"] = best_time(lambda: fairlib_full(y_true, y_pred, groups), r)
        row["single"] = best_time(lambda: fairlib_single(y_true, y_pred, groups), r)
        row["fairlib_core"] = best_time(lambda: fairlib_core(y_true, y_pred, groups), r)
        row["torchmetrics"] = best_time(lambda: torchmetrics_fairness(y_true, y_pred, groups), r)
        row["roofline"] = best_time(lambda: roofline(y_true, y_pred, groups), r)
        if n <= fairlearn_max and DEVICE.type == "cpu":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                row["fairlearn"] = best_time(lambda: fairlearn_frame(*np_args), 1, min_repeats=2)
        rows.append(row)
        print(_size_line(row), flush=True)
    return rows


def _size_line(row: dict) -> str:
    ms = {k: v * 1e3 for k, v in row.items() if k != "n"}
    parts = [f"n={row['n']:>9,}"] + [f"{k} {v:9.2f} ms" for k, v in ms.items()]
    return "  ".join(parts)


def bench_bootstrap(n: int, n_boot: int, fairlearn_boot: int) -> dict:
    y_true, y_pred, groups = make_inputs(n, seed=1)
    rep = fm.fairness_report(y_true, y_pred, sensitive_features=groups)

    def ours():
        ci = rep.bootstrap(n_boot, seed=0)
        return ci.summary(), ci.by_group("selection_rate"), ci.by_group("true_positive_rate")

    out = {"n": n, "n_boot": n_boot}
    out["fairlib"] = best_time(ours, 3)
    if DEVICE.type != "cpu" or fairlearn_boot < 1:
        return out
    import fairlearn.metrics as flm

    def theirs():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mf = flm.MetricFrame(
                metrics={"sr": flm.selection_rate, "tpr": flm.true_positive_rate,
                         "fpr": flm.false_positive_rate},
                y_true=y_true.numpy(), y_pred=y_pred.numpy(), sensitive_features=groups.numpy(),
                n_boot=fairlearn_boot, ci_quantiles=[0.025, 0.975], random_state=0,
            )
            return mf.difference_ci()

    base = best_time(lambda: fairlearn_frame(y_true.numpy(), y_pred.numpy(), groups.numpy()), 1, 2)
    with_boot = best_time(theirs, 1, 2)
    per_resample = max(with_boot - base, 0.0) / fairlearn_boot
    out["fairlearn_per_resample"] = per_resample
    out["fairlearn_extrapolated"] = base + per_resample * n_boot
    return out


def report(rows: list[dict], boot: dict) -> str:
    lines = [
        "| N | fairlib | one call | fairlib core | fairlearn | torchmetrics | roofline proxy | "
        "fairlearn / fairlib | torchmetrics / fairlib | fairlib / roofline | one call / roofline "
        "| core / roofline |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fl = r.get("fairlearn")
        lines.append(
            f"| {r['n']:,} | {r['fairlib'] * 1e3:.2f} ms | {r['single'] * 1e3:.2f} ms "
            f"| {r['fairlib_core'] * 1e3:.2f} ms | "
            + (f"{fl * 1e3:.0f} ms" if fl else "not run")
            + f" | {r['torchmetrics'] * 1e3:.2f} ms | {r['roofline'] * 1e3:.2f} ms | "
            + (f"{fl / r['fairlib']:.0f}x" if fl else "-")
            + f" | {r['torchmetrics'] / r['fairlib']:.1f}x | {r['fairlib'] / r['roofline']:.1f}x"
            + f" | {r['single'] / r['roofline']:.1f}x | {r['fairlib_core'] / r['roofline']:.1f}x |"
        )
    theirs = (f"; fairlearn {boot['fairlearn_per_resample']:.2f} s per resample, "
              f"{boot['fairlearn_extrapolated']:.0f} s extrapolated "
              f"({boot['fairlearn_extrapolated'] / boot['fairlib']:.0f}x)"
              if "fairlearn_extrapolated" in boot else " (fairlearn not run)")
    lines += ["", f"Bootstrap, N = {boot['n']:,}, {boot['n_boot']:,} resamples: fairlib "
              f"{boot['fairlib']:.3f} s{theirs}."]
    return "\n".join(lines)


def check_targets(rows: list[dict], boot: dict) -> list[str]:
    """The issue's targets, each with the measured value and PASS/MISS."""
    by_n = {r["n"]: r for r in rows}
    out = []

    def line(name, value, ok):
        out.append(f"[{'PASS' if ok else 'MISS'}] {name}: {value}")

    if 10**6 in by_n and "fairlearn" in by_n[10**6]:
        v = by_n[10**6]["fairlearn"] / by_n[10**6]["fairlib"]
        line(">= 500x faster than fairlearn at 1e6", f"{v:.0f}x", v >= 500)
    if 10**7 in by_n:
        v = by_n[10**7]["torchmetrics"] / by_n[10**7]["fairlib"]
        line(">= 2x faster than torchmetrics at 1e7", f"{v:.1f}x", v >= 2)
        v = by_n[10**7]["fairlib"] / by_n[10**7]["roofline"]
        line("within 4x of the roofline proxy at 1e7 (validated call)", f"{v:.1f}x", v <= 4)
        line("issue 15: within 2x of the roofline proxy at 1e7 (validated call)",
             f"{v:.2f}x", v <= 2)
        v = by_n[10**7]["single"] / by_n[10**7]["roofline"]
        line("issue 15: within 2x of the roofline proxy at 1e7 (one public parity call)",
             f"{v:.2f}x", v <= 2)
        v = by_n[10**7]["fairlib_core"] / by_n[10**7]["roofline"]
        line("within 4x of the roofline proxy at 1e7 (device core)", f"{v:.1f}x", v <= 4)
    if 10**6 in by_n:
        for key, what in (("fairlib", "validated call"), ("single", "one public parity call")):
            v = by_n[10**6][key] * 1e3
            line(f"issue 15: at most 2 ms at 1e6 ({what})", f"{v:.2f} ms", v <= 2)
    line(f"{boot['n_boot']} bootstrap intervals at {boot['n']:,} rows under 1 s",
         f"{boot['fairlib']:.3f} s", boot["fairlib"] < 1.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**5, 10**6, 10**7])
    parser.add_argument("--fairlearn-max", type=int, default=10**6)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--fairlearn-boot", type=int, default=2, help="0: leave fairlearn's bootstrap out")
    parser.add_argument("--device", default="cpu", help="where fairlib and torchmetrics run, e.g. cuda")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own; fairlib's CPU fast path splits "
                             "inputs of 2M+ rows between two threads when this is 2 or more)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but CUDA is not available")
    print(f"device: {DEVICE}; machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, "
          f"Python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}")
    rows = bench_sizes(args.sizes, args.fairlearn_max, args.repeats)
    boot = bench_bootstrap(10**6, args.n_boot, args.fairlearn_boot)
    print()
    print(report(rows, boot))
    print()
    print("\n".join(check_targets(rows, boot)))


if __name__ == "__main__":
    main()
