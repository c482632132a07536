"""Read the values a notebook glued with ``myst_nb.glue`` back from its executed copy.

``glue(name, value, display=False)`` stores a display output whose metadata carries
``{"scrapbook": {"name": name, "mime_prefix": "application/papermill.record/"}}`` and whose
``<prefix>text/plain`` entry is the Python repr of the value (with ``display=True`` the
prefix is empty). Scrapbook cannot read these, so the repr is parsed here: literals with
:func:`ast.literal_eval`, plus ``nan``/``inf`` and numpy scalars such as ``np.float64(0.5)``.
"""

from __future__ import annotations

import ast
import math
import os
import re
from collections.abc import Mapping
from typing import Any

SCALAR_TYPES = (str, int, float, bool)
_NUMPY_SCALAR = re.compile(r"(?:np|numpy)\.(\w+)\((.*)\)", flags=re.S)
_NO_VALUE = object()  # `note(mapping)` takes no value
_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class _NotScalar(Exception):
    pass


def _literal(text: str) -> Any:
    text = text.strip()
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise _NotScalar from None


def parse_scalar(text: str) -> str | int | float | bool | None:
    """The scalar whose repr is ``text``, or None when it is not a str/int/float/bool.

    Parameters
    ----------
    text : str
        A repr as IPython displays it (``text/plain``).

    Returns
    -------
    str, int, float, bool or None

    Examples
    --------
    >>> parse_scalar("0.25"), parse_scalar("'Female'"), parse_scalar("True")
    (0.25, 'Female', True)
    >>> parse_scalar("np.float64(0.5)"), parse_scalar("np.int64(-3)"), parse_scalar("np.True_")
    (0.5, -3, True)
    >>> parse_scalar("np.float64(nan)"), parse_scalar("[1, 2]"), parse_scalar("<Figure size 640x480>")
    (nan, None, None)
    """
    text = text.strip()
    try:
        if text in ("np.True_", "numpy.True_", "np.False_", "numpy.False_"):
            return text.endswith("True_")
        match = _NUMPY_SCALAR.fullmatch(text)
        if match:
            kind, inner = match.group(1), _literal(match.group(2))
            if kind.startswith(("float", "double", "single", "half", "longdouble")):
                return float(inner)
            if kind.startswith(("int", "uint", "long", "short", "byte", "ubyte", "intc")):
                return int(inner)
            if kind.startswith("bool"):
                return bool(inner)
            if kind.startswith("str"):
                return str(inner)
            return None
        value = _literal(text)
    except (_NotScalar, TypeError, ValueError, OverflowError):
        return None
    return value if isinstance(value, SCALAR_TYPES) else None


def glued_outputs(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """``(name, text/plain repr)`` of every glued output of an executed notebook, in order."""
    import nbformat

    nb = nbformat.read(os.fspath(path), as_version=4)
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") not in ("display_data", "execute_result"):
                continue
            scrapbook = output.get("metadata", {}).get("scrapbook") or {}
            name = scrapbook.get("name")
            text = output.get("data", {}).get(f"{scrapbook.get('mime_prefix', '')}text/plain")
            if name and isinstance(text, (str, list)):
                found.append((str(name), "".join(text) if isinstance(text, list) else text))
    return found


def read_glue(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The scalars (str, int, float, bool) an executed notebook glued, by glue name.

    Values glued as figures, tables, lists and other non-scalars are skipped; a name glued
    twice keeps its last value.

    Parameters
    ----------
    path : str or pathlib.Path
        An executed notebook (e.g. from ``fairlib run`` or ``fairlib sweep``).

    Returns
    -------
    dict
        Glue name -> value, in the order the notebook glued them.

    Examples
    --------
    >>> import nbformat, tempfile, os
    >>> nb = nbformat.v4.new_notebook()
    >>> cell = nbformat.v4.new_code_cell("glue('gap', np.float64(0.125), display=False)")
    >>> cell.outputs = [nbformat.v4.new_output(
    ...     "display_data", data={"application/papermill.record/text/plain": "np.float64(0.125)"},
    ...     metadata={"scrapbook": {"name": "gap", "mime_prefix": "application/papermill.record/"}})]
    >>> nb.cells = [cell]
    >>> path = os.path.join(tempfile.mkdtemp(), "executed.ipynb")
    >>> nbformat.write(nb, path)
    >>> read_glue(path)
    {'gap': 0.125}
    """
    values: dict[str, Any] = {}
    for name, text in glued_outputs(path):
        value = parse_scalar(text)
        if value is not None:
            values.pop(name, None)
            values[name] = value
        else:
            values.pop(name, None)  # the last value glued under this name is not a scalar
    return values


def note(key: str | Mapping[str, Any], value: Any = _NO_VALUE) -> None:
    """Glue a number or a word for the chapter's prose, without displaying it.

    Integers (Python or numpy) are glued as ``int``, strings as they are, everything else
    as ``float``, so ``{glue:text}`key:.3f``` formats alike whatever produced the value,
    and :func:`read_glue` reads it back as a plain scalar.

    Parameters
    ----------
    key : str or mapping
        The glue name the prose refers to; or a mapping of names to values, glued in turn
        (then ``value`` is not given).
    value : int, float, str or a numpy / torch scalar
        The value.

    Examples
    --------
    >>> from fairlib.book import note
    >>> note("n_rows", 6172)  # in a notebook, the prose then reads {glue:text}`n_rows:,d`
    >>> note({"n_train": 4000, "model_text": "a logistic regression"})
    """
    import numpy as np
    from myst_nb import glue

    if isinstance(key, Mapping):
        if value is not _NO_VALUE:
            raise TypeError("Expected `value` to be omitted when `key` is a mapping of names to values, "
                            f"but got {value!r}.")
        for name, item in key.items():
            note(name, item)
        return
    if value is _NO_VALUE:
        raise TypeError(f"Expected a `value` for the glue name {key!r}, but got none.")
    if not isinstance(key, str) or not key:
        raise TypeError(f"Expected `key` to be a non-empty glue name, but got {key!r}.")
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = int(value)
    elif not isinstance(value, str):
        value = float(value)
    glue(key, value, display=False)


def count_text(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` followed by the singular or plural word: ``"1 case"``, ``"3 cases"``, ``"0 cases"``.

    Parameters
    ----------
    n : int
        The count (Python or numpy integer; a float that is a whole number is accepted).
    singular : str
        The word (or words) after 1, e.g. ``"case"`` or ``"tuning seed"``.
    plural : str, optional
        The word after any other count; default ``singular + "s"``. Give it for irregular
        plurals (``"analysis"``/``"analyses"``) or verbs (``"shows"``/``"show"``).

    Examples
    --------
    >>> from fairlib.book import count_text
    >>> count_text(1, "case"), count_text(3, "case"), count_text(0, "epoch")
    ('1 case', '3 cases', '0 epochs')
    >>> count_text(12000, "row"), count_text(1, "shows", "show"), count_text(2, "shows", "show")
    ('12,000 rows', '1 shows', '2 show')
    """
    import numbers

    if isinstance(n, bool) or not isinstance(n, numbers.Real) or n != int(n):
        raise TypeError(f"Expected `n` to be a whole number, but got {n!r}.")
    if not isinstance(singular, str) or not singular:
        raise TypeError(f"Expected `singular` to be a non-empty word, but got {singular!r}.")
    n = int(n)
    return f"{n:,d} {singular if n == 1 else (plural if plural is not None else singular + 's')}"


def note_count(key: str, n: int, singular: str, plural: str | None = None) -> str:
    """Glue ``count_text(n, singular, plural)`` under ``key`` for the prose, and return it.

    The prose then reads ``{glue:text}`key``` ("in 1 case", "in 3 cases") instead of gluing
    the number next to a fixed plural ("in 1 cases").

    Examples
    --------
    >>> from fairlib.book import note_count
    >>> note_count("n_worse_text", 1, "case")  # in a notebook, the prose reads {glue:text}`n_worse_text`
    '1 case'
    """
    text = count_text(n, singular, plural)
    note(key, text)
    return text
