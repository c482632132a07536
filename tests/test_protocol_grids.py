"""The book's protocol, checked in code without running anything.

Every chapter that compares methods builds its tuning grid in its ``fairlib.studies``
module (``tuning_grid``, taking the notebook's parameters by name) and hands it to
``tune_and_run``. Here each grid is built from every profile's parameters and checked:
every method gets the same number of configurations on every data set (an equal tuning
budget), the seeds are the engine's business (``tune_and_run`` sets them), and the
evaluation uses at least 10 seeds at the teaching profile.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from collections import Counter
from pathlib import Path

import pytest

import fairlib.studies
from fairlib.book.profiles import PROFILES, load_profile
from fairlib.book.sweep import notebook_defaults
from fairlib.experiments import RunSpec

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {p.stem: p for p in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))}
STUDIES = [importlib.import_module(f"fairlib.studies.{m.name}") for m in pkgutil.iter_modules(fairlib.studies.__path__)]
GRIDS = {module.CHAPTER: module for module in STUDIES if hasattr(module, "tuning_grid")}


def _code(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def _params(stem: str, profile: str) -> dict:
    return {**notebook_defaults(NOTEBOOKS[stem]), **load_profile(ROOT / "notebooks", profile).get(stem, {})}


def test_every_chapter_that_tunes_builds_its_grid_in_its_studies_module():
    tuning = {stem for stem, path in NOTEBOOKS.items() if "tune_and_run(" in _code(path)}
    assert tuning, "no chapter calls tune_and_run"
    assert tuning <= set(GRIDS), f"chapters without a tuning_grid in fairlib.studies: {sorted(tuning - set(GRIDS))}"
    for stem, module in GRIDS.items():
        assert stem in NOTEBOOKS, f"{module.__name__}.CHAPTER names no notebook: {stem!r}"
        assert "tuning_grid(" in _code(NOTEBOOKS[stem]), f"{stem} does not call {module.__name__}.tuning_grid"


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("stem", sorted(GRIDS))
def test_every_method_gets_the_same_tuning_budget_on_every_data_set(stem, profile):
    grid = GRIDS[stem].tuning_grid
    params = _params(stem, profile)
    configs = grid(**{k: params[k] for k in inspect.signature(grid).parameters if k in params})
    assert configs and all(isinstance(c, RunSpec) for c in configs)
    per_data: dict = {}
    for c in dict.fromkeys(c.replace(seed=0) for c in configs):  # distinct configurations
        per_data.setdefault((c.dataset, c.dataset_params), Counter())[c.method] += 1
    for data, sizes in per_data.items():
        assert len(sizes) >= 2, f"{stem}: only {list(sizes)} on {data}"
        assert len(set(sizes.values())) == 1, f"{stem} ({profile}): unequal budgets on {data}: {dict(sizes)}"


@pytest.mark.parametrize("stem", sorted(GRIDS))
def test_comparisons_use_at_least_ten_evaluation_seeds_when_teaching(stem):
    assert _params(stem, "teach")["n_seeds"] >= 10
    assert _params(stem, "full")["n_seeds"] >= 20
