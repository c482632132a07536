"""fairlib.studies.label_noise_audit: flags, precision/recall against references, recorded step weights."""

import math

import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import precision_score, recall_score

import fairlib.metrics as fm
from fairlib.datasets import corrupt_labels, make_biased_classification
from fairlib.studies.label_noise_audit import (
    detection_curve,
    detection_rates,
    flag_most_suspicious,
)
from fairlib.train import LogisticRegression, fit, predict_scores, sample_losses
from fairlib.weighting import ERM, FORML, L2RW, StepWeightRecorder


def test_flags_count_ties_direction_and_nan():
    s = torch.tensor([3.0, 1.0, float("nan"), 1.0, 2.0, 0.5])
    assert flag_most_suspicious(s, 0.5).nonzero().flatten().tolist() == [1, 3, 5]
    # ties: the lower index wins
    assert flag_most_suspicious(s, 2 / 6).nonzero().flatten().tolist() == [1, 5]
    assert flag_most_suspicious(s, 1 / 6, suspicious="high").nonzero().flatten().tolist() == [0]
    # NaN is flagged only after every finite score, in both directions
    assert not flag_most_suspicious(s, 5 / 6)[2]
    assert not flag_most_suspicious(s, 5 / 6, suspicious="high")[2]
    assert int(flag_most_suspicious(s, 1e-9).sum()) == 1  # at least one row


@pytest.mark.parametrize("fraction", [0, 1.5, -0.1, True])
def test_flags_reject_bad_fraction(fraction):
    with pytest.raises(ValueError, match="Expected `fraction` to be in"):
        flag_most_suspicious(torch.ones(4), fraction)


def test_flags_reject_bad_direction_and_shape():
    with pytest.raises(ValueError, match="Expected `suspicious` to be 'low' or 'high'"):
        flag_most_suspicious(torch.ones(4), 0.5, suspicious="small")
    with pytest.raises(ValueError, match="Expected `scores` to be a 1-d tensor"):
        flag_most_suspicious(torch.ones(2, 2), 0.5)


def test_detection_rates_match_sklearn_and_fairlib_rates():
    gen = torch.Generator().manual_seed(0)
    flipped = torch.rand(500, generator=gen) < 0.1
    flagged = torch.rand(500, generator=gen) < 0.2
    r = detection_rates(flagged, flipped)
    expected = precision_score(flipped.numpy(), flagged.numpy())
    assert r["precision"] == pytest.approx(expected, abs=1e-12)
    assert r["recall"] == pytest.approx(recall_score(flipped.numpy(), flagged.numpy()), abs=1e-12)
    # recall is the TPR of the flags against the flips; precision the TPR the other way round
    tpr = fm.true_positive_rate
    assert r["recall"] == pytest.approx(float(tpr(flipped.long(), flagged.long())))
    assert r["precision"] == pytest.approx(float(tpr(flagged.long(), flipped.long())))
    assert r["prevalence"] == pytest.approx(float(flipped.double().mean()))
    assert r["lift"] == pytest.approx(r["precision"] / r["prevalence"])


def test_detection_rates_undefined_is_nan_with_warning():
    with pytest.warns(UserWarning, match="recall .* undefined"):
        r = detection_rates(torch.tensor([True, False]), torch.tensor([False, False]))
    assert math.isnan(r["recall"]) and r["precision"] == 0.0
    with pytest.raises(ValueError, match="same shape"):
        detection_rates(torch.ones(3, dtype=torch.bool), torch.ones(4, dtype=torch.bool))


def test_curve_recall_grows_and_ends_at_prevalence():
    gen = torch.Generator().manual_seed(1)
    scores = torch.rand(300, generator=gen)
    flipped = torch.rand(300, generator=gen) < 0.2
    curve = detection_curve(scores, flipped, [0.1, 0.3, 0.6, 1.0])
    assert curve["recall"].is_monotonic_increasing
    assert curve["n_flagged"].tolist() == [30, 90, 180, 300]
    last = curve.iloc[-1]
    assert last["recall"] == 1.0 and last["precision"] == pytest.approx(last["prevalence"])
    # a perfect score separates completely
    share = float(flipped.double().mean())
    perfect = detection_curve(torch.where(flipped, 0.0, 1.0), flipped, [share])
    assert perfect.loc[0, "precision"] == 1.0 and perfect.loc[0, "recall"] == 1.0


def test_sample_losses_are_bce_of_the_predictions_and_keep_the_mode():
    data = make_biased_classification(150, seed=0)
    model = LogisticRegression(2, seed=3)
    fit(model, data, epochs=1, progress=False, device="cpu")
    model.train()
    losses = sample_losses(model, data, batch_size=64)
    p = predict_scores(model, data, device="cpu")
    torch.testing.assert_close(losses, F.binary_cross_entropy(p, data.y.float(), reduction="none"),
                               atol=1e-5, rtol=1e-5)
    assert model.training


def test_recorder_is_transparent_and_counts_every_step():
    data = make_biased_classification(240, seed=0)
    meta = make_biased_classification(80, seed=1)

    def train(strategy):
        model = LogisticRegression(2, seed=0)
        fit(model, data, strategy=strategy, meta=meta, epochs=3, batch_size=40, progress=False,
            seed=5)
        return model

    plain = L2RW()
    m_plain = train(plain)
    rec = StepWeightRecorder(L2RW())
    m_rec = train(rec)
    for a, b in zip(m_plain.parameters(), m_rec.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)  # same seed, same training
    assert rec.count_.tolist() == [3.0] * 240
    torch.testing.assert_close(rec.strategy.last_weights_, plain.last_weights_)
    # L2RW step weights average 1 within every batch (float32), so the total is N * epochs
    assert float(rec.weight_sum_.sum()) == pytest.approx(240 * 3, rel=1e-6)
    assert bool((rec.mean_weights() >= 0).all())


def test_recorder_of_erm_gives_ones_and_forwards_requires_meta():
    data = make_biased_classification(100, seed=0)
    rec = StepWeightRecorder(ERM())
    fit(LogisticRegression(2, seed=0), data, strategy=rec, epochs=2, batch_size=30, progress=False)
    torch.testing.assert_close(rec.mean_weights(), torch.ones(100, dtype=torch.float64))
    with pytest.raises(ValueError, match="Expected `meta` to be a non-empty held-out dataset"):
        fit(LogisticRegression(2, seed=0), data, strategy=StepWeightRecorder(L2RW()), epochs=1,
            progress=False)
    with pytest.raises(TypeError, match="Expected `strategy` to be a WeightingStrategy"):
        fit(LogisticRegression(2, seed=0), data, strategy=StepWeightRecorder("erm"), epochs=1,
            progress=False)


def test_never_drawn_samples_are_nan_with_warning():
    rec = StepWeightRecorder(ERM()).setup(make_biased_classification(5, seed=0))
    with pytest.warns(UserWarning, match="5 samples were never drawn"):
        assert bool(rec.mean_weights().isnan().all())


def test_forml_weights_pick_out_flipped_labels_on_a_synthetic_task():
    """The chapter's claim at toy scale: low FORML weights are enriched in flipped rows."""
    task = dict(separation=3.0, base_rates=(0.5, 0.4), minority_fraction=0.4)
    clean = make_biased_classification(1500, seed=0, **task)
    meta = make_biased_classification(300, seed=1, **task)
    noisy, flipped = corrupt_labels(clean, {("minority", 1): 0.3}, seed=0)
    forml = FORML(meta_lr=3.0)
    fit(LogisticRegression(2, seed=0), noisy, strategy=forml, meta=meta, epochs=5, batch_size=100,
        progress=False, device="cpu")
    prevalence = float(flipped.double().mean())
    r = detection_rates(flag_most_suspicious(forml.weights_, prevalence), flipped)
    assert r["lift"] > 3.0
    assert float(forml.weights_[flipped].mean()) < float(forml.weights_[~flipped].mean())


# -- chapter 5's protocol: data set, methods, per-run audit, grid, helpers ---------------------
@pytest.fixture()
def fake_adult(monkeypatch):
    """``load_adult("sex")`` replaced by 3,000 synthetic rows with Adult's sex categories."""
    import fairlib.datasets
    from fairlib.datasets import FairDataset
    from fairlib.studies import label_noise_audit as lna

    g = torch.Generator().manual_seed(7)
    n = 3000
    sex = (torch.rand(n, generator=g) < 0.67).long()  # 1 = Male
    X = torch.randn(n, 4, generator=g)
    y = torch.bernoulli(torch.sigmoid(2.0 * X[:, 0] - 1.5 + 1.0 * sex), generator=g).long()
    adult = FairDataset(X=X, y=y, sensitive={"sex": sex}, categories={"sex": ["Female", "Male"]})
    calls = []

    def load_adult(sensitive="sex", **kwargs):
        calls.append(sensitive)
        return adult

    monkeypatch.setattr(fairlib.datasets, "load_adult", load_adult)
    lna._adult.cache_clear()
    yield calls
    lna._adult.cache_clear()


SMALL = {"epochs": 2, "batch_size": 128, "lr": 0.01, "device": "cpu"}


def _spec(method, **kwargs):
    from fairlib.experiments import RunSpec

    return RunSpec("adult_flipped", "logistic", method, seed=kwargs.pop("seed", 0),
                   dataset_params={"flip_rate": 0.3, "meta_fraction": 0.2, "test_fraction": 0.3},
                   train=SMALL, metrics=["flip_audit"], **kwargs)


def test_adult_flipped_is_registered_deterministic_and_flips_one_cell(fake_adult):
    from fairlib.experiments.registry import get_dataset
    from fairlib.studies.label_noise_audit import flipped_rows, load_adult_flipped

    assert get_dataset("adult_flipped") is load_adult_flipped
    split = {"flip_rate": 0.3, "meta_fraction": 0.2, "test_fraction": 0.3}
    train, meta, test = load_adult_flipped(seed=3, **split)
    assert fake_adult == ["sex"] and len(train) + len(meta) + len(test) == 3000
    flipped = flipped_rows(train)
    true_y = train.extras["y_clean"]
    cell = (train.group == 0) & (true_y == 1)  # Female positives
    assert int(flipped.sum()) == round(0.3 * int(cell.sum()))
    assert bool(flipped[~cell].logical_not().all()) and bool((train.y[flipped] == 0).all())
    counts = meta.summary()["n"]
    assert abs(int(counts["Female"]) - int(counts["Male"])) <= 1  # half of the meta rows per group
    assert "y_clean" not in meta.extras and "y_clean" not in test.extras
    again = load_adult_flipped(seed=3, **split)
    assert torch.equal(again.train.source_index, train.source_index)
    assert torch.equal(flipped_rows(again.train), flipped)
    other = load_adult_flipped(seed=4, **split)
    assert not torch.equal(other.test.source_index, test.source_index)
    load_adult_flipped(seed=5)
    assert len(fake_adult) == 1  # loaded once per process


def test_flip_rate_zero_keeps_the_split_and_the_true_labels(fake_adult):
    from fairlib.studies.label_noise_audit import flipped_rows, load_adult_flipped

    noisy = load_adult_flipped(seed=1, flip_rate=0.5)
    clean = load_adult_flipped(seed=1, flip_rate=0.0)
    for a, b in zip(noisy, clean, strict=True):
        assert torch.equal(a.source_index, b.source_index)
    assert not bool(flipped_rows(clean.train).any())
    assert torch.equal(clean.train.y, noisy.train.extras["y_clean"])
    other_way = load_adult_flipped(seed=1, flip_group="Male", flip_label=0, flip_rate=0.5)
    moved = flipped_rows(other_way.train)
    assert bool((other_way.train.group[moved] == 1).all())
    assert bool((other_way.train.y[moved] == 1).all())


def test_adult_flipped_and_flipped_rows_refuse_bad_input(fake_adult):
    from fairlib.datasets import make_biased_classification
    from fairlib.studies.label_noise_audit import flipped_rows, load_adult_flipped

    with pytest.raises(ValueError, match="`flip_group` to be one of \\['Female', 'Male'\\]"):
        load_adult_flipped(seed=0, flip_group="female")
    with pytest.raises(ValueError, match="extras\\['y_clean'\\]"):
        flipped_rows(make_biased_classification(50, seed=0))


@pytest.mark.parametrize("method, direction", [("FORML", "low"), ("L2RW (uniform)", "low"),
                                               ("L2RW (stratified)", "low"), ("ERM", "high")])
def test_flip_audit_in_the_record_matches_the_detection_helpers(fake_adult, method, direction):
    from fairlib.experiments import evaluate_run, execute, train_run
    from fairlib.studies.label_noise_audit import AUDIT_FRACTIONS, flipped_rows, suspicion
    from fairlib.weighting import StepWeightRecorder

    spec = _spec(method, seed=2)
    record = execute(spec)
    assert record["status"] == "ok", record["error"]
    run = train_run(spec)
    if method.startswith("L2RW"):
        assert isinstance(run.strategy, StepWeightRecorder)
        assert run.strategy.strategy.stratified == method.endswith("(stratified)")
    assert evaluate_run(run)["audit_precision"] == record["audit_precision"]  # same training
    scores, suspicious = suspicion(run)
    assert suspicious == direction
    flipped = flipped_rows(run.train)
    share = float(flipped.double().mean())
    at = detection_rates(flag_most_suspicious(scores, share, suspicious=direction), flipped)
    assert record["audit_prevalence"] == pytest.approx(share)
    assert record["audit_precision"] == pytest.approx(at["precision"])
    assert at["precision"] == pytest.approx(at["recall"])
    assert record["audit_lift"] == pytest.approx(at["lift"])
    curve = detection_curve(scores, flipped, AUDIT_FRACTIONS, suspicious=direction)
    for f, p, r in zip(curve["fraction"], curve["precision"], curve["recall"], strict=True):
        assert record[f"audit_precision[{f:g}]"] == pytest.approx(p)
        assert record[f"audit_recall[{f:g}]"] == pytest.approx(r)
    cell = (run.train.group == 0) & (run.train.y == 0)  # where the flipped rows sit
    assert record["audit_cell_prevalence"] == pytest.approx(float(flipped[cell].double().mean()))
    for key in ("audit_flags_in_cell", "audit_cell_precision", "audit_cell_prevalence"):
        assert 0.0 <= record[key] <= 1.0
    assert record["audit_score_flipped"] == pytest.approx(float(scores[flipped].double().mean()))


def test_flip_audit_refuses_a_run_without_flips(fake_adult):
    from fairlib.experiments import execute
    from fairlib.studies.label_noise_audit import clean_labels

    spec = _spec("ERM")
    record = execute(spec.replace(dataset_params={**dict(spec.dataset_params), "flip_rate": 0.0}))
    assert record["status"] == "failed" and "flipped labels" in record["error"]
    assert execute(clean_labels(spec))["status"] == "ok"  # the clean reference drops the audit


def test_tuned_audit_gives_intervals_inside_the_unit_range(fake_adult):
    from fairlib.experiments import summarize, tune_and_run
    from fairlib.studies.label_noise_audit import audit_curve, tuning_grid

    grid = tuning_grid(epochs=1, batch_size=128, lr=0.01, lrs=[0.01, 0.03], meta_lrs=[1.0, 3.0],
                       hidden=4, flip_group="Female", flip_rate=0.3, meta_fraction=0.2,
                       test_fraction=0.3, forml_objective="eo_gap")
    tuned = tune_and_run(grid, tune_seeds=[100], seeds=[0, 1, 2], backend="serial", progress=False)
    runs = tuned.runs
    assert runs.loc[runs["method"] == "Reweighing", "audit_precision"].isna().all()
    audited = runs.dropna(subset=["audit_precision"])
    assert sorted(audited["method"].unique()) == ["ERM", "FORML", "L2RW (uniform)"]
    levels = [summarize(audited, ["audit_precision", "audit_prevalence"], n_boot=200),
              summarize(audit_curve(audited), ["precision", "recall"], by=["method", "fraction"],
                        n_boot=200)]
    for frame in levels:
        for metric in dict.fromkeys(frame.columns.get_level_values(0)):
            lo, mean, hi = (frame[(metric, s)] for s in ("lower", "mean", "upper"))
            assert ((0 <= lo) & (lo <= mean) & (mean <= hi) & (hi <= 1)).all(), metric


def test_audit_curve_adds_random_flags_and_refuses_records_without_audit():
    import pandas as pd

    from fairlib.studies.label_noise_audit import audit_curve

    runs = pd.DataFrame({"method": ["FORML", "ERM", "FORML", "Reweighing"], "seed": [0, 0, 1, 1],
                         "audit_prevalence": [0.01, 0.01, 0.02, math.nan],
                         "audit_precision[0.01]": [0.3, 0.1, 0.2, math.nan],
                         "audit_recall[0.01]": [0.3, 0.1, 0.2, math.nan],
                         "audit_precision[0.1]": [0.05, 0.02, 0.04, math.nan],
                         "audit_recall[0.1]": [0.5, 0.2, 0.4, math.nan]})
    curve = audit_curve(runs)
    assert "Reweighing" not in set(curve["method"])
    rand = curve[curve["method"] == "random flags"].set_index(["seed", "fraction"])
    assert rand.loc[(1, 0.1), "precision"] == 0.02 and rand.loc[(1, 0.1), "recall"] == 0.1
    assert len(curve) == 2 * (3 + 2)  # two fractions x (three audited runs + two random seeds)
    with pytest.raises(ValueError, match="'flip_audit' metric"):
        audit_curve(runs[["method", "seed"]])


def test_findable_flips_splits_flips_by_what_the_features_say():
    from fairlib.studies.label_noise_audit import findable_flips

    scores = torch.tensor([0.1, 0.2, 0.9, 1.0, 1.1, 0.3])
    flipped = torch.tensor([True, True, True, False, False, False])
    clean_prob = torch.tensor([0.9, 0.2, 0.1, 0.5, 0.1, 0.8])
    out = findable_flips(scores, flipped, clean_prob)
    assert out.loc["looks positive", "share_of_flips"] == pytest.approx(1 / 3)
    assert out["share_of_flips"].sum() == pytest.approx(1.0)
    assert out.loc["looks positive", "recall"] == 1.0  # row 0 is among the 3 lowest
    assert out.loc["looks negative", "recall"] == 0.5  # row 1 flagged, row 2 not
    assert out.loc["looks negative", "mean_score"] == pytest.approx(0.55)
    with pytest.raises(ValueError, match="same shape"):
        findable_flips(scores, flipped, clean_prob[:3])


def test_weight_groups_partition_the_rows_and_the_figure_reports_them():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fairlib.studies.label_noise_audit import plot_forml_weights, weight_groups

    task = dict(separation=3.0, base_rates=(0.5, 0.4), minority_fraction=0.4)
    noisy, flipped = corrupt_labels(make_biased_classification(600, seed=0, **task),
                                    {("minority", 1): 0.3}, seed=0)
    groups = weight_groups(noisy)
    stacked = torch.stack(list(groups.values())).long()
    assert bool((stacked.sum(0) == 1).all())  # disjoint and covering
    assert torch.equal(next(iter(groups.values())), flipped)
    forml = FORML(meta_lr=3.0)
    fit(LogisticRegression(2, seed=0), noisy, strategy=forml,
        meta=make_biased_classification(200, seed=1, **task), epochs=2, batch_size=100,
        progress=False)
    fig, table = plot_forml_weights(forml, noisy)
    assert table["n"].tolist() == [int(m.sum()) for m in groups.values()]
    assert table["mean_weight"].iloc[0] == pytest.approx(float(forml.weights_[flipped].mean()))
    assert len(fig.axes[1].get_lines()) >= 4
    plt.close(fig)
    with pytest.raises(ValueError, match="flipped labels"):
        weight_groups(noisy.with_labels(noisy.y, y_clean=noisy.y))


def test_tuning_grid_gives_every_method_the_same_budget_and_audits_the_weights():
    from collections import Counter

    from fairlib.experiments.registry import get_metric, methods
    from fairlib.studies.label_noise_audit import CHAPTER, clean_labels, flip_audit, tuning_grid

    assert CHAPTER == "05_corrupted_labels"
    assert {"L2RW (uniform)", "L2RW (stratified)"} <= set(methods())
    assert get_metric("flip_audit") is flip_audit
    specs = tuning_grid(epochs=3, batch_size=64, lr=1e-3, lrs=[1e-3, 3e-3, 1e-2],
                        meta_lrs=[0.3, 1.0, 3.0], hidden=8, flip_group="Female", flip_rate=0.3,
                        meta_fraction=0.1, test_fraction=0.3, forml_objective="eo_gap")
    assert set(Counter(s.method for s in specs).values()) == {3}
    assert {s.dataset for s in specs} == {"adult_flipped"}
    audited = {s.method for s in specs if s.metrics == ("flip_audit",)}
    assert audited == {"ERM", "L2RW (uniform)", "FORML"}
    forml = [s for s in specs if s.method == "FORML"]
    assert [dict(s.method_params)["meta_lr"] for s in forml] == [0.3, 1.0, 3.0]
    assert {s.train_settings["lr"] for s in forml} == {1e-3}
    clean = clean_labels(forml[0])
    assert dict(clean.dataset_params)["flip_rate"] == 0.0 and clean.metrics == ()
    assert clean.method_params == forml[0].method_params


def test_tuning_table_names_configurations_as_the_selection_does():
    import pandas as pd

    from fairlib.experiments import select
    from fairlib.studies.label_noise_audit import tuning_table

    tuning = pd.DataFrame({"method": ["A"] * 4 + ["B"] * 4, "seed": [0, 1] * 4,
                           "train.lr": [0.001, 0.001, 0.003, 0.003] + [0.001] * 4,
                           "method.meta_lr": [math.nan] * 4 + [1.0, 1.0, 3.0, 3.0],
                           "meta_accuracy": [0.70, 0.72, 0.80, 0.78, 0.60, 0.62, 0.50, 0.52],
                           "test_accuracy": [0.7] * 8})
    table = tuning_table(tuning, ["meta_accuracy", "meta_accuracy"])
    assert list(table.columns) == ["meta_accuracy"]
    assert list(table.index) == [("A", "lr=0.001"), ("A", "lr=0.003"), ("B", "meta_lr=1.0"),
                                 ("B", "meta_lr=3.0")]
    chosen = select(tuning, metric="accuracy").table["choice"]
    assert all((m, c) in table.index for m, c in chosen.items())
    assert table.loc[("A", "lr=0.003"), "meta_accuracy"] == pytest.approx(0.79)


def test_plot_audit_draws_a_line_per_score_on_a_log_axis():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from fairlib.experiments import summarize
    from fairlib.studies.label_noise_audit import audit_curve, plot_audit

    runs = pd.DataFrame({"method": ["FORML", "FORML"], "seed": [0, 1],
                         "audit_prevalence": [0.01, 0.02],
                         "audit_precision[0.01]": [0.3, 0.2], "audit_recall[0.01]": [0.3, 0.2],
                         "audit_precision[0.1]": [0.05, 0.04], "audit_recall[0.1]": [0.5, 0.4]})
    curve = summarize(audit_curve(runs), ["precision", "recall"], by=["method", "fraction"],
                      n_boot=200)
    fig = plot_audit(curve, prevalence=0.015)
    assert [ax.get_xscale() for ax in fig.axes] == ["log", "log"]
    assert len(fig.axes[0].get_lines()) == 3  # FORML, random flags, the prevalence line
    plt.close(fig)
