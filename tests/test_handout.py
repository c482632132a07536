"""Student handouts (`fairlib.book.handout.write_handouts`) of the real chapter notebooks."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest

from fairlib.book import load_profile
from fairlib.book.handout import PLACEHOLDER, write_handouts

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
MYST = re.compile(r"\{[\w:-]+\}`|^(`{3,}|:{3,})\{|^\([\w:-]+\)=", re.M)


@pytest.fixture(scope="module")
def handouts(tmp_path_factory):
    out = tmp_path_factory.mktemp("handouts")
    return {"student": write_handouts(NOTEBOOKS, out / "student"),
            "teacher": write_handouts(NOTEBOOKS, out / "teacher", solutions=True)}


def text(path: Path) -> str:
    return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)


def solution_lines(source: Path) -> set[str]:
    """Lines that only a solution has: Markdown without roles, and code, of 30+ characters."""
    inside, solution, other = False, set(), set()
    for cell in nbformat.read(source, as_version=4).cells:
        inside = inside or "{solution-start}" in cell.source
        markdown = cell.cell_type == "markdown"
        for line in cell.source.splitlines():
            line = line.strip()
            if len(line) >= 30 and not (markdown and "{" in line) and "glue(" not in line:
                (solution if inside else other).add(line)
        if "{solution-end}" in cell.source:
            inside = False
    return solution - other


def test_a_handout_per_chapter_that_validates_and_is_plain_markdown(handouts):
    for edition, paths in handouts.items():
        assert [p.name for p in paths] == [s.name for s in SOURCES], edition
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            nbformat.validate(nb)
            params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
            assert len(params) == 1, path
            assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")
            markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
            assert "{glue:" not in markdown and not MYST.search(markdown), (path, MYST.search(markdown))
            assert "### Exercise" in markdown and "*Figure " in markdown
            assert ("### Solution" in markdown) == (edition == "teacher"), (edition, path)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_solution_text_in_the_student_handout(handouts, source):
    lines = solution_lines(source)
    assert lines, f"found no solution text in {source.name}"
    [student] = [p for p in handouts["student"] if p.name == source.name]
    [teacher] = [p for p in handouts["teacher"] if p.name == source.name]
    student_text, teacher_text = text(student), text(teacher)
    student_lines = {line.strip() for line in student_text.splitlines()}
    assert [line for line in lines if line in student_lines] == []
    assert [line for line in lines if line not in teacher_text] == []
    exercises = text(source).count("{exercise-start}") + text(source).count("```{exercise}")
    assert student_text.count("### Exercise ") == teacher_text.count("### Exercise ") == exercises
    assert teacher_text.count("### Solution") == exercises


def test_single_block_directives_and_glued_values(tmp_path):
    src, executed = tmp_path / "src", tmp_path / "executed"
    src.mkdir(), executed.mkdir()
    md = nbformat.v4.new_markdown_cell
    nb = nbformat.v4.new_notebook(cells=[
        md("# Toy"),
        md("A rate of {glue:text}`rate:.1%` and {glue:text}`other`, see {numref}`fig-toy` "
           "and {ref}`ex-toy`."),
        md("```{glue:figure} fig-toy\n:name: fig-toy\n\nThe toy figure.\n```"),
        md("```{exercise} Doubling\n:label: ex-toy\n\nDouble the rate.\n```\n\n"
           "```{solution} ex-toy\n:class: dropdown\n\nSECRET ANSWER\n```"),
        nbformat.v4.new_code_cell('glue("fig-toy", fig, display=False)')])
    nbformat.write(nb, src / "03_toy.ipynb")
    run = nbformat.v4.new_code_cell("note('rate', 0.25)")
    run.outputs = [nbformat.v4.new_output(
        "display_data", data={"application/papermill.record/text/plain": "0.25"},
        metadata={"scrapbook": {"name": "rate", "mime_prefix": "application/papermill.record/"}})]
    done = nbformat.v4.new_notebook(cells=[run, md("This page was executed ... with profile `smoke` ...")])
    nbformat.write(done, executed / "03_toy.ipynb")

    [student] = write_handouts(src, tmp_path / "student", glue_from=executed)
    body = text(student)
    assert "A rate of 25.0% and " + PLACEHOLDER.format(key="other") in body
    assert "see Figure 3.1 and Exercise 3.1" in body
    assert "*Figure 3.1 appears when you run the code above.* The toy figure." in body
    assert "### Exercise 3.1: Doubling\n\nDouble the rate." in body and "SECRET" not in body
    assert "last build (profile `smoke`)" in body
    assert 'glue("fig-toy", fig, display=True)' in body
    [teacher] = write_handouts(src, tmp_path / "teacher", solutions=True)
    assert "### Solution to Exercise 3.1\n\nSECRET ANSWER" in text(teacher)


def test_a_student_handout_executes_at_the_smoke_profile(handouts, tmp_path):
    pm = pytest.importorskip("papermill")
    name = "01_measuring_fairness"
    [handout] = [p for p in handouts["student"] if p.stem == name]
    work = tmp_path / handout.name
    shutil.copy2(handout, work)
    params = load_profile(NOTEBOOKS, "smoke").get(name, {})
    pm.execute_notebook(str(work), str(tmp_path / "out.ipynb"), parameters=params, cwd=str(tmp_path),
                        kernel_name="python3", progress_bar=False)
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "glued figures are shown"


def test_the_handout_command_writes_student_and_teacher_copies(tmp_path, capsys):
    from fairlib.book.cli import main

    nbs = ["--notebooks", str(NOTEBOOKS)]
    assert main(["handout", "--out", str(tmp_path / "student"), *nbs]) == 0
    assert main(["handout", "--out", str(tmp_path / "teacher"), "--solutions", *nbs]) == 0
    out = capsys.readouterr().out
    assert "student handouts" in out and "teacher's copies" in out
    names = sorted(p.name for p in (tmp_path / "student").glob("*.ipynb"))
    assert names and names == sorted(p.name for p in (tmp_path / "teacher").glob("*.ipynb"))
    assert main(["handout", "--out", str(tmp_path / "x"), "--from", str(tmp_path / "missing"), *nbs]) == 2
