"""Cost of the meta-learned weights: time per epoch of L2RW and FORML against ERM.

Two settings, each measured in the same run so the ratios compare like with like:

* MLP on tabular data shaped like Adult (30,000 rows, 100 features, hidden 64-64),
  batch 128; FORML/L2RW take their per-example-gradient path here;
* SmallCNN on Colored Digits (3x16x16 images), batch 64; BatchNorm makes both use
  double backward.

Each epoch time is the best of ``--repeats`` epochs after a warm-up epoch. Run:
``python benchmarks/bench_meta.py`` (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from fairlib.datasets import FairDataset, make_colored_digits
from fairlib.train import MLP, SmallCNN, fit
from fairlib.weighting import ERM
from fairlib.weighting.forml import FORML
from fairlib.weighting.l2rw import L2RW


def tabular(n: int, d: int, seed: int) -> FairDataset:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen)
    group = (torch.rand(n, generator=gen) < 0.3).long()
    logit = x[:, :5].sum(1) - 0.8 * group
    y = (torch.rand(n, generator=gen) < torch.sigmoid(logit)).long()
    return FairDataset(X=x, y=y, sensitive={"group": group}, categories={"group": ["a", "b"]})


def epoch_time(make_model, train, meta, strategy, batch_size: int, repeats: int) -> float:
    model = make_model()
    fit(model, train, strategy=strategy, meta=meta, epochs=1, batch_size=batch_size, progress=False)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fit(model, train, strategy=strategy, meta=meta, epochs=1, batch_size=batch_size, progress=False)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    settings = []
    train, meta = tabular(30_000, 100, 0), tabular(1_000, 100, 1)
    settings.append(("MLP 100-64-64, 30k rows, batch 128", lambda: MLP(100, (64, 64), seed=0), train, meta, 128))
    digits = make_colored_digits(upscale=2, seed=0)
    settings.append(("SmallCNN, Colored Digits 16x16, batch 64", lambda: SmallCNN(seed=0), digits.train,
                     digits.meta, 64))
    rows = []
    for name, make_model, tr, me, bs in settings:
        # the fit's evaluation of meta/test is not part of the method's cost: time without test,
        # and the meta set is only used by the strategies that need it
        erm = epoch_time(make_model, tr, None, ERM(), bs, args.repeats)
        l2rw = epoch_time(make_model, tr, me, L2RW(), bs, args.repeats)
        forml = epoch_time(make_model, tr, me, FORML(), bs, args.repeats)
        path = FORML().setup(tr, meta=me, model=make_model()).path_
        rows.append((name, erm, l2rw, forml, path))
        print(f"{name}: ERM {erm:.2f} s, L2RW {l2rw:.2f} s ({l2rw / erm:.1f}x), "
              f"FORML {forml:.2f} s ({forml / erm:.1f}x), meta-gradient path {path}", flush=True)
    print()
    print("| setting | ERM s/epoch | L2RW s/epoch | FORML s/epoch | L2RW / ERM | FORML / ERM | path |")
    print("|---|---|---|---|---|---|---|")
    for name, erm, l2rw, forml, path in rows:
        print(f"| {name} | {erm:.2f} | {l2rw:.2f} | {forml:.2f} | {l2rw / erm:.1f}x | {forml / erm:.1f}x | {path} |")
    print()
    for name, erm, l2rw, forml, _ in rows:
        for method, t in (("L2RW", l2rw), ("FORML", forml)):
            ratio = t / erm
            status = "PASS" if ratio <= 3 else "MISS"
            aim = " (aim 2x met)" if ratio <= 2 else ""
            print(f"[{status}] {method} at most 3x ERM, {name}: {ratio:.1f}x{aim}")


if __name__ == "__main__":
    main()
