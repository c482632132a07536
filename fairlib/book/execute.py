"""Execute one chapter notebook with papermill and prepare the copy for the book."""

from __future__ import annotations

import datetime as dt
import os
import platform
import random
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HIDDEN_TAGS = ("parameters", "injected-parameters")
# nbclient's message when the kernel exits before answering; no cell has run yet, so
# starting again is safe.
KERNEL_START_FAILURE = "Kernel died before replying to kernel_info"
KERNEL_START_ATTEMPTS = 3


class NotebookError(RuntimeError):
    """A notebook failed: names the notebook, the cell and the error."""


@dataclass(frozen=True)
class Execution:
    """What one run produced."""

    source: Path
    output: Path
    parameters: dict[str, Any]
    seconds: float
    cached: bool = False  # reused from the last build: nothing it depends on changed
    executed: str = ""  # when it ran (UTC)


def git_commit(path: Path) -> str:
    """Short commit of the repository holding ``path`` (``+dirty`` if it has changes)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=path, text=True,
                                capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
                               text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + ("+dirty" if dirty else "")


def footer_markdown(parameters: dict[str, Any], profile: str, seconds: float, source: Path) -> str:
    """The reproducibility footer appended to every executed chapter."""
    import torch

    import fairlib

    device = str(parameters.get("device", "cuda" if torch.cuda.is_available() else "cpu"))
    shown = ", ".join(f"`{k}={v!r}`" for k, v in sorted(parameters.items())) or "none"
    when = _now()
    return (
        "---\n\n"
        "```{admonition} Reproducibility\n"
        ":class: note\n\n"
        f"This page was executed from `notebooks/{source.name}` with profile `{profile}` and "
        f"parameters {shown}.\n\n"
        f"fairlib {fairlib.__version__} (commit {git_commit(source.parent)}), "
        f"torch {torch.__version__}, Python {platform.python_version()}, device `{device}`; "
        f"executed {when} in {seconds:.1f} s.\n\n"
        f"Rerun it: `fairlib run notebooks/{source.name} --profile {profile}` or "
        f"`papermill notebooks/{source.name} out.ipynb -p NAME VALUE`.\n"
        "```\n"
    )


#: Matplotlib settings of every executed chapter (a ``matplotlibrc`` the kernels read).
#: Figures are saved as SVG (:data:`BOOK_KERNEL_CONFIG`) and shown at their natural size,
#: 96 CSS px per inch, in a column :data:`fairlib.book.figures.COLUMN_INCHES` wide: the
#: default size fits it, 10 pt text is 13 px on the page, ticks 12 px; a colour-blind-safe
#: cycle (seaborn's "colorblind") so that no two methods share a hue. ``figure.dpi`` sets
#: the resolution of raster parts (images) inside the SVG.
BOOK_RC = {
    "figure.dpi": "150",
    "figure.figsize": "6.4, 4.0",
    "font.size": "10",
    "axes.titlesize": "10.5",
    "axes.labelsize": "10",
    "xtick.labelsize": "9.5",
    "ytick.labelsize": "9.5",
    "legend.fontsize": "9",
    "svg.fonttype": "path",  # text as outlines: the same glyphs in every browser, no font files
    "axes.prop_cycle": "cycler('color', ['0173b2', 'de8f05', '029e73', 'd55e00', 'cc78bc', "
                       "'ca9161', 'fbafe4', '949494', 'ece133', '56b4e9'])",
}

#: IPython kernel configuration of the book's kernels: inline figures as SVG only.
BOOK_KERNEL_CONFIG = """\
c.InlineBackend.figure_formats = {"svg"}
"""


#: Run at the start of every chapter's kernel: tables print rates as decimals, never in
#: scientific notation (4 significant digits; tiny values such as 1e-05 keep theirs), and
#: figures are fitted to the column (:func:`fairlib.book.figures.fit_to_column`).
BOOK_STARTUP = """\
import pandas as _pd

_pd.set_option("display.float_format", lambda v: f"{v:.4g}")
del _pd

# Figures wider than the book's column are narrowed before they are saved (text keeps its
# size): every format the inline backend writes goes through IPython's print_figure.
from IPython.core import pylabtools as _pylabtools


def _print_figure(fig, *args, _original=_pylabtools.print_figure, **kwargs):
    try:
        from fairlib.book.figures import fit_to_column
    except ImportError:  # a kernel without fairlib: figures as they are
        pass
    else:
        fit_to_column(fig)
    return _original(fig, *args, **kwargs)


_pylabtools.print_figure = _print_figure
del _pylabtools
"""


def book_files() -> dict[str, Path]:
    """The ``matplotlibrc`` (:data:`BOOK_RC`) and IPython folder (:data:`BOOK_STARTUP`,
    :data:`BOOK_KERNEL_CONFIG`) of the book's kernels, (re)written when they differ."""
    import tempfile

    root = Path(tempfile.gettempdir()) / f"fairlib-book-{os.getpid()}"
    profile = root / "ipython" / "profile_default"
    contents = {
        root / "matplotlibrc": "".join(f"{k}: {v}\n" for k, v in BOOK_RC.items()),
        profile / "startup" / "00-fairlib-book.py": BOOK_STARTUP,
        profile / "ipython_kernel_config.py": BOOK_KERNEL_CONFIG,
    }
    for path, text in contents.items():
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return {"MATPLOTLIBRC": root / "matplotlibrc", "IPYTHONDIR": root / "ipython"}


@contextmanager
def book_style() -> Iterator[None]:
    """Kernels started inside read :data:`BOOK_RC` and run :data:`BOOK_STARTUP` (each unless
    the caller set ``MATPLOTLIBRC`` / ``IPYTHONDIR`` already); the environment is restored after."""
    added = {k: str(v) for k, v in book_files().items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def run_notebook(
    source: Path,
    output: Path,
    overrides: dict[str, Any],
    *,
    profile: str = "teach",
    progress: bool = True,
) -> Execution:
    """Execute ``source`` into ``output`` with papermill, then hide the parameter cells
    and append the reproducibility footer.

    Raises
    ------
    NotebookError
        If a cell fails; the partially executed copy is left at ``output`` for
        inspection.
    """
    import nbformat
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .constraints import check_constraints
    from .profiles import check_parameters

    source, output = Path(source), Path(output)
    check_parameters(source, overrides)
    check_constraints(source, _used_parameters(source, overrides))
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        for attempt in range(KERNEL_START_ATTEMPTS):
            try:
                with book_style():
                    pm.execute_notebook(
                        str(source), str(output), parameters=overrides, cwd=str(source.parent),
                        kernel_name="python3", progress_bar=progress, log_output=False,
                    )
                break
            except RuntimeError as err:
                # Kernels started at once in separate processes can race for the same free
                # TCP port and die before running a cell; a fresh start gets new ports.
                if KERNEL_START_FAILURE not in str(err) or attempt + 1 == KERNEL_START_ATTEMPTS:
                    raise
                time.sleep(0.5 + random.random())
    except PapermillExecutionError as err:
        raise NotebookError(
            f"{source} failed at cell {err.cell_index} (execution count {err.exec_count}): "
            f"{err.ename}: {err.evalue}\n  partial output: {output}"
        ) from None
    seconds = time.perf_counter() - start
    nb = nbformat.read(output, as_version=4)
    used = _used_parameters(source, overrides)
    for cell in nb.cells:
        tags = list(cell.metadata.get("tags", []))
        if set(HIDDEN_TAGS) & set(tags) and "remove-cell" not in tags:
            cell.metadata["tags"] = tags + ["remove-cell"]
    nb.cells.append(nbformat.v4.new_markdown_cell(footer_markdown(used, profile, seconds, source)))
    nbformat.write(nb, output)
    return Execution(source, output, used, seconds, executed=_now())


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _used_parameters(source: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    from .sweep import notebook_defaults

    return {**notebook_defaults(source), **overrides}
