"""Parameter constraints of the chapter notebooks, declared once in ``profiles.yml``.

The ``constraints`` section of ``notebooks/profiles.yml`` maps a notebook (file stem) to
its parameters' rules, so notebooks carry no validation cells. ``fairlib run``, ``build``
and ``sweep`` check the full resolved parameter set (defaults, profile, overrides)
against them before anything executes::

    constraints:
      04_forml_equal_opportunity:
        n_seeds: {min: 2}
        strength: {min: 0.5, below: 1}
        require:
          - ["sweep_seeds <= n_seeds", "`sweep_seeds` at most `n_seeds`"]

Per-parameter rules: ``min`` / ``max`` (inclusive), ``above`` / ``below`` (exclusive),
``choices``, ``length`` (a list's exact length), ``min_length``, and ``items`` (a rule
applied to every element of a list). ``require`` lists ``[expression, description]``
pairs over the parameters (names, literals, comparisons, ``and``/``or``/``not``,
``all``/``any``/``len``/``abs``/``min``/``max``/``float``, ``in``, generator expressions).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .profiles import ParameterError, ProfileError, read_profiles

RULES = ("min", "max", "above", "below", "choices", "length", "min_length", "items")
_SAFE_FUNCS = {"all": all, "any": any, "len": len, "abs": abs, "min": min, "max": max, "float": float}
_SAFE_NODES = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Compare,
               ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Name, ast.Load,
               ast.Constant, ast.Call, ast.GeneratorExp, ast.comprehension, ast.Store, ast.BinOp, ast.Add,
               ast.Sub, ast.Mult, ast.Div, ast.List, ast.Tuple)


def load_constraints(notebooks_dir: Path) -> dict[str, dict[str, Any]]:
    """The ``constraints`` section of ``profiles.yml``, per notebook stem (empty if none)."""
    section = read_profiles(Path(notebooks_dir)).get("constraints") or {}  # a mapping: checked there
    for stem, rules in section.items():
        if rules is not None and not isinstance(rules, dict):
            raise ProfileError(f"Expected `constraints.{stem}` in {Path(notebooks_dir) / 'profiles.yml'} "
                                 f"to map parameter names to rules, but got {rules!r}.")
    return {str(k): dict(v or {}) for k, v in section.items()}


def _describe(rule: str, bound: Any) -> str:
    return {"min": f">= {bound!r}", "max": f"<= {bound!r}", "above": f"> {bound!r}",
            "below": f"< {bound!r}", "choices": f"one of {bound!r}", "length": f"a list of {bound!r} values",
            "min_length": f"a list of at least {bound!r} values"}[rule]


def _violation(rules: Mapping[str, Any], value: Any) -> str | None:
    """The first rule ``value`` breaks, described; None when it keeps all."""
    for rule, bound in rules.items():
        if rule not in RULES:
            raise ValueError(f"Expected constraint rules among {RULES}, but got {rule!r}.")
        if rule == "items":
            if not isinstance(value, (list, tuple)):
                return "a list"
            for item in value:
                broken = _violation(bound, item)
                if broken is not None:
                    return f"a list whose values are each {broken}"
            continue
        try:
            ok = {"min": lambda: value >= bound, "max": lambda: value <= bound,
                  "above": lambda: value > bound, "below": lambda: value < bound,
                  "choices": lambda: value in bound, "length": lambda: len(value) == bound,
                  "min_length": lambda: len(value) >= bound}[rule]()
        except TypeError:
            ok = False
        if not ok:
            return _describe(rule, bound)
    return None


def _evaluate(expression: str, values: Mapping[str, Any]) -> Any:
    tree = ast.parse(expression, mode="eval")
    for node in ast.walk(tree):
        if not isinstance(node, _SAFE_NODES):
            raise ValueError(f"Expected a simple expression in `require`, but got {expression!r} "
                             f"({type(node).__name__} is not allowed).")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _SAFE_FUNCS):
            raise ValueError(f"Expected only {sorted(_SAFE_FUNCS)} calls in `require`, but got {expression!r}.")
    return eval(compile(tree, "<require>", "eval"), {"__builtins__": {}, **_SAFE_FUNCS}, dict(values))


def check_constraints(notebook: Path, values: Mapping[str, Any],
                      constraints: Mapping[str, Any] | None = None) -> None:
    """Refuse a resolved parameter set that breaks the notebook's declared constraints.

    Parameters
    ----------
    notebook : pathlib.Path
        The source notebook; its constraints are read from ``profiles.yml`` beside it.
    values : mapping
        Every parameter's value (defaults overlaid with the profile and overrides).
    constraints : mapping, optional
        The notebook's rules, when the caller already has them.

    Raises
    ------
    ParameterError
        Naming the parameter (or the requirement), the rule and the value.

    Examples
    --------
    >>> from pathlib import Path
    >>> from fairlib.book.constraints import check_constraints
    >>> rules = {"n_seeds": {"min": 2}, "require": [["k <= n_seeds", "`k` at most `n_seeds`"]]}
    >>> check_constraints(Path("demo.ipynb"), {"n_seeds": 3, "k": 2}, rules)
    >>> check_constraints(Path("demo.ipynb"), {"n_seeds": 1, "k": 1}, rules)
    Traceback (most recent call last):
    ...
    fairlib.book.profiles.ParameterError: Expected `n_seeds` of demo.ipynb to be >= 2, but got 1.
    """
    notebook = Path(notebook)
    rules = dict(load_constraints(notebook.parent).get(notebook.stem, {}) if constraints is None
                 else constraints)
    requirements = rules.pop("require", []) or []
    for name, rule in rules.items():
        if name not in values:
            raise ValueError(f"Expected constraints of {notebook.name} to name its parameters, "
                             f"but got unknown {name!r}.")
        broken = _violation(rule, values[name])
        if broken is not None:
            raise ParameterError(f"Expected `{name}` of {notebook.name} to be {broken}, "
                                 f"but got {values[name]!r}.")
    for requirement in requirements:
        expression, description = (requirement if isinstance(requirement, (list, tuple))
                                   else (requirement, requirement))
        try:
            holds = bool(_evaluate(str(expression), values))
        except (TypeError, ValueError) as err:  # e.g. a string compared with a number
            if "Expected" in str(err):
                raise
            holds = False
        if not holds:
            names = {n.id for n in ast.walk(ast.parse(str(expression), mode="eval")) if isinstance(n, ast.Name)}
            shown = ", ".join(f"{k}={v!r}" for k, v in values.items() if k in names)
            raise ParameterError(f"Expected {description} in {notebook.name}, but got {shown}.")
