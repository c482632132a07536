"""The ``fairlib`` command: ``fairlib run`` and ``fairlib build``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .profiles import PROFILES, ParameterError, load_profile


def _yaml_value(text: str) -> Any:
    """Parse a ``-p`` value as papermill does (YAML), e.g. ``3`` -> 3, ``cuda`` -> 'cuda'."""
    import yaml

    return yaml.safe_load(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fairlib", description="Run chapter notebooks and build the book.")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fairlib`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    from .build import BuildError, build_book
    from .execute import NotebookError, run_notebook

    try:
        if args.command == "run":
            if not args.notebook.exists():
                print(f"fairlib run: notebook {args.notebook} does not exist", file=sys.stderr)
                return 2
            overrides = load_profile(args.notebook.parent, args.profile).get(args.notebook.stem, {})
            overrides.update({name: _yaml_value(value) for name, value in args.parameter})
            out = args.output or Path(f"{args.notebook.stem}.executed.ipynb")
            result = run_notebook(args.notebook, out, overrides, profile=args.profile)
            print(f"{args.notebook} -> {result.output} in {result.seconds:.1f} s")
            return 0
        result = build_book(args.book, args.notebooks, profile=args.profile, jobs=args.jobs,
                            student=args.student, output=args.output)
        print(f"Built {len(result.executions)} chapter(s) in {result.seconds:.0f} s: "
              f"{result.html / 'index.html'}")
        return 0
    except (NotebookError, BuildError, ParameterError) as err:
        print(f"fairlib {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
