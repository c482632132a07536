"""Throughput of fairlib.experiments.run_study: serial vs a 2-worker process pool vs Ray.

Workload: 8 runs (4 methods x 2 seeds) of an MLP (hidden 64-64) on the synthetic task
with 20,000 rows, 8 epochs each, one run about as long as a chapter's typical run.
Each backend executes the same 8 specs without a store (nothing skipped); the
records are checked to be identical across backends. The time of each backend
includes starting its workers (spawned processes import torch; Ray's workers too,
but Ray itself is started before the clock, as a cluster would be).

Ray's per-run overhead is measured separately: 64 runs of a function that returns at
once, after a warm-up batch, on the local instance with 2 CPUs.

Run: ``python benchmarks/bench_study.py`` (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from fairlib.experiments import grid, run_study
from fairlib.experiments.backends import map_unordered

GOAL = 1.8  # process pool of 2 workers against serial


def specs(n_rows: int, epochs: int) -> list:
    return grid(datasets=[("synthetic", {"n": n_rows})], models=[("mlp", {"hidden": [64, 64]})],
                methods=["ERM", "Reweighing", ("GroupDRO", {"eta_q": 0.1}), "FORML"], seeds=[0, 1],
                train={"epochs": epochs, "lr": 0.01, "device": "cpu"})


def _noop(x: int) -> int:
    return x


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def comparable(frame):
    return frame.drop(columns=["seconds"]).sort_values("run_id").reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=8,
                        help="epochs per run: 8 gives runs of about 3 s, 24 about 7 s")
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    work = specs(args.rows, args.epochs)
    print(f"fairlib study benchmark: {len(work)} runs, {args.rows:,} rows, {args.epochs} epochs; "
          f"Python {platform.python_version()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads in this process)")
    serial, t_serial = timed(lambda: run_study(work, backend="serial", progress=False))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what each pool worker uses: separates threading from parallelism
    try:
        serial1, t_serial1 = timed(lambda: run_study(work, backend="serial", progress=False))
    finally:
        torch.set_num_threads(threads)
    process, t_process = timed(lambda: run_study(work, backend="process", workers=2, progress=False))
    rows = [("serial", t_serial, serial), ("serial, 1 torch thread", t_serial1, serial1),
            ("process, 2 workers", t_process, process)]
    overhead = None
    if not args.no_ray:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            on_ray, t_ray = timed(lambda: run_study(work, backend="ray", progress=False))
            rows.append(("ray, 2 CPUs", t_ray, on_ray))
            list(map_unordered(_noop, range(8), backend="ray"))  # warm workers
            _, t_noop = timed(lambda: list(map_unordered(_noop, range(64), backend="ray")))
            overhead = t_noop / 64
        finally:
            ray.shutdown()
    mean_run = float(serial["seconds"].mean())
    print(f"\nmean run (serial): {mean_run:.2f} s\n")
    print("| backend | wall | speed-up vs serial | records equal to serial |")
    print("|---|---|---|---|")
    for name, t, frame in rows:
        same = comparable(frame).equals(comparable(serial))
        print(f"| {name} | {t:.1f} s | {t_serial / t:.2f}x | {'yes' if same else 'NO'} |")
    if overhead is not None:
        print(f"\nRay per-run overhead (64 no-op runs after warm-up): {1000 * overhead:.1f} ms per run")
    speedup = t_serial / t_process
    print(f"\n{'PASS' if speedup >= GOAL else 'MISS'}: process pool {speedup:.2f}x serial (goal >= {GOAL}x)")


if __name__ == "__main__":
    main()
