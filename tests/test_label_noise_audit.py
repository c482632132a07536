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
