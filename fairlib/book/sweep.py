"""``fairlib sweep``: run one notebook over a grid of parameters, one row per run.

A sweep is planned and checked before anything runs: every combination of the grid is
overlaid on the profile's overrides, every override must be a declared parameter of the
right type (:func:`~fairlib.book.profiles.check_parameters`), and each run gets a stable
``run_id`` from the notebook's name, its full parameter set and the profile. The runs then
execute with papermill on :func:`fairlib.experiments.backends.map_unordered` (serial, a
process pool or Ray) into ``<out>/runs/<run_id>.ipynb``; each finished run is appended to a
:class:`~fairlib.experiments.ResultStore` at once and ``<out>/results.parquet`` and
``<out>/results.csv`` are rewritten, so a killed sweep loses no finished run and a rerun
skips the runs already finished with status ``ok``.

A row holds ``run_id``, ``status`` (``ok``/``failed``), ``seconds``, ``error``, ``notebook``,
``profile``, every parameter of the notebook (defaults, then profile, then grid; lists as
JSON text) and every scalar the notebook glued (:func:`~fairlib.book.glue.read_glue`). A
parameter named like one of the first six columns is stored as ``param.<name>``; a glued
name that is already a column is stored as ``glue.<name>``.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._validation import MSG_TYPE
from .constraints import check_constraints, load_constraints
from .profiles import check_parameters, declared_parameters, load_profile, parse_value

RESERVED_COLUMNS = ("run_id", "status", "seconds", "error", "notebook", "profile")
_OPEN, _CLOSE = "[{(", "]})"


# -- the grid -----------------------------------------------------------------------------------
def split_values(text: str) -> list[str]:
    """Split a ``--grid`` value list on the commas outside brackets, braces and quotes.

    Parameters
    ----------
    text : str
        What follows ``NAME=`` in ``--grid NAME=V1,V2``.

    Returns
    -------
    list of str
        The values' texts, stripped.

    Raises
    ------
    ValueError
        If brackets or quotes are unbalanced.

    Examples
    --------
    >>> split_values("1,2,3")
    ['1', '2', '3']
    >>> split_values("[0.5,0.9],[0.6,0.8]")
    ['[0.5,0.9]', '[0.6,0.8]']
    >>> split_values("'a,b',{x: 1, y: 2}")
    ["'a,b'", '{x: 1, y: 2}']
    """
    parts: list[str] = []
    stack: list[str] = []
    quote = ""
    start = 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in _OPEN:
            stack.append(_CLOSE[_OPEN.index(ch)])
        elif ch in _CLOSE:
            if not stack or stack.pop() != ch:
                raise ValueError(MSG_TYPE.format(name="--grid values", expected="balanced brackets",
                                                 got=repr(text)))
        elif ch == "," and not stack:
            parts.append(text[start:i].strip())
            start = i + 1
    if quote or stack:
        raise ValueError(MSG_TYPE.format(name="--grid values", expected="balanced brackets and quotes",
                                         got=repr(text)))
    parts.append(text[start:].strip())
    return parts


def parse_grid_option(text: str) -> tuple[str, list[Any]]:
    """Parse one ``--grid NAME=V1,V2,...`` option; each value is read as YAML.

    Examples
    --------
    >>> parse_grid_option("seed=0,1,2")
    ('seed', [0, 1, 2])
    >>> parse_grid_option("strengths=[0.5,0.9],[0.6,0.8]")
    ('strengths', [[0.5, 0.9], [0.6, 0.8]])
    >>> parse_grid_option("model=mlp")
    ('model', ['mlp'])
    """
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ValueError(MSG_TYPE.format(name="--grid", expected="NAME=V1,V2,... with a parameter name",
                                         got=repr(text)))
    try:
        raw = split_values(rest)
    except ValueError:
        raise ValueError(MSG_TYPE.format(name=f"--grid {name}", expected="values with balanced "
                                         "brackets and quotes", got=repr(text))) from None
    if any(not part for part in raw):
        raise ValueError(MSG_TYPE.format(name=f"--grid {name}",
                                         expected="non-empty values (write '' for an empty string)",
                                         got=repr(text)))
    return name, [parse_value(part) for part in raw]


def parse_grid(options: Sequence[str]) -> dict[str, list[Any]]:
    """Parse every ``--grid`` option into ``{name: values}``; a name given twice is refused.

    Examples
    --------
    >>> parse_grid(["seed=0,1", "label=a"])
    {'seed': [0, 1], 'label': ['a']}
    """
    grid: dict[str, list[Any]] = {}
    for option in options:
        name, values = parse_grid_option(option)
        if name in grid:
            raise ValueError(MSG_TYPE.format(name="--grid", expected="each parameter once",
                                             got=f"{name!r} twice"))
        grid[name] = values
    return grid


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The Cartesian product of a grid, in order; an empty grid is one run.

    Examples
    --------
    >>> expand_grid({"seed": [0, 1], "scale": [1.0]})
    [{'seed': 0, 'scale': 1.0}, {'seed': 1, 'scale': 1.0}]
    >>> expand_grid({})
    [{}]
    """
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(list(grid[n]) for n in names))]


# -- the plan -----------------------------------------------------------------------------------
def run_id_of(notebook: str, parameters: Mapping[str, Any], profile: str) -> str:
    """A short stable hash of a run: notebook name, full parameter set and profile.

    Examples
    --------
    >>> a = run_id_of("demo.ipynb", {"seed": 0, "scale": 1.0}, "teach")
    >>> a == run_id_of("demo.ipynb", {"scale": 1.0, "seed": 0}, "teach"), len(a)
    (True, 12)
    >>> a == run_id_of("demo.ipynb", {"seed": 1, "scale": 1.0}, "teach")
    False
    """
    key = json.dumps({"notebook": notebook, "parameters": dict(parameters), "profile": profile},
                     sort_keys=True, default=repr)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _as_declared(declared: str, value: Any) -> Any:
    """An int given for a float parameter becomes a float (so 1 and 1.0 are the same run)."""
    declared = declared.replace("typing.", "").strip()
    base = re.sub(r"^Optional\[(.*)\]$|^(.*?)\s*\|\s*None$", lambda m: m.group(1) or m.group(2), declared)
    if base == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    inner = re.fullmatch(r"(?:list|List|Sequence)\[(.*)\]", base)
    if inner and isinstance(value, (list, tuple)):
        return [_as_declared(inner.group(1), v) for v in value]
    return value


def notebook_defaults(notebook: Path, declared: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Every parameter of a notebook with its default value (papermill's inspection).

    A default that is not a literal is kept as its source text.
    """
    declared = declared_parameters(notebook) if declared is None else declared
    values: dict[str, Any] = {}
    for name, info in declared.items():
        text = str(info.get("default", ""))
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        values[name] = _as_declared(str(info.get("inferred_type_name", "None")), value)
    return values


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep, as sent to a worker (picklable)."""

    run_id: str
    notebook: str  # absolute path of the source notebook
    output: str  # absolute path of <out>/runs/<run_id>.ipynb
    overrides: dict[str, Any]  # what papermill injects: the profile's, then the grid's
    parameters: dict[str, Any]  # the full resolved set (defaults, profile, grid)
    profile: str
    source_text: str = field(repr=False, default="")  # for a worker that cannot read the path


@dataclass
class SweepPlan:
    """A checked sweep: its runs and where and how they execute."""

    notebook: Path
    out: Path
    profile: str
    runs: list[SweepRun]
    backend: str = "process"
    workers: int | None = None
    ray_address: str | None = None


@dataclass
class SweepResult:
    """What a sweep did; ``table`` is every row in ``<out>`` (also from earlier sweeps)."""

    out: Path
    table: Any  # pandas.DataFrame
    planned: int
    skipped: int
    ran: int
    failed: int


def prepare_sweep(
    notebook: str | os.PathLike[str],
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    out: str | os.PathLike[str],
    profile: str = "teach",
    backend: str = "process",
    workers: int | None = None,
    ray_address: str | None = None,
) -> SweepPlan:
    """Plan a sweep and check it; nothing runs and nothing is written.

    Parameters
    ----------
    notebook : path
        The notebook (one cell tagged ``parameters``).
    grid : mapping, optional
        Parameter name -> values; the runs are the Cartesian product. None: one run.
    out : path
        The sweep's folder.
    profile : {"teach", "smoke", "full"}
        Its overrides for this notebook apply first, the grid's on top.
    backend, workers, ray_address
        As in :func:`fairlib.experiments.backends.map_unordered`.

    Raises
    ------
    FileNotFoundError
        If the notebook does not exist.
    ParameterError
        If a profile or grid value names an undeclared parameter or has the wrong type.
    ValueError, ImportError
        For a bad backend choice, ``out`` being a file, or Ray missing for ``backend="ray"``.
    """
    from fairlib.experiments import ResultStore
    from fairlib.experiments.backends import check_backend

    source = Path(notebook)
    if not source.is_file():
        raise FileNotFoundError(f"Expected `notebook` to be a notebook file, but got {str(source)!r} "
                                "(no such file).")
    source = source.resolve()
    check_backend(backend, workers, ray_address)
    out_dir = Path(out).resolve()
    ResultStore(out_dir)  # refuses a file in the way
    declared = declared_parameters(source)
    defaults = notebook_defaults(source, declared)
    constraints = load_constraints(source.parent).get(source.stem, {})
    base = load_profile(source.parent, profile).get(source.stem, {})
    types = {name: str(info.get("inferred_type_name", "None")) for name, info in declared.items()}
    text = source.read_text()
    runs: dict[str, SweepRun] = {}
    for combo in expand_grid(grid or {}):
        overrides = {**base, **combo}
        check_parameters(source, overrides, declared)
        overrides = {name: _as_declared(types[name], value) for name, value in overrides.items()}
        parameters = {**defaults, **overrides}
        check_constraints(source, parameters, constraints)
        run_id = run_id_of(source.name, parameters, profile)
        runs.setdefault(run_id, SweepRun(run_id, str(source), str(out_dir / "runs" / f"{run_id}.ipynb"),
                                         overrides, parameters, profile, text))
    return SweepPlan(source, out_dir, profile, list(runs.values()), backend, workers, ray_address)


# -- running ------------------------------------------------------------------------------------
def _execute_run(run: SweepRun) -> dict[str, Any]:
    """Execute one run (in a worker); return its time, error text and the executed notebook."""
    from .execute import NotebookError, run_notebook

    start = time.perf_counter()
    source, output = Path(run.notebook), Path(run.output)
    scratch = None
    if not source.is_file() or not output.parent.is_dir():  # a Ray node without this folder
        scratch = Path(tempfile.mkdtemp(prefix="fairlib-sweep-"))
        if not source.is_file():
            source = scratch / source.name
            source.write_text(run.source_text)
        if not output.parent.is_dir():
            output = scratch / "runs" / output.name
    error = ""
    try:
        run_notebook(source, output, run.overrides, profile=run.profile, progress=False)
    except NotebookError as err:
        error = str(err).replace(str(output), run.output)
    except Exception as err:  # the kernel died, papermill could not start, ...
        error = f"{Path(run.notebook).name} failed: {type(err).__name__}: {err}"
    seconds = time.perf_counter() - start
    executed = output.read_text() if output.is_file() else None
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"seconds": seconds, "error": error, "executed": executed}


def _cell(value: Any) -> Any:
    """A parameter value as a table cell: lists, tuples and dicts as JSON text."""
    if isinstance(value, (list, tuple, dict)):
        try:
            return json.dumps(value)
        except (TypeError, ValueError):
            return repr(value)
    return value


def _record(run: SweepRun, result: dict[str, Any] | None, error: str | None) -> dict[str, Any]:
    """The row of a finished run; writes its executed notebook and reads its glue."""
    from .glue import read_glue

    result = result or {}
    message = error or result.get("error") or ""
    record: dict[str, Any] = {
        "run_id": run.run_id,
        "status": "failed" if message else "ok",
        "seconds": float(result.get("seconds", float("nan"))),
        "error": message,
        "notebook": Path(run.notebook).name,
        "profile": run.profile,
    }
    for name, value in run.parameters.items():
        record[f"param.{name}" if name in RESERVED_COLUMNS else name] = _cell(value)
    output = Path(run.output)
    executed = result.get("executed")
    if executed is not None and (not output.is_file() or output.read_text() != executed):
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(executed)
    if executed is not None:
        try:
            glued = read_glue(output)
        except Exception as err:  # an unreadable notebook is the run's failure, not the sweep's
            glued = {}
            record["status"] = "failed"
            record["error"] = (message + "\n" if message else "") + f"reading glue: {err}"
        for key, value in glued.items():
            record[f"glue.{key}" if key in record else key] = value
    return record


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_sweep(plan: SweepPlan, *, log: Callable[[str], None] | None = _stderr) -> SweepResult:
    """Execute a planned sweep, skipping runs already finished (status ``ok``) in ``plan.out``.

    Each finished run is appended to the store and the tables are rewritten at once; a
    progress line (done/total, ETA) goes to ``log``. A run that fails is recorded with
    status ``failed`` and its error; the others go on.
    """
    from fairlib.experiments import ResultStore
    from fairlib.experiments.backends import map_unordered

    say = log or (lambda _message: None)
    store = ResultStore(plan.out)
    finished = store.finished_ids()
    todo = [run for run in plan.runs if run.run_id not in finished]
    skipped = len(plan.runs) - len(todo)
    if skipped:
        say(f"skipping {skipped} of {len(plan.runs)} run(s) already finished in {plan.out}")
    failed = done = 0
    start = time.perf_counter()
    try:
        if todo:
            (plan.out / "runs").mkdir(parents=True, exist_ok=True)
            say(f"running {len(todo)} run(s) of {plan.notebook.name} (profile {plan.profile}) "
                f"on backend {plan.backend!r}")
        for run, result, error in map_unordered(_execute_run, todo, backend=plan.backend,
                                                workers=plan.workers, ray_address=plan.ray_address):
            record = _record(run, result, error)
            store.append(record)
            store.write_tables(csv=True)
            done += 1
            failed += record["status"] != "ok"
            elapsed = time.perf_counter() - start
            eta = elapsed / done * (len(todo) - done)
            changed = ", ".join(f"{k}={v!r}" for k, v in run.overrides.items()) or "defaults"
            say(f"[{done}/{len(todo)}] {record['status']:6} {run.run_id} in {record['seconds']:.1f} s "
                f"({changed}); elapsed {_duration(elapsed)}, ETA {_duration(eta)}")
            if record["status"] != "ok":
                say("    " + record["error"].strip().replace("\n", "\n    "))
    finally:
        table = store.write_tables(csv=True) if store.records_dir.is_dir() else store.read()
    return SweepResult(plan.out, table, len(plan.runs), skipped, done, failed)


def sweep(
    notebook: str | os.PathLike[str],
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    out: str | os.PathLike[str],
    profile: str = "teach",
    backend: str = "process",
    workers: int | None = None,
    ray_address: str | None = None,
    log: Callable[[str], None] | None = _stderr,
) -> SweepResult:
    """Run ``notebook`` once per combination of ``grid`` and tabulate parameters and glued values.

    :func:`prepare_sweep` (every check, before anything runs) followed by :func:`run_sweep`.
    The table is in ``<out>/results.parquet`` and ``<out>/results.csv``; the executed
    notebooks are in ``<out>/runs/<run_id>.ipynb``.

    Examples
    --------
    >>> result = sweep("notebooks/demo.ipynb", {"seed": [0, 1]}, out="sweeps/demo",
    ...                backend="serial")  # doctest: +SKIP
    >>> result.table[["run_id", "status", "seed"]]  # doctest: +SKIP
    """
    plan = prepare_sweep(notebook, grid, out=out, profile=profile, backend=backend, workers=workers,
                         ray_address=ray_address)
    return run_sweep(plan, log=log)


def read_results(out: str | os.PathLike[str]) -> Any:
    """The results table of a sweep folder (one row per run) as a pandas DataFrame.

    Raises
    ------
    FileNotFoundError
        If ``out`` holds no results.
    """
    import pandas as pd

    from fairlib.experiments import ResultStore

    folder = Path(out)
    if not folder.is_dir():
        raise FileNotFoundError(f"Expected `DIR` to be a sweep folder, but got {str(folder)!r} "
                                "(no such folder).")
    frame = ResultStore(folder).read()
    if frame.empty and (folder / "results.parquet").is_file():
        frame = pd.read_parquet(folder / "results.parquet")
    if frame.empty:
        raise FileNotFoundError(f"Expected `DIR` to hold sweep results, but got {str(folder)!r} "
                                "(no records/ and no results.parquet).")
    return frame
