"""Cost of the meta-learned weights: time per epoch of L2RW and FORML against ERM.

Two settings, each measured in the same run so the ratios compare like with like:

* MLP on tabular data shaped like Adult (30,000 rows, 100 features, hidden 64-64),
  batch 128;
* SmallCNN on Colored Digits (3x16x16 images), batch 64 (BatchNorm).

Each method runs with its exact meta-gradients (the default, ``method="auto"``: double
backward) and with ``method="last_layer"`` (the closed form through the final linear
layer). Every run, ERM included, gets the held-out set, so every epoch pays the same
end-of-epoch evaluation on it. Epochs of all methods are timed in turns (round robin,
after a warm-up epoch each) and each method's best epoch is kept, so a load that comes
and goes hits every method alike. The ratio of each round's epochs (method over the ERM
epoch of the same round) is printed too, as its median and range over the rounds: on a
shared machine it shows how far noise alone moves a ratio.

It also reports how close the last-layer weights are to the exact ones: the Spearman
rank correlation, per batch, between the last-layer and the exact per-example scores
before clamping and normalisation (L2RW: ``-dL/deps``; FORML: ``dL/dw``) on the same
batch, held-out batch and parameters, averaged over the batches of one epoch of
training with the exact weights.

Run: ``python benchmarks/bench_meta.py`` (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from fairlib.datasets import FairDataset, make_colored_digits
from fairlib.train import MLP, SmallCNN, fit
from fairlib.weighting import ERM, WeightingStrategy
from fairlib.weighting.base import Batch
from fairlib.weighting.forml import FORML
from fairlib.weighting.l2rw import L2RW

EXACT_GOAL, FAST_GOAL = 2.5, 1.3  # issue 15: at most this many times ERM per epoch


def tabular(n: int, d: int, seed: int) -> FairDataset:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen)
    group = (torch.rand(n, generator=gen) < 0.3).long()
    logit = x[:, :5].sum(1) - 0.8 * group
    y = (torch.rand(n, generator=gen) < torch.sigmoid(logit)).long()
    return FairDataset(X=x, y=y, sensitive={"group": group}, categories={"group": ["a", "b"]})


def epoch_times(make_model: Callable[[], nn.Module], train: FairDataset, meta: FairDataset,
                strategies: dict[str, Callable[[], WeightingStrategy]], batch_size: int,
                repeats: int) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Best epoch time of each strategy, the epochs of all strategies taken in turns; and
    per round, each strategy's epoch over the ERM epoch of the same round (paired: both
    ran seconds apart, so a slow phase of the machine hits both)."""
    models = {name: make_model() for name in strategies}

    def one(name: str) -> float:
        start = time.perf_counter()
        fit(models[name], train, strategy=strategies[name](), meta=meta, epochs=1,
            batch_size=batch_size, progress=False)
        return time.perf_counter() - start

    for name in strategies:  # warm-up
        one(name)
    best = dict.fromkeys(strategies, float("inf"))
    paired: dict[str, list[float]] = {name: [] for name in strategies}
    for _ in range(repeats):
        now = {name: one(name) for name in strategies}
        for name, t in now.items():
            best[name] = min(best[name], t)
            paired[name].append(t / now["ERM"])
    return best, paired


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rank correlation of two vectors (no ties expected: continuous scores)."""
    ra = a.argsort().argsort().double()
    rb = b.argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


class _Agreement(WeightingStrategy):
    """Trains with the exact strategy; on every batch, also computes the last-layer scores
    on the same batch, held-out batch and parameters, and records their rank correlation."""

    needs_graph = True  # the exact path reuses the loop's graph

    def __init__(self, kind: str = "L2RW") -> None:
        self.kind = kind

    def setup(self, train, *, meta=None, model=None, device="cpu", generator=None):
        super().setup(train, meta=meta, model=model, device=device, generator=generator)
        cls = L2RW if self.kind == "L2RW" else FORML
        seed = int(torch.randint(2**62, (1,), generator=generator))
        # same seed: both draw the same held-out batches
        self.exact_ = cls().setup(train, meta=meta, model=model, device=device,
                                  generator=torch.Generator().manual_seed(seed))
        self.fast_ = cls(method="last_layer").setup(train, meta=meta, model=model, device=device,
                                                    generator=torch.Generator().manual_seed(seed))
        self.corr_: list[float] = []
        return self

    def weights(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> torch.Tensor:
        if self.kind == "L2RW":
            fast = self.fast_.raw_scores(batch, model)  # first: it reuses the loop's forward
            exact = self.exact_.raw_scores(batch, model, losses)
            w = exact.clamp_min(0)
            w = w / w.sum() * len(w) if w.sum() > 0 else w
        else:
            w_now = self.exact_.weights_[batch.index]
            fast = self.fast_.meta_gradient(batch, model, w_now)
            exact = self.exact_.meta_gradient(batch, model, w_now, losses)
            new = (w_now - self.exact_.meta_lr * len(w_now) * exact).clamp(min=0).detach()
            self.exact_.weights_[batch.index] = new
            w = self.exact_._scale(new) * len(new) if new.sum() > 0 else torch.ones_like(new)
        self.corr_.append(rank_correlation(fast.detach(), exact.detach()))
        return w.detach()

    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        self.exact_.on_epoch_end(epoch, model)
        self.fast_.on_epoch_end(epoch, model)


def agreement(make_model: Callable[[], nn.Module], train: FairDataset, meta: FairDataset, kind: str,
              batch_size: int) -> tuple[float, float]:
    """Mean and minimum over one epoch's batches of the per-batch rank correlation."""
    probe = _Agreement(kind)
    fit(make_model(), train, strategy=probe, meta=meta, epochs=1, batch_size=batch_size, progress=False)
    corr = torch.tensor(probe.corr_)
    return float(corr.mean()), float(corr.min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds after the warm-up")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's); 1 is steadier on a shared machine")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    settings = []
    train, meta = tabular(30_000, 100, 0), tabular(1_000, 100, 1)
    settings.append(("MLP 100-64-64, 30k rows, batch 128", lambda: MLP(100, (64, 64), seed=0), train, meta, 128))
    digits = make_colored_digits(upscale=2, seed=0)
    settings.append(("SmallCNN, Colored Digits 16x16, batch 64", lambda: SmallCNN(seed=0), digits.train,
                     digits.meta, 64))
    strategies: dict[str, Callable[[], WeightingStrategy]] = {
        "ERM": ERM, "L2RW": L2RW, "FORML": FORML,
        "L2RW last_layer": lambda: L2RW(method="last_layer"),
        "FORML last_layer": lambda: FORML(method="last_layer"),
    }
    rows = []
    for name, make_model, tr, me, bs in settings:
        t, paired = epoch_times(make_model, tr, me, strategies, bs, args.repeats)
        corr = {kind: agreement(make_model, tr, me, kind, bs) for kind in ("L2RW", "FORML")}
        rows.append((name, t, paired, corr))
        print(f"{name}: " + ", ".join(f"{k} {v:.3f} s ({v / t['ERM']:.2f}x)" for k, v in t.items())
              + "; rank correlation last_layer vs exact (mean, min over batches): "
              + ", ".join(f"{k} {m:.2f} ({lo:.2f})" for k, (m, lo) in corr.items()), flush=True)
    print()
    print("| setting | method | exact s/epoch | exact / ERM | last_layer s/epoch | last_layer / ERM "
          "| rank corr. (mean, min) |")
    print("|---|---|---|---|---|---|---|")
    for name, t, _, corr in rows:
        print(f"| {name} | ERM | {t['ERM']:.3f} | 1.00x | | | |")
        for kind in ("L2RW", "FORML"):
            exact, fast = t[kind], t[f"{kind} last_layer"]
            m, lo = corr[kind]
            print(f"| | {kind} | {exact:.3f} | {exact / t['ERM']:.2f}x | {fast:.3f} | "
                  f"{fast / t['ERM']:.2f}x | {m:.2f} ({lo:.2f}) |")
    print()
    print("Paired ratios (each round's epoch over the same round's ERM epoch): median [min, max] "
          f"over {args.repeats} rounds")
    for name, _, paired, _ in rows:
        print(f"{name}: " + ", ".join(
            f"{k} {statistics.median(v):.3f}x [{min(v):.3f}, {max(v):.3f}]"
            for k, v in paired.items() if k != "ERM"))
    print()
    # The goal line: best epoch over best epoch (as in the table); the paired median above
    # is a second estimate, shown so that a reader can see how far noise moves the ratio.
    for name, t, paired, _ in rows:
        for kind in ("L2RW", "FORML"):
            for label, key, goal in (("exact", kind, EXACT_GOAL), ("last_layer", f"{kind} last_layer", FAST_GOAL)):
                ratio = t[key] / t["ERM"]
                status = "PASS" if ratio <= goal else "MISS"
                # three decimals: a ratio of 1.304 must not print as a missed "1.30x"
                print(f"[{status}] {kind} {label} at most {goal}x ERM, {name}: {ratio:.3f}x "
                      f"(paired median {statistics.median(paired[key]):.3f}x)")


if __name__ == "__main__":
    main()
