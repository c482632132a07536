"""The runner behind the ``fairlib`` command: execute chapter notebooks with papermill
under a parameter profile, build the Jupyter Book from the executed copies, and sweep a
notebook over a grid of parameters (:func:`sweep`, :func:`read_glue`, :func:`read_results`).

Needs the ``book`` extra (papermill, jupyter-book).
"""

from .build import BuildError, BuildResult, build_book, chapter_notebooks, toc_files
from .execute import Execution, NotebookError, run_notebook
from .glue import count_text, note, note_count, read_glue
from .handout import write_handouts
from .report import interval_table, interval_text, note_intervals
from .profiles import PROFILES, ParameterError, check_parameters, check_type, load_profile
from .sweep import SweepResult, prepare_sweep, read_results, run_sweep, sweep

__all__ = [
    "PROFILES",
    "BuildError",
    "BuildResult",
    "Execution",
    "NotebookError",
    "ParameterError",
    "SweepResult",
    "build_book",
    "chapter_notebooks",
    "check_parameters",
    "check_type",
    "count_text",
    "load_profile",
    "prepare_sweep",
    "interval_table",
    "interval_text",
    "note",
    "note_count",
    "note_intervals",
    "read_glue",
    "read_results",
    "run_notebook",
    "run_sweep",
    "sweep",
    "toc_files",
    "write_handouts",
]
