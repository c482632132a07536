"""Parameter profiles: per-notebook overrides kept in one YAML file next to the notebooks,
and the checks every override goes through (``fairlib run``, ``build`` and ``sweep``):
the name must be a declared parameter and the value must fit its annotation.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

PROFILES = ("teach", "smoke", "full")
PROFILE_FILE = "profiles.yml"


class ParameterError(ValueError):
    """An override names a parameter the notebook does not declare, or has the wrong type."""


class ProfileError(ValueError):
    """``profiles.yml`` cannot be used: unreadable, not YAML, or not shaped as
    ``profile -> notebook -> {parameter: value}``."""


def _yaml_problem(err: Exception) -> str:
    """``"<problem> at line L, column C"`` of a YAML error, in one line."""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def read_profiles(notebooks_dir: Path) -> dict[str, Any]:
    """The whole ``profiles.yml`` beside the notebooks (empty if there is none), checked.

    The file must be YAML mapping each profile (``smoke``, ``full``) to notebook stems,
    each to a mapping of parameter overrides (or nothing), and ``constraints`` to a
    mapping; anything else raises :class:`ProfileError` naming the file and the entry.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "profiles.yml").write_text("smoke: {tiny: 5}")
    >>> read_profiles(folder)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fairlib.book.profiles.ProfileError: Expected `smoke.tiny` in .../profiles.yml to map parameter names to values, but got 5.
    """
    path = Path(notebooks_dir) / PROFILE_FILE
    if not path.exists():
        return {}
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ProfileError(f"Expected {path} to be a readable UTF-8 file, but got "
                           f"{type(err).__name__}: {err}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ProfileError(f"Expected {path} to be valid YAML, but got "
                           f"{_yaml_problem(err)}.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProfileError(f"Expected {path} to map profile names ({', '.join(PROFILES[1:])}) to "
                           f"notebooks, but got a {type(data).__name__}.")
    for profile in (*PROFILES[1:], "constraints"):
        section = data.get(profile)
        if section is not None and not isinstance(section, dict):
            what = "rules" if profile == "constraints" else "parameters"
            raise ProfileError(f"Expected `{profile}` in {path} to map notebook names to {what}, "
                               f"but got {section!r}.")
        if profile == "constraints" or not section:
            continue
        for stem, params in section.items():
            if params is not None and not isinstance(params, dict):
                raise ProfileError(f"Expected `{profile}.{stem}` in {path} to map parameter "
                                   f"names to values, but got {params!r}.")
    return data


def load_profile(notebooks_dir: Path, profile: str) -> dict[str, dict[str, Any]]:
    """Overrides per notebook stem for ``profile`` (``teach`` means none).

    Raises
    ------
    ValueError
        For an unknown profile name, or a malformed ``profiles.yml`` (a ``ProfileError``
        naming the file and the entry; see ``read_profiles``).
    """
    if profile not in PROFILES:
        raise ValueError(
            f"Expected `profile` to be one of {', '.join(map(repr, PROFILES))}, but got {profile!r}."
        )
    if profile == "teach":
        return {}
    section = read_profiles(notebooks_dir).get(profile) or {}
    return {str(k): dict(v or {}) for k, v in section.items()}


def declared_parameters(notebook: Path) -> dict[str, dict[str, Any]]:
    """The parameters a notebook's ``parameters`` cell declares (papermill's inspection)."""
    import papermill as pm

    return pm.inspect_notebook(str(notebook))


def check_parameters(
    notebook: Path, overrides: dict[str, Any], declared: dict[str, dict[str, Any]] | None = None
) -> None:
    """Refuse overrides the notebook does not declare (a misspelt name would go unnoticed)
    and values that do not fit the parameter's annotation (see :func:`check_type`).

    Parameters
    ----------
    notebook : pathlib.Path
        The source notebook.
    overrides : dict
        Parameter name -> value, as papermill would inject them.
    declared : dict, optional
        :func:`declared_parameters` of the notebook, when the caller already has it.

    Raises
    ------
    ParameterError
        Naming the parameter, its declared type and the value.
    """
    if declared is None:
        declared = declared_parameters(notebook)
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise ParameterError(
            f"Expected parameters of {notebook.name} ({', '.join(sorted(declared)) or 'none'}), "
            f"but got unknown {', '.join(map(repr, unknown))}."
        )
    for name, value in overrides.items():
        declared_type = str(declared[name].get("inferred_type_name", "None"))
        if not check_type(declared_type, value):
            hint = " (quote a value to pass it as a string)" if "str" in declared_type else ""
            raise ParameterError(
                f"Expected `{name}` of {Path(notebook).name} to be a value of its declared type "
                f"{declared_type}, but got {value!r} ({type(value).__name__}){hint}."
            )


_NUMBER_WITH_EXPONENT = re.compile(r"[-+]?(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)[eE][-+]?\d+")


def parse_value(text: str, name: str | None = None) -> Any:
    """Parse a parameter value given on the command line, as YAML.

    YAML 1.1 reads ``1e-3`` as a string (its floats need a dot); such numbers, alone or in
    a list, are read as floats, as papermill's ``-p`` does. Text that is not YAML raises
    :class:`ParameterError` naming the parameter ``name`` (when given).

    Examples
    --------
    >>> parse_value("3"), parse_value("0.5"), parse_value("cuda"), parse_value("1e-3")
    (3, 0.5, 'cuda', 0.001)
    >>> parse_value("[0.5, 1e-2]"), parse_value("true"), parse_value("'7'")
    ([0.5, 0.01], True, '7')
    >>> parse_value("[1, 2", "n_boot")
    Traceback (most recent call last):
    ...
    fairlib.book.profiles.ParameterError: Expected `n_boot` to be a YAML value (quote it to pass a string), but got '[1, 2': expected ',' or ']', but got '<stream end>' at line 1, column 6.
    """
    import yaml

    def fix(value: Any) -> Any:
        if isinstance(value, str) and _NUMBER_WITH_EXPONENT.fullmatch(value.strip()):
            return float(value)
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        label = "a value" if name is None else f"`{name}`"
        raise ParameterError(f"Expected {label} to be a YAML value (quote it to pass a string), "
                             f"but got {text!r}: {_yaml_problem(err)}.") from None
    if isinstance(value, str) and text.strip().startswith(("'", '"')):
        return value  # quoted: a string on purpose
    return fix(value)


def _split_top(text: str, sep: str) -> list[str]:
    """Split ``text`` on ``sep`` outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


_ANYTHING = {"", "None", "Any", "object"}
_LISTS = {"list", "List", "Sequence", "tuple", "Tuple", "Iterable", "Collection"}


def check_type(declared: str, value: Any) -> bool:
    """Whether ``value`` fits the type name papermill inferred from a parameter's annotation.

    ``int`` takes an int (not a bool); ``float`` an int or a float; ``str``, ``bool`` and
    ``dict`` their own type; ``list``/``tuple`` (with an element type or not) a list or a
    tuple, element by element; ``X | None`` and ``Optional[X]`` also None; ``Literal[...]``
    one of its values. A parameter without annotation (papermill says ``'None'``) or with
    a type this function does not know accepts anything.

    Examples
    --------
    >>> check_type("int", 3), check_type("int", True), check_type("int", 1.5)
    (True, False, False)
    >>> check_type("float", 2), check_type("list[float]", [0.5, 1]), check_type("list[int]", [0.5])
    (True, True, False)
    >>> check_type("Optional[int]", None), check_type("str | None", 4), check_type("None", "x")
    (True, False, True)
    """
    declared = declared.strip()
    for prefix in ("typing.", "collections.abc."):
        declared = declared.replace(prefix, "")
    if len(declared) > 1 and declared[0] == declared[-1] and declared[0] in "'\"":
        declared = declared[1:-1].strip()  # a string annotation: x: "int" = 3
    if declared in _ANYTHING:
        return True
    union = _split_top(declared, "|")
    if len(union) > 1:
        return any(value is None if t in ("None", "NoneType") else check_type(t, value) for t in union)
    match = re.fullmatch(r"(\w+)\[(.*)\]", declared, flags=re.S)
    head, args = (match.group(1), _split_top(match.group(2), ",")) if match else (declared, [])
    if head == "Optional":
        return value is None or check_type(args[0] if args else "", value)
    if head == "Union":
        return any(value is None if t in ("None", "NoneType") else check_type(t, value) for t in args)
    if head == "Literal":
        try:
            return any(value == ast.literal_eval(a) and type(value) is type(ast.literal_eval(a)) for a in args)
        except (ValueError, SyntaxError):
            return True
    if head in ("int", "float", "str", "bool", "dict", "Dict", "Mapping"):
        if isinstance(value, bool):
            return head == "bool"
        return {"int": isinstance(value, int), "float": isinstance(value, (int, float)),
                "str": isinstance(value, str), "bool": False}.get(head, isinstance(value, dict))
    if head in _LISTS:
        if not isinstance(value, (list, tuple)):
            return False
        if not args:
            return True
        if head in ("tuple", "Tuple") and not (len(args) == 2 and args[1] == "..."):
            return len(args) == len(value) and all(check_type(t, v) for t, v in zip(args, value))
        return all(check_type(args[0], v) for v in value)
    return True  # a type this check does not know: let the notebook judge
