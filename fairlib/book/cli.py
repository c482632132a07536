"""The ``fairlib`` command: ``fairlib run``, ``build``, ``sweep`` and ``results``.

Exit status: 0 success, 1 a notebook (or the build) failed or was refused by its parameter
checks, 2 a usage error found before any work: a bad option, a value that is not YAML, a
malformed ``profiles.yml``, a file that is not a notebook, a missing folder. Every error is
one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn

from .profiles import (
    PROFILES,
    ParameterError,
    ProfileError,
    load_profile,
    parse_value,
    read_profiles,
)

BACKENDS = ("serial", "process", "ray")  # fairlib.experiments.backends.BACKENDS


class UsageError(ValueError):
    """A user error found before any work (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _yaml_value(name: str, text: str) -> Any:
    """Parse a ``-p`` value as YAML, e.g. ``3`` -> 3, ``cuda`` -> 'cuda', ``1e-3`` -> 0.001."""
    try:
        return parse_value(text, f"-p {name}")
    except ParameterError as err:
        raise UsageError(str(err)) from None


def _check_notebook(path: Path) -> None:
    """``path`` must be a Jupyter notebook file that nbformat can read."""
    import nbformat

    if not path.exists():
        raise UsageError(f"notebook {path} does not exist")
    if not path.is_file() or path.suffix != ".ipynb":
        raise UsageError(f"Expected a notebook file (.ipynb), but got {path}.")
    try:
        nbformat.read(path, as_version=4)
    except Exception as err:  # nbformat raises many kinds (JSON, schema, encoding)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"Expected {path} to be a Jupyter notebook, but it cannot be read: "
                         f"{reason.rstrip('.')}.") from None


def _check_folder(option: str, path: Path) -> None:
    if not path.is_dir():
        raise UsageError(f"Expected `{option}` to be an existing folder, but got {path}"
                         f"{' (a file)' if path.exists() else ' (not found)'}.")


def _check_devices(option: str, values: dict[str, list[Any]]) -> None:
    """A ``device`` parameter must name a device of this machine, checked before any run.

    ``device=cuda`` on a machine without CUDA would otherwise fail inside the notebook
    (``Torch not compiled with CUDA enabled``), after the kernel started.
    """
    if "device" not in values:
        return
    from .._validation import check_device

    for value in values["device"]:
        try:
            check_device(f"{option} device", value)
        except (TypeError, ValueError) as err:
            raise UsageError(str(err)) from None


def _check_profiles(notebooks_dir: Path) -> None:
    try:
        read_profiles(notebooks_dir)
    except ProfileError as err:
        raise UsageError(str(err)) from None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fairlib", description="Run chapter notebooks and build the book.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute one notebook with papermill")
    run.add_argument("notebook", type=Path)
    run.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                     help="override a parameter (value parsed as YAML); repeatable")
    run.add_argument("--profile", choices=PROFILES, default="teach")
    run.add_argument("-o", "--output", type=Path, help="executed copy (default: NAME.executed.ipynb here)")

    build = sub.add_parser("build", help="execute every chapter and build the HTML book")
    build.add_argument("--profile", choices=PROFILES, default="teach")
    build.add_argument("--jobs", type=int, default=1, help="notebooks executed at once")
    build.add_argument("--student", action="store_true", help="student edition: solutions hidden")
    build.add_argument("--book", type=Path, default=Path("book"), help="book sources (default: book)")
    build.add_argument("--notebooks", type=Path, default=Path("notebooks"))
    build.add_argument("--output", type=Path, help="build folder (default: book/_build or book/_build_student)")
    build.add_argument("--force", action="store_true",
                       help="execute every chapter and build every page (default: reuse chapters "
                            "whose code, parameters and library are unchanged since the last build, "
                            "and read again only the pages that changed)")

    handout = sub.add_parser("handout", help="write one runnable notebook per chapter for students")
    handout.add_argument("--out", type=Path, required=True, help="folder of the handouts")
    handout.add_argument("--solutions", action="store_true", help="keep the solutions (the teacher's copy)")
    handout.add_argument("--from", dest="glue_from", type=Path,
                         help="executed chapters whose numbers fill the text (e.g. book/_build/executed)")
    handout.add_argument("--notebooks", type=Path, default=Path("notebooks"))

    sweep = sub.add_parser("sweep", help="run one notebook over a grid of parameters; one row per run",
                           description="Run NOTEBOOK once per combination of the --grid values (their "
                           "Cartesian product) and tabulate every parameter and every glued scalar in "
                           "OUT/results.csv and OUT/results.parquet. Runs already finished in OUT are "
                           "skipped. Exit status: 0 all runs ok, 1 a run failed, 2 refused before running.")
    sweep.add_argument("notebook", type=Path)
    sweep.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                       help="values of one parameter, comma-separated, each parsed as YAML "
                       "(e.g. seed=0,1,2 or strengths=[0.5,0.9],[0.6,0.8]); repeatable")
    sweep.add_argument("--profile", choices=PROFILES, default="teach",
                       help="profile overrides applied first, the grid on top (default: teach)")
    sweep.add_argument("--backend", choices=BACKENDS, default="process",
                       help="where runs execute (default: process)")
    sweep.add_argument("--workers", type=int, help="runs at once (default: one per core)")
    sweep.add_argument("--ray-address", help="Ray cluster to connect to, e.g. auto or ray://HOST:10001")
    sweep.add_argument("--out", type=Path, required=True, help="the sweep's folder")

    results = sub.add_parser("results", help="print the results table of a sweep folder")
    results.add_argument("dir", type=Path)
    results.add_argument("--csv", type=Path, metavar="PATH", help="write the table to PATH instead")
    return parser


def _sweep(args: argparse.Namespace) -> int:
    from .sweep import parse_grid, prepare_sweep, run_sweep

    if args.notebook.exists():  # prepare_sweep names a missing one
        _check_notebook(args.notebook)
        _check_profiles(args.notebook.parent)
    try:
        grid = parse_grid(args.grid)
    except ValueError as err:
        print(f"fairlib sweep: {err}", file=sys.stderr)
        return 2
    _check_devices("--grid", grid)
    if args.notebook.exists():
        profile = load_profile(args.notebook.parent, args.profile).get(args.notebook.stem, {})
        _check_devices(f"--profile {args.profile}",
                       {k: [v] for k, v in profile.items() if k not in grid})
    try:
        plan = prepare_sweep(args.notebook, grid, out=args.out, profile=args.profile,
                             backend=args.backend, workers=args.workers, ray_address=args.ray_address)
    except (ParameterError, ValueError, ImportError, FileNotFoundError) as err:
        print(f"fairlib sweep: {err}", file=sys.stderr)
        return 2
    try:
        result = run_sweep(plan)
    except KeyboardInterrupt:
        print(f"fairlib sweep: interrupted; finished runs are kept in {plan.out}", file=sys.stderr)
        return 130
    except Exception as err:  # the backend could not start (e.g. no Ray cluster at the address)
        print(f"fairlib sweep: the sweep stopped: {type(err).__name__}: {err}\n"
              f"  finished runs are kept in {plan.out}", file=sys.stderr)
        return 1
    ok = result.ran - result.failed
    print(f"{args.notebook.name}: {result.planned} run(s) in the grid; skipped {result.skipped} "
          f"already finished; ran {result.ran}: {ok} ok, {result.failed} failed.")
    print(f"results: {plan.out / 'results.csv'} and {plan.out / 'results.parquet'} "
          f"({len(result.table)} row(s)); executed notebooks in {plan.out / 'runs'}")
    return 1 if result.failed else 0


def _results(args: argparse.Namespace) -> int:
    import pandas as pd

    from .sweep import read_results

    try:
        frame = read_results(args.dir)
    except FileNotFoundError as err:
        print(f"fairlib results: {err}", file=sys.stderr)
        return 2
    if args.csv is not None:
        try:
            args.csv.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(args.csv, index=False)
        except OSError as err:
            print(f"fairlib results: cannot write {args.csv}: {_one_line(err)}", file=sys.stderr)
            return 2
        print(f"wrote {len(frame)} row(s) x {frame.shape[1]} column(s) to {args.csv}")
        return 0
    shown = frame.copy()
    if "error" in shown:  # one line per run
        shown["error"] = shown["error"].fillna("").astype(str).str.replace(r"\s*\n\s*", " | ", regex=True)
    with pd.option_context("display.width", None, "display.max_columns", None,
                           "display.max_rows", None, "display.max_colwidth", None):
        print(shown.to_string(index=False))
    return 0


def _run(args: argparse.Namespace) -> int:
    from .execute import run_notebook

    _check_notebook(args.notebook)
    _check_profiles(args.notebook.parent)
    overrides = load_profile(args.notebook.parent, args.profile).get(args.notebook.stem, {})
    given = {name: _yaml_value(name, value) for name, value in args.parameter}
    _check_devices("-p", {k: [v] for k, v in given.items()})
    _check_devices(f"--profile {args.profile}",
                   {k: [v] for k, v in overrides.items() if k not in given})
    overrides.update(given)
    out = args.output or Path(f"{args.notebook.stem}.executed.ipynb")
    result = run_notebook(args.notebook, out, overrides, profile=args.profile)
    print(f"{args.notebook} -> {result.output} in {result.seconds:.1f} s")
    return 0


def _build(args: argparse.Namespace) -> int:
    from .build import build_book

    if args.jobs < 1:
        raise UsageError(f"Expected `--jobs` to be a positive integer, but got {args.jobs}.")
    _check_folder("--book", args.book)
    _check_folder("--notebooks", args.notebooks)
    _check_profiles(args.notebooks)
    result = build_book(args.book, args.notebooks, profile=args.profile, jobs=args.jobs,
                        student=args.student, output=args.output, force=args.force)
    reused = sum(e.cached for e in result.executions)
    print(f"Built {len(result.executions)} chapter(s) in {result.seconds:.0f} s "
          f"({reused} reused unchanged): {result.html / 'index.html'}")
    return 0


def _handout(args: argparse.Namespace) -> int:
    from .handout import write_handouts

    _check_folder("--notebooks", args.notebooks)
    if args.glue_from is not None:
        _check_folder("--from", args.glue_from)
    paths = write_handouts(args.notebooks, args.out, solutions=args.solutions, glue_from=args.glue_from)
    kind = "teacher's copies (with solutions)" if args.solutions else "student handouts"
    print(f"Wrote {len(paths)} {kind} to {args.out}")
    return 0


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fairlib`` console script; returns the exit status.

    Examples
    --------
    >>> from fairlib.book.cli import main
    >>> main(["build", "--jobs", "0"])
    2
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error already printed (2)
        return exit_.code if isinstance(exit_.code, int) else 2
    if args.command == "sweep":
        try:
            return _sweep(args)
        except UsageError as err:
            print(f"fairlib sweep: {_one_line(err)}", file=sys.stderr)
            return 2
    if args.command == "results":
        return _results(args)
    from .build import BuildError
    from .execute import NotebookError

    try:
        return {"run": _run, "build": _build, "handout": _handout}[args.command](args)
    except (UsageError, ProfileError, OSError) as err:
        print(f"fairlib {args.command}: {_one_line(err)}", file=sys.stderr)
        return 2
    except (NotebookError, BuildError, ParameterError) as err:
        print(f"fairlib {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
