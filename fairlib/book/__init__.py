"""The runner behind the ``fairlib`` command: execute chapter notebooks with papermill
under a parameter profile and build the Jupyter Book from the executed copies.

Needs the ``book`` extra (papermill, jupyter-book).
"""

from .build import BuildError, BuildResult, build_book, chapter_notebooks, toc_files
from .execute import Execution, NotebookError, run_notebook
from .profiles import PROFILES, ParameterError, load_profile

__all__ = [
    "PROFILES",
    "BuildError",
    "BuildResult",
    "Execution",
    "NotebookError",
    "ParameterError",
    "build_book",
    "chapter_notebooks",
    "load_profile",
    "run_notebook",
    "toc_files",
]
