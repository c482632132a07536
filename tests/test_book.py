"""The book pipeline: notebook sources, the papermill runner, profiles and the build."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

from fairlib.book import build_book, chapter_notebooks, load_profile
from fairlib.book.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


# -- sources ---------------------------------------------------------------------------------
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_source_notebook_is_stripped_with_one_literal_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "outputs must be stripped"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"expected exactly one `parameters` cell, found {len(params)}"
    tree = ast.parse(params[0].source)
    import papermill as pm

    declared = set(pm.inspect_notebook(str(path)))
    assigned = {node.target.id for node in tree.body if isinstance(node, ast.AnnAssign)}
    # papermill's parser skips lines whose comment it cannot read (quotes, '='): such a
    # parameter could not be overridden by name through the runner
    assert assigned == declared, f"papermill cannot read: {sorted(assigned - declared)}"
    for node in tree.body:
        # annotated literals only: papermill injects overrides after this cell and never reruns it
        assert isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name), ast.dump(node)
        ast.literal_eval(node.value)


def test_every_notebook_is_a_chapter_and_profiles_name_real_parameters():
    chapters = {src for _, src in chapter_notebooks(ROOT / "book", ROOT / "notebooks")}
    assert set(NOTEBOOKS) == chapters, "every notebook in notebooks/ must be listed in book/_toc.yml"
    import papermill as pm

    for profile in ("smoke", "full"):
        for stem, overrides in load_profile(ROOT / "notebooks", profile).items():
            declared = pm.inspect_notebook(str(ROOT / "notebooks" / f"{stem}.ipynb"))
            assert set(overrides) <= set(declared), (profile, stem)


# -- the smoke build of the real book -------------------------------------------------------
def test_smoke_build_executes_every_chapter(smoke_build):
    executed = {e.source for e in smoke_build.executions}
    assert executed == set(NOTEBOOKS)
    smoke = load_profile(ROOT / "notebooks", "smoke")
    for run in smoke_build.executions:
        nb = nbformat.read(smoke_build.html.parent / "executed" / run.source.name, as_version=4)
        assert nb.metadata.papermill.parameters == smoke.get(run.source.stem, {})
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors
        hidden = [c for c in nb.cells if {"parameters", "injected-parameters"} & set(c.metadata.get("tags", []))]
        assert hidden and all("remove-cell" in c.metadata.tags for c in hidden)
        footer = nb.cells[-1].source
        assert "Reproducibility" in footer and "profile `smoke`" in footer and "torch" in footer


def test_smoke_build_has_a_page_per_toc_entry(smoke_build):
    from fairlib.book import toc_files

    for entry in toc_files(ROOT / "book"):
        page = smoke_build.html / f"{entry}.html"
        assert page.exists(), page
    intro = (smoke_build.html / "intro.html").read_text()
    assert "Course map" in intro


# -- failures ---------------------------------------------------------------------------------
def _tiny_book(tmp_path: Path, notebook_cells: list[str], extra_md: str = "") -> tuple[Path, Path]:
    """A one-chapter book whose chapter is a notebook with the given code cells."""
    book, notebooks = tmp_path / "book", tmp_path / "notebooks"
    book.mkdir()
    notebooks.mkdir()
    shutil.copy(ROOT / "book" / "_config.yml", book)
    shutil.copy(ROOT / "book" / "references.bib", book)
    shutil.copytree(ROOT / "book" / "_static", book / "_static")
    (book / "intro.md").write_text("# Tiny\n\nA test book.\n" + extra_md)
    (book / "_toc.yml").write_text(yaml.safe_dump(
        {"format": "jb-book", "root": "intro", "chapters": [{"file": "chapters/01_tiny"}]}))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("x: int = 1  # a parameter")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Tiny chapter"), params]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in notebook_cells]
    nbformat.write(nb, notebooks / "01_tiny.ipynb")
    return book, notebooks


def test_failing_notebook_exits_nonzero_names_cell_and_keeps_last_good_book(tmp_path, capsys):
    book, notebooks = _tiny_book(tmp_path, ["y = x + 1", "raise ValueError(f'boom {y}')"])
    out = tmp_path / "out"
    (out / "html").mkdir(parents=True)
    (out / "html" / "index.html").write_text("last good book")
    status = cli(["build", "--book", str(book), "--notebooks", str(notebooks), "--output", str(out)])
    err = capsys.readouterr().err
    assert status == 1
    assert "01_tiny.ipynb failed at cell 3" in err and "ValueError: boom 2" in err
    assert "the book was not built" in err
    assert (out / "html" / "index.html").read_text() == "last good book"
    assert not (tmp_path / "out.staging" / "out").exists()


def test_unknown_parameter_is_refused(tmp_path, capsys):
    book, notebooks = _tiny_book(tmp_path, ["print(x)"])
    status = cli(["run", str(notebooks / "01_tiny.ipynb"), "-p", "xx", "3", "-o", str(tmp_path / "o.ipynb")])
    assert status == 1
    assert "unknown 'xx'" in capsys.readouterr().err
    assert not (tmp_path / "o.ipynb").exists()


def test_run_injects_parameters_hides_them_and_adds_the_footer(tmp_path):
    book, notebooks = _tiny_book(tmp_path, ["print(x * 2)"])
    out = tmp_path / "o.ipynb"
    assert cli(["run", str(notebooks / "01_tiny.ipynb"), "-p", "x", "21", "-o", str(out)]) == 0
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata.papermill.parameters == {"x": 21}
    printed = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream"]
    assert printed[-1]["text"].strip() == "42"
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "remove-cell" in injected[0].metadata.tags
    assert "`x=21`" in nb.cells[-1].source


def test_a_kernel_that_dies_at_start_up_is_started_again_and_other_errors_are_not(tmp_path, monkeypatch):
    import papermill

    from fairlib.book.execute import KERNEL_START_FAILURE, run_notebook

    book, notebooks = _tiny_book(tmp_path, ["print(x * 2)"])
    real, calls = papermill.execute_notebook, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # as when two kernels started at once race for a port
            raise RuntimeError(KERNEL_START_FAILURE)
        return real(*args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    run = run_notebook(notebooks / "01_tiny.ipynb", tmp_path / "o.ipynb", {"x": 4}, progress=False)
    assert len(calls) == 2 and run.output.is_file()

    def broken(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("no such kernel")

    calls.clear()
    monkeypatch.setattr(papermill, "execute_notebook", broken)
    with pytest.raises(RuntimeError, match="no such kernel"):
        run_notebook(notebooks / "01_tiny.ipynb", tmp_path / "p.ipynb", {"x": 4}, progress=False)
    assert len(calls) == 1


SOLUTION_MARKER = "the-secret-solution-text"
EXERCISE_MD = f"""
```{{exercise}}
:label: ex-tiny

Compute something.
```

```{{solution}} ex-tiny
:class: dropdown

{SOLUTION_MARKER}
```
"""


GATED_MD = [
    "```{exercise-start}\n:label: ex-gated\n```\nDouble it.\n```{exercise-end}\n```",
    "```{solution-start} ex-gated\n:class: dropdown\n```\nThe gated-solution-prose.",
]


def test_student_edition_hides_solutions_everywhere(tmp_path):
    book, notebooks = _tiny_book(tmp_path, ["print(x)"], extra_md=EXERCISE_MD)
    nb = nbformat.read(notebooks / "01_tiny.ipynb", as_version=4)
    nb.cells += [nbformat.v4.new_markdown_cell(GATED_MD[0]), nbformat.v4.new_markdown_cell(GATED_MD[1]),
                 nbformat.v4.new_code_cell("print('gated-solution-code')"),
                 nbformat.v4.new_markdown_cell("```{solution-end}\n```"),
                 nbformat.v4.new_markdown_cell("After the solution.")]
    nbformat.write(nb, notebooks / "01_tiny.ipynb")
    teacher = build_book(book, notebooks, output=tmp_path / "teacher", log=lambda *_: None)
    student = build_book(book, notebooks, student=True, output=tmp_path / "student", log=lambda *_: None)

    def text(root: Path) -> str:
        return "".join(p.read_text(errors="ignore") for p in root.rglob("*") if p.is_file())

    assert SOLUTION_MARKER in text(teacher.html) and "gated-solution-code" in text(teacher.html)
    assert "Compute something" in text(student.html) and "Double it" in text(student.html)
    assert "After the solution" in text(student.html)
    for marker in (SOLUTION_MARKER, "gated-solution-code", "gated-solution-prose"):
        assert marker not in text(student.html.parent), marker  # nowhere in the student build
    assert not (student.html / "_sources").exists()


def test_profiles_file_is_valid_yaml_with_known_profiles():
    data = yaml.safe_load((ROOT / "notebooks" / "profiles.yml").read_text())
    assert set(data) <= {"smoke", "full", "constraints"}  # profiles, and the parameter rules
    with pytest.raises(ValueError, match="Expected `profile` to be one of 'teach', 'smoke', 'full', but got 'fast'"):
        load_profile(ROOT / "notebooks", "fast")


def test_a_build_warning_fails_the_build_and_keeps_the_last_book(tmp_path, capsys):
    book, notebooks = _tiny_book(tmp_path, ["print(x)"], extra_md="\nSee {cite}`no_such_paper`.\n")
    out = tmp_path / "out"
    (out / "html").mkdir(parents=True)
    (out / "html" / "index.html").write_text("last good book")
    status = cli(["build", "--book", str(book), "--notebooks", str(notebooks), "--output", str(out)])
    err = capsys.readouterr().err
    assert status == 1
    assert "jupyter-book build failed" in err and "no_such_paper" in err
    assert (out / "html" / "index.html").read_text() == "last good book"


def _solution_lines(notebooks: list[Path]) -> dict[str, set[str]]:
    """Per notebook, the lines (30+ characters) of its solutions that occur nowhere else:
    not in any notebook's text outside solutions, not even as part of a longer line."""
    solutions: dict[str, set[str]] = {}
    outside = []
    for notebook in notebooks:
        nb = nbformat.read(notebook, as_version=4)
        inside, lines = False, set()
        for cell in nb.cells:
            text = cell.source if cell.cell_type == "markdown" else ""
            inside = inside or "{solution-start}" in text
            if inside and "{solution-start}" not in text:
                lines |= {line.strip() for line in cell.source.splitlines() if len(line.strip()) >= 30}
            else:
                outside.append(cell.source)
            if "{solution-end}" in text:
                inside = False
        solutions[notebook.name] = lines
    rest = "\n".join(outside)
    return {name: {line for line in lines if line not in rest} for name, lines in solutions.items()}


def _plain_text(root: Path) -> str:
    """Every file under ``root`` as text, HTML tags removed and entities decoded (so that
    syntax-highlighted code reads as its source lines)."""
    import html
    import re

    return "".join(html.unescape(re.sub(r"<[^>]+>", "", p.read_text(errors="ignore")))
                   for p in root.rglob("*") if p.is_file())


def test_real_student_edition_builds_and_holds_no_solution(tmp_path, smoke_build):
    """`fairlib build --student` on the real book (smoke profile): it builds, and no line
    unique to a solution reaches any output file (the same lines are found in the teacher
    build, so the check can see them)."""
    from fairlib.book import build_book

    result = build_book(ROOT / "book", ROOT / "notebooks", profile="smoke", student=True,
                        output=tmp_path / "_build_student", log=lambda *_: None)
    student, teacher = _plain_text(result.html.parent), _plain_text(smoke_build.html)
    leaked, seen = [], 0
    for name, lines in _solution_lines(sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))).items():
        assert lines, name  # every chapter has solutions to hide
        seen += sum(line in teacher for line in lines)
        leaked += [f"{name}: {line}" for line in lines if line in student]
    assert seen > 50  # the teacher edition shows them
    assert leaked == []


INTERVAL = re.compile(r"([+\-−]?\d+(?:\.\d+)?)(%?)\s*\[\s*([+\-−]?\d+(?:\.\d+)?)%?\s*,\s*([+\-−]?\d+(?:\.\d+)?)%?\s*\]")


def test_every_printed_interval_contains_its_estimate_and_percentages_stay_in_range(smoke_build):
    # Scans the text of every built chapter for "estimate [lower, upper]".
    import html as html_lib

    found = 0
    for page in sorted((smoke_build.html / "chapters").glob("*.html")):
        text = re.sub(r"<[^>]+>", "", html_lib.unescape(page.read_text()))
        for m in INTERVAL.finditer(text):
            est, lo, hi = (float(g.replace("−", "-")) for g in (m.group(1), m.group(3), m.group(4)))
            found += 1
            assert lo <= est <= hi, f"{page.name}: {m.group(0)!r} excludes its estimate"
            if m.group(2) and not m.group(1).startswith(("+", "-", "−")):
                assert 0 <= lo and hi <= 100, f"{page.name}: {m.group(0)!r} leaves 0-100%"
    assert found > 50  # the chapters do print intervals


def test_a_prose_edit_reuses_the_executed_chapter_and_a_code_edit_or_force_executes_again(tmp_path):
    book, notebooks = _tiny_book(tmp_path, ["import random\nprint('draw', random.random())"])
    out, quiet = tmp_path / "out", (lambda *_: None)
    source = notebooks / "01_tiny.ipynb"
    (book / "status.md").write_text("# Build status\n\nplaceholder\n")
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    (book / "_toc.yml").write_text(yaml.safe_dump({**toc, "chapters": toc["chapters"] + [{"file": "status"}]}))

    def drawn() -> str:
        nb = nbformat.read(out / "executed" / "01_tiny.ipynb", as_version=4)
        return next(o["text"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
                    if o.get("name") == "stdout")

    first = build_book(book, notebooks, output=out, log=quiet)
    assert [e.cached for e in first.executions] == [False]
    nb = nbformat.read(source, as_version=4)
    nb.cells[0].source = "# Tiny chapter, reworded"
    nbformat.write(nb, source)
    before = drawn()
    second = build_book(book, notebooks, output=out, log=quiet)
    assert [e.cached for e in second.executions] == [True] and drawn() == before  # not executed again
    status = (out / "html" / "status.html").read_text()
    assert "reused (unchanged since)" in status and first.executions[0].executed in status
    assert "Tiny chapter, reworded" in (out / "html" / "chapters" / "01_tiny.html").read_text()
    assert cli(["build", "--book", str(book), "--notebooks", str(notebooks), "--output", str(out), "--force"]) == 0
    assert drawn() != before  # --force executed it again
    nb.cells[-1].source += "\nprint('more')"
    nbformat.write(nb, source)
    assert [e.cached for e in build_book(book, notebooks, output=out, log=quiet).executions] == [False]
    assert [e.cached for e in build_book(book, notebooks, output=out, profile="smoke", log=quiet).executions] == [False]


def test_api_reference_builds_with_warnings_as_errors_and_documents_every_export(tmp_path):
    import subprocess

    import fairlib.experiments
    import fairlib.metrics
    import fairlib.weighting
    from fairlib.book.build import _jupyter_book

    book = tmp_path / "book"
    book.mkdir()
    for name in ("_config.yml", "references.bib"):
        shutil.copy(ROOT / "book" / name, book)
    shutil.copytree(ROOT / "book" / "_static", book / "_static")
    shutil.copytree(ROOT / "book" / "api", book / "api")
    (book / "intro.md").write_text("# Reference only\n\nSee {py:func}`fairlib.experiments.tune_and_run`.\n")
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    reference = next(p for p in toc["parts"] if p["caption"] == "Reference")
    (book / "_toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": "intro", "parts": [reference]}))
    proc = subprocess.run(_jupyter_book() + ["build", str(book), "--warningiserror", "--nitpick", "--keep-going"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    html = book / "_build" / "html" / "api"
    for module, page in ((fairlib.metrics, "metrics"), (fairlib.experiments, "experiments"),
                         (fairlib.weighting, "weighting")):
        text = (html / f"{page}.html").read_text()
        missing = [name for name in module.__all__ if f'id="{module.__name__}.{name}"' not in text
                   and not name.isupper()]
        assert not missing, (page, missing)
    assert 'href="api/experiments.html#fairlib.experiments.tune_and_run"' in (book / "_build" / "html" / "intro.html").read_text()


def test_chapters_run_with_the_book_style_and_the_callers_environment_is_left_alone(tmp_path, monkeypatch):
    import os

    monkeypatch.delenv("MATPLOTLIBRC", raising=False)
    monkeypatch.delenv("IPYTHONDIR", raising=False)
    book, notebooks = _tiny_book(tmp_path, ["import matplotlib\nprint(matplotlib.rcParams['figure.dpi'])",
                                            "import pandas as pd\nprint(pd.DataFrame({'r': [0.49956, 1e-5]}))"])
    out = tmp_path / "o.ipynb"
    assert cli(["run", str(notebooks / "01_tiny.ipynb"), "-o", str(out)]) == 0
    printed = [o["text"] for c in nbformat.read(out, as_version=4).cells if c.cell_type == "code"
               for o in c.outputs if o.get("name") == "stdout"]
    assert printed[-2].strip() == "150.0" and "MATPLOTLIBRC" not in os.environ and "IPYTHONDIR" not in os.environ
    assert "0.4996" in printed[-1] and "1e-05" in printed[-1] and "e-01" not in printed[-1]


def test_pages_are_rebuilt_only_where_their_source_changed(tmp_path):
    """A prose edit re-reads and rewrites that page only; a changed heading rewrites every
    page (their navigation shows it); --force reads everything; a staged copy's fresh
    modification time alone changes nothing."""
    book, notebooks = _tiny_book(tmp_path, ["print(x)"])
    (book / "other.md").write_text("# Other page\n\nText.\n")
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    (book / "_toc.yml").write_text(yaml.safe_dump({**toc, "chapters": toc["chapters"] + [{"file": "other"}]}))
    out, logged = tmp_path / "out", []
    source = notebooks / "01_tiny.ipynb"

    def build(**kw) -> tuple[str, dict[str, int]]:
        logged.clear()
        build_book(book, notebooks, output=out, log=logged.append, **kw)
        [read] = [m for m in logged if "pages read by sphinx" in m]
        return read, {p.name: p.stat().st_mtime_ns for p in (out / "html").rglob("*.html")
                      if "_static" not in p.parts}  # pages, not the theme's templates

    def edit(old: str, new: str) -> None:
        nb = nbformat.read(source, as_version=4)
        nb.cells[0].source = nb.cells[0].source.replace(old, new)
        nbformat.write(nb, source)

    read, first = build()
    assert "3 added" in read and (out / "pages.json").is_file()
    read, again = build()  # nothing changed
    assert "0 added, 0 changed" in read and again == first
    edit("# Tiny chapter", "# Tiny chapter\n\nA new sentence.")
    read, prose = build()
    assert "0 added, 1 changed" in read
    # the page, the root holding the toctree, and the index and search pages Sphinx always writes
    written = sorted(n for n in prose if prose[n] != again[n])
    assert written == ["01_tiny.html", "genindex.html", "intro.html", "search.html"]
    assert "A new sentence." in (out / "html" / "chapters" / "01_tiny.html").read_text()
    edit("# Tiny chapter", "# Tiny retitled")
    read, heading = build()
    assert "0 added, 1 changed" in read
    assert all(heading[n] != prose[n] for n in ("intro.html", "other.html", "01_tiny.html"))
    assert "Tiny retitled" in (out / "html" / "other.html").read_text()  # its navigation
    (book / "other.md").write_text("# Other page\n\nText, edited.\n")  # not a chapter (a glossary could be)
    read, other = build()
    assert "0 added, 1 changed" in read and all(other[n] != heading[n] for n in heading)
    read, _ = build(force=True)
    assert "3 added" in read
    read, _ = build(student=True)  # never from the pages of the edition with solutions
    assert "3 added" in read
