"""Interval texts, tables and glue for the prose (fairlib.book.report)."""

from __future__ import annotations

import pandas as pd
import pytest

from fairlib.book.report import interval_table, interval_text, note_intervals
from fairlib.experiments import compare, summarize


@pytest.fixture
def runs():
    return pd.DataFrame({"method": ["ERM"] * 4 + ["FORML"] * 4, "seed": [0, 1, 2, 3] * 2,
                         "test_accuracy": [0.90, 0.91, 0.92, 0.93, 0.90, 0.92, 0.91, 0.95],
                         "eo": [0.20, 0.25, 0.15, 0.30, 0.05, 0.10, 0.00, 0.08]})


def test_levels_are_unsigned_and_differences_signed(runs):
    levels = interval_table(summarize(runs, ["test_accuracy", "eo"], n_boot=500), names={"eo": "EO gap"})
    assert list(levels.columns) == ["test_accuracy", "EO gap"] and list(levels.index) == ["ERM", "FORML"]
    assert not levels.loc["ERM", "EO gap"].startswith("+")
    diffs = interval_table(compare(runs, metrics=["eo"], n_boot=500), scale={"eo": 100}, digits=1)
    assert list(diffs.index) == ["FORML"]
    text = diffs.loc["FORML", "eo"]
    assert text.startswith("-") and text.count("-") == 3 and "[" in text  # all three negative
    assert interval_text(0.0, -0.01, 0.01, signed=True) == "+0.000 [-0.010, +0.010]"
    assert interval_text(float("nan"), float("nan"), float("nan")) == "n/a [n/a, n/a]"


def test_note_intervals_glues_estimates_bounds_and_a_computed_zero_word(runs, monkeypatch):
    glued = {}
    monkeypatch.setattr("fairlib.book.glue.note", lambda key, value: glued.__setitem__(key, value))
    keys = note_intervals(compare(runs, metrics=["eo", "test_accuracy"], n_boot=500),
                          names={"test_accuracy": "acc"})
    assert keys == ["forml_eo_diff", "forml_eo_diff_lo", "forml_eo_diff_hi", "forml_eo_diff_zero",
                    "forml_acc_diff", "forml_acc_diff_lo", "forml_acc_diff_hi", "forml_acc_diff_zero"]
    assert glued["forml_eo_diff_lo"] <= glued["forml_eo_diff"] <= glued["forml_eo_diff_hi"] < 0
    assert glued["forml_eo_diff_zero"] == "excludes" and glued["forml_acc_diff_zero"] == "includes"
    keys = note_intervals(summarize(runs, ["eo"], n_boot=500), "ch4_")
    assert keys[:3] == ["ch4_erm_eo", "ch4_erm_eo_lo", "ch4_erm_eo_hi"]


def test_a_frame_that_is_not_a_summary_is_refused():
    with pytest.raises(TypeError, match="`frame`.*summarize or compare.*DataFrame"):
        interval_table(pd.DataFrame({"a": [1]}))


def test_note_takes_a_mapping_and_refuses_a_mapping_with_a_value(monkeypatch):
    from fairlib.book import note

    glued = {}
    monkeypatch.setattr("myst_nb.glue", lambda key, value, display: glued.__setitem__(key, value))
    note({"n": 3, "share": 0.25, "word": "red"})
    assert glued == {"n": 3, "share": 0.25, "word": "red"} and type(glued["n"]) is int
    with pytest.raises(TypeError, match="`value` to be omitted"):
        note({"n": 3}, 4)
    with pytest.raises(TypeError, match="a `value` for the glue name 'n'"):
        note("n")
