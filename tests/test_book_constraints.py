"""Parameter constraints declared in notebooks/profiles.yml, checked before anything runs."""

from pathlib import Path

import pytest

from fairlib.book.cli import main
from fairlib.book.constraints import check_constraints, load_constraints
from fairlib.book.profiles import PROFILES, ParameterError, load_profile
from fairlib.book.sweep import notebook_defaults

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
DEMO = Path("demo.ipynb")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_declares_constraints_its_profiles_keep(notebook):
    rules = load_constraints(notebook.parent)
    assert notebook.stem in rules
    defaults = notebook_defaults(notebook)
    assert set(rules[notebook.stem]) - {"require"} <= set(defaults)
    for profile in PROFILES:
        check_constraints(notebook, {**defaults, **load_profile(notebook.parent, profile).get(notebook.stem, {})})


@pytest.mark.parametrize("rules, values, message", [
    ({"k": {"min": 2}}, {"k": 1}, "`k` of demo.ipynb to be >= 2, but got 1"),
    ({"p": {"above": 0, "below": 1}}, {"p": 1.0}, "`p` of demo.ipynb to be < 1, but got 1.0"),
    ({"m": {"choices": ["a", "b"]}}, {"m": "c"}, "to be one of ['a', 'b']"),
    ({"xs": {"items": {"above": 0, "below": 1}}}, {"xs": [0.5, 1.5]}, "a list whose values are each < 1"),
    ({"xs": {"min_length": 1}}, {"xs": []}, "a list of at least 1 values"),
    ({"g": {"length": 2}}, {"g": ["a"]}, "a list of 2 values"),
    ({"require": [["a <= b", "`a` at most `b`"]]}, {"a": 3, "b": 2}, "Expected `a` at most `b` in demo.ipynb, but got a=3, b=2"),
    ({"require": [["t == 'inf' or float(t) >= 1", "`t` >= 1"]]}, {"t": "abc"}, "got t='abc'"),
])
def test_a_broken_rule_is_named_with_its_value(rules, values, message):
    with pytest.raises(ParameterError, match=None) as err:
        check_constraints(DEMO, values, rules)
    assert message in str(err.value)


def test_rules_that_hold_pass_and_unsafe_expressions_are_refused():
    check_constraints(DEMO, {"k": 2, "xs": [0.1, 0.9]},
                      {"k": {"min": 2, "max": 2}, "xs": {"items": {"above": 0, "below": 1}},
                       "require": [["all(0 < x < 1 for x in xs) and len(xs) == 2", "ok"]]})
    with pytest.raises(ValueError, match="not allowed"):
        check_constraints(DEMO, {"k": 1}, {"require": [["k.__class__", "attribute access"]]})
    with pytest.raises(ValueError, match="calls in `require`"):
        check_constraints(DEMO, {"k": 1}, {"require": [["open('x')", "a call"]]})
    with pytest.raises(ValueError, match="unknown 'nope'"):
        check_constraints(DEMO, {"k": 1}, {"nope": {"min": 1}})


def test_run_refuses_a_value_that_breaks_a_constraint_before_executing(tmp_path, capsys):
    out = tmp_path / "ch4.ipynb"
    code = main(["run", str(ROOT / "notebooks" / "04_forml_equal_opportunity.ipynb"), "-p", "n_seeds", "1",
                 "-o", str(out)])
    assert code == 1 and not out.exists()
    assert "Expected `n_seeds` of 04_forml_equal_opportunity.ipynb to be >= 2, but got 1." in capsys.readouterr().err


def test_sweep_refuses_a_grid_value_that_breaks_a_constraint(tmp_path, capsys):
    code = main(["sweep", str(ROOT / "notebooks" / "04_forml_equal_opportunity.ipynb"), "--grid", "strength=0.9,1.0",
                 "--backend", "serial", "--out", str(tmp_path / "s")])
    assert code == 2 and not (tmp_path / "s").exists()
    assert "`strength` of 04_forml_equal_opportunity.ipynb to be < 1, but got 1.0" in capsys.readouterr().err


def test_chapter_4_refuses_grids_that_would_give_methods_unequal_tuning_budgets():
    # Chapter 4 builds each method's grid from these lists: ERM/Reweighing tune
    # `weight_decays`, the others two values of their knob x `knob_weight_decays`.
    notebook = ROOT / "notebooks" / "04_forml_equal_opportunity.ipynb"
    defaults = notebook_defaults(notebook)
    check_constraints(notebook, defaults)
    for broken in ({"meta_lrs": [1.0, 3.0, 10.0]}, {"weight_decays": [1e-4, 1e-3]},
                   {"dro_etas": [0.1]}):
        with pytest.raises(ParameterError, match="equal tuning budget"):
            check_constraints(notebook, {**defaults, **broken})


@pytest.mark.parametrize("text, message", [
    ("constraints: [1", "to be valid YAML"),
    ("constraints: [1, 2]", "`constraints` in .* to map notebook names to rules"),
    ("constraints: {a: 3}", "`constraints.a` in .* to map parameter names to rules, but got 3"),
])
def test_a_malformed_constraints_section_is_a_profile_error_naming_the_file(tmp_path, text, message):
    from fairlib.book.profiles import ProfileError

    (tmp_path / "profiles.yml").write_text(text)
    with pytest.raises(ProfileError, match=message):
        load_constraints(tmp_path)
