"""Readable pages: figures sized to the column (SVG), counts glued with the right plural,
glossary links from the chapters, and the course map's dependency diagram."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from fairlib.book import count_text, note_count
from fairlib.book.coursemap import (
    Chapter,
    arrows,
    dependency_svg,
    parse_prerequisites,
    read_course_map,
    write_diagram,
)

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
#: Chapters whose prose links glossary terms: all of them.
TERM_CHAPTERS = ("01", "02", "03", "04", "05", "06", "07", "08", "09", "10")
_TERM = re.compile(r"\{term\}`(?:[^`<]*<(?P<target>[^>`]+)>|(?P<plain>[^`]+))`")


# --- plurals ---------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "words", "expected"), [
    (1, ("case",), "1 case"), (3, ("case",), "3 cases"), (0, ("epoch",), "0 epochs"),
    (12000, ("row",), "12,000 rows"), (1, ("shows", "show"), "1 shows"), (2, ("shows", "show"), "2 show"),
    (2.0, ("time",), "2 times"),
])
def test_count_text_uses_the_singular_for_one_only(n, words, expected):
    assert count_text(n, *words) == expected


def test_count_text_accepts_numpy_and_torch_integers():
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    assert count_text(np.int64(1), "case") == "1 case" and count_text(torch.tensor(4).item(), "case") == "4 cases"


@pytest.mark.parametrize("bad", [1.5, "3", None, True])
def test_count_text_refuses_what_is_not_a_whole_number(bad):
    with pytest.raises(TypeError, match="whole number"):
        count_text(bad, "case")


def test_note_count_glues_the_phrase(monkeypatch):
    glued = {}
    monkeypatch.setattr("fairlib.book.glue.note", lambda key, value: glued.update({key: value}))
    assert note_count("worse", 1, "case") == "1 case" and glued == {"worse": "1 case"}


def _markdown(path: Path) -> str:
    nb = json.loads(path.read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


#: Glue keys of counts that can be 1 under an allowed parameter (tuning seeds, epochs, the
#: first tree count, a tuning grid of length 1, hidden units, steps, batch size, resamples)
#: or by outcome (tallies of methods or images, JTT's extra copies), with the fixed word that
#: followed them; they are glued with their noun (or verb) by ``count_text`` instead.
COUNTED = {"tune_seeds": r"(\{term\}`)?tuning", "adult_epochs": "epochs", "trees0": "trees",
           "n_red_pos": "red", "n_green_neg": "green", "n_lower_everywhere": "lower",
           "digits_n_lower": "methods", "n_overlap": "other", "n_cheap": "of",
           "budget": "(values|configurations|learning)", "hidden": "units",
           "n_fractions": "shares", "retrain_steps": "optimiser", "batch_size": "rows",
           "n_boot": "resamples", "jtt_up_weight": "extra", "n_overlap_best": "other",
           "ex4_t1_size": "images", "ex4_tmax": "epochs", "ex4_tmax_size": "images"}
#: Counts that a chapter's constraints keep away from 1, so a fixed plural stays right there:
#: chapter 4's budget is twice the length of its knob grid, chapter 9's is its two weight decays,
#: and chapters 1 and 7 draw at least two bootstrap resamples.
NEVER_ONE = {"01": {"n_boot"}, "04": {"budget"}, "07": {"n_boot"}, "09": {"budget"}}


def _counts_before_their_old_word(text: str) -> list[str]:
    return [key for key, word in COUNTED.items()
            if re.search(rf"\{{glue:text\}}`{key}(:[^`]*)?`\s+{word}\b", text)]


def test_chapters_glue_no_count_in_front_of_a_fixed_plural_that_can_be_one():
    """Counts that can be 1 under an allowed parameter (epochs, JTT's stage-1 epochs, the smoke
    profile's single tuning seed) or by outcome (chapter 8's and 9's tallies) are glued with
    their noun by ``count_text``."""
    fixed = re.compile(r"\{glue:text\}`(epochs|jtt_stage1_epochs|jtt_error_set|n_acc_worse|"
                       r"n_better|es_undefined_10)(:[^`]*)?`\s+"
                       r"(epochs|stage-1|images|cases|show|times)\b")
    for stem in TERM_CHAPTERS:
        [path] = (ROOT / "notebooks").glob(f"{stem}_*.ipynb")
        text = _markdown(path)
        assert not fixed.findall(text), path.name
        assert not set(_counts_before_their_old_word(text)) - NEVER_ONE.get(stem, set()), path.name


def test_the_fixed_plural_check_catches_the_old_wording():
    old = ("runs on {glue:text}`tune_seeds:d` {term}`tuning seeds <Tuning seeds>`; "
           "{glue:text}`n_cheap` of the other methods take; {glue:text}`adult_epochs` epochs")
    assert _counts_before_their_old_word(old) == ["tune_seeds", "adult_epochs", "n_cheap"]
    assert not _counts_before_their_old_word("runs on {glue:text}`tune_seeds_text`, and")
    old = ("an MLP ({glue:text}`hidden:d` units) over {glue:text}`budget:d` values, at\n"
           "{glue:text}`top_below_random:d` of the {glue:text}`n_fractions:d` shares tried")
    assert _counts_before_their_old_word(old) == ["budget", "hidden", "n_fractions"]
    assert _counts_before_their_old_word("gets {glue:text}`budget:d` configurations") == ["budget"]
    new = "an MLP ({glue:text}`hidden_text`) over {glue:text}`budget_text`, of the shares"
    assert not _counts_before_their_old_word(new)


# --- glossary links --------------------------------------------------------------------

def _glossary_terms() -> set[str]:
    text = (BOOK / "notation.md").read_text()
    block = text[text.index("```{glossary}"):]
    block = block[:block.index("\n```", 3)]
    return {line.strip().lower() for line in block.splitlines()[1:] if line and not line.startswith(" ")}


def test_every_term_role_of_the_chapters_names_a_glossary_entry():
    terms = _glossary_terms()
    assert {"meta split", "bootstrap interval", "consistent with zero", "selection rate"} <= terms
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for m in _TERM.finditer(_markdown(path)):
            target = (m["target"] or m["plain"]).strip().lower()
            assert target in terms, (path.name, target)


@pytest.mark.parametrize("stem", TERM_CHAPTERS)
def test_chapters_link_their_key_terms_once(stem):
    [path] = (ROOT / "notebooks").glob(f"{stem}_*.ipynb")
    targets = [(m["target"] or m["plain"]).strip() for m in _TERM.finditer(_markdown(path))]
    assert len(targets) >= 5, targets
    assert len(targets) == len(set(targets)), "a term is linked at its first use only"


def test_a_term_missing_from_the_glossary_fails_the_build(tmp_path):
    """The book builds with warnings as errors, and Sphinx warns on an unknown term."""
    import shutil
    import subprocess

    import yaml

    from fairlib.book.build import _jupyter_book

    book = tmp_path / "book"
    book.mkdir()
    for name in ("_config.yml", "references.bib", "notation.md"):
        shutil.copy(BOOK / name, book)
    shutil.copytree(BOOK / "_static", book / "_static")
    (book / "intro.md").write_text("# T\n\nA {term}`meta split <Meta split>` and a {term}`gizmo <Gizmo>`.\n")
    (book / "_toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": "intro",
                                                   "chapters": [{"file": "notation"}]}))
    proc = subprocess.run(_jupyter_book() + ["build", str(book), "--warningiserror", "--nitpick", "--keep-going"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "term not in glossary" in out and "Gizmo" in out and "'Meta split'" not in out


# --- course map ------------------------------------------------------------------------

def test_the_course_map_prerequisites_are_read_from_the_intro():
    chapters = {c.number: c for c in read_course_map(BOOK / "intro.md")}
    assert sorted(chapters) == list(range(1, len(chapters) + 1))
    assert chapters[1].prerequisites == frozenset()
    assert chapters[4].prerequisites == {2, 3} and chapters[10].prerequisites == {2, 4}


def test_the_diagram_draws_a_reduced_arrow_set_with_the_same_reach():
    chapters = read_course_map(BOOK / "intro.md")
    drawn = arrows(chapters)

    def reach(edges, node):
        seen, todo = set(), [node]
        while todo:
            for a, b in edges:
                if b == todo[-1] and a not in seen:
                    seen.add(a)
                    todo.insert(0, a)
            todo.pop()
        return seen

    direct = [(p, c.number) for c in chapters for p in c.prerequisites]
    for c in chapters:
        assert reach(drawn, c.number) == reach(direct, c.number), c.number
    assert len(drawn) < len(direct)  # e.g. 2 -> 4 follows from 2 -> 3 -> 4


def test_the_committed_diagram_is_the_one_the_intro_gives_and_the_intro_shows_it():
    svg = (BOOK / "_static" / "course-dependencies.svg").read_text()
    assert svg == dependency_svg(read_course_map(BOOK / "intro.md")), \
        "run: python -c \"from fairlib.book.coursemap import write_diagram; write_diagram('book')\""
    assert "_static/course-dependencies.svg" in (BOOK / "intro.md").read_text()
    assert "fairlib.book.coursemap" in (BOOK / "_config.yml").read_text()
    chapters = read_course_map(BOOK / "intro.md")
    assert svg.count('class="chapter"') == len(chapters)
    assert svg.count('class="arrow"') == len(arrows(chapters))
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing to fetch
    width = int(re.search(r'width="(\d+)"', svg).group(1))
    assert width <= 660  # the column: shown at its natural size


def test_the_diagram_follows_an_edited_table(tmp_path):
    row = "| 6. Data condensation | a smaller, fairer training set from learned weights | chapter 4 |"
    intro = (BOOK / "intro.md").read_text()
    assert row in intro
    (tmp_path / "intro.md").write_text(intro.replace(row, row.replace("chapter 4", "chapters 4-5")))
    svg = write_diagram(tmp_path).read_text()
    assert "chapter 5 before chapter 6" in svg and "chapter 4 before chapter 6" not in svg
    (tmp_path / "intro.md").write_text("# No course map here\n")
    assert write_diagram(tmp_path) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("chapters 1-3", {1, 2, 3}), ("chapter 2; small neural networks", {2}), ("Python, pandas", set()),
    ("chapters 2 and 4", {2, 4}), ("chapters 2–3; automatic differentiation", {2, 3}),
])
def test_prerequisite_cells_are_parsed(text, expected):
    assert parse_prerequisites(text) == expected


def test_a_prerequisite_on_a_later_chapter_is_refused():
    table = "| Part | Chapter | Prerequisites |\n|---|---|---|\n| A | 1. One | chapter 2 |\n| A | 2. Two | |\n"
    with pytest.raises(ValueError, match="earlier chapters"):
        read_course_map(table)
    assert dependency_svg([Chapter(1, "x", "A")]).count("<rect") == 2  # the box and its legend swatch


# --- figures ---------------------------------------------------------------------------

def test_fit_to_column_narrows_wide_figures_only():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fairlib.book.figures import COLUMN_INCHES, fit_to_column, tight_width

    wide, axes = plt.subplots(1, 3, figsize=(12, 3))
    for ax in axes:
        ax.plot([0, 1], [0, 1], label="a long legend entry")
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    assert fit_to_column(wide) and tight_width(wide) <= COLUMN_INCHES + 0.06
    assert wide.get_size_inches()[1] == pytest.approx(3.0)
    small, _ = plt.subplots(figsize=(4, 3))
    assert not fit_to_column(small) and tuple(small.get_size_inches()) == (4, 3)
    plt.close("all")


def test_a_legend_row_under_the_panels_gets_fewer_columns_and_room():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fairlib.book.figures import COLUMN_INCHES, fit_to_column, tight_width

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for i in range(10):
        axes[0].plot([0, 1], [i, i], label=f"method number {i}")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=7, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    assert fit_to_column(fig) and tight_width(fig) <= COLUMN_INCHES + 0.06
    [legend] = fig.legends
    assert len(legend.get_texts()) == 10 and legend._ncols < 7
    assert fig.get_size_inches()[0] >= 0.75 * COLUMN_INCHES  # the panels were not squeezed away
    plt.close(fig)


def test_plotting_defaults_fit_the_column():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from fairlib.book.figures import COLUMN_INCHES, tight_width
    from fairlib.experiments import seed_summary
    from fairlib.plotting import plot_method_intervals, plot_sweep

    metrics = ["accuracy_of_a_model", "worst_group_accuracy", "equal_opportunity_difference", "dp", "eo"]
    runs = pd.DataFrame({"method": ["Reweighing", "Balanced sampling"] * 4, "epoch": [1, 1, 2, 2] * 2,
                         **{m: [0.1, 0.2, 0.3, 0.4, 0.2, 0.3, 0.4, 0.5] for m in metrics}})
    axes = plot_method_intervals(seed_summary(runs, metrics), metrics)
    assert len(axes) == len(metrics) and tight_width(axes[0].figure) <= COLUMN_INCHES + 0.06
    assert len(axes[0].figure.axes) == len(metrics)  # no empty panel left over
    axes = plot_sweep(seed_summary(runs, metrics[:3], by=["method", "epoch"]), x="epoch", metrics=metrics[:3])
    assert len(axes) == 3 and tight_width(axes[0].figure) <= COLUMN_INCHES + 0.06
    plt.close("all")


def test_book_kernels_write_figures_as_svg_fitted_to_the_column(tmp_path):
    from fairlib.book import run_notebook

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("x: int = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\nfrom myst_nb import glue\n"
        "fig, axes = plt.subplots(1, 3, figsize=(12, 3))\nglue('wide', fig, display=False)\nplt.close(fig)\n"
        "fig, ax = plt.subplots()\nax.plot([0, 1])")]
    source = tmp_path / "fig.ipynb"
    nbformat.write(nb, source)
    out = run_notebook(source, tmp_path / "out.ipynb", {}, progress=False).output
    bundles = [o.get("data", {}) for c in nbformat.read(out, as_version=4).cells if c.cell_type == "code"
               for o in c.get("outputs", [])]
    svgs = [v for d in bundles for k, v in d.items() if k.endswith("image/svg+xml")]
    assert len(svgs) == 2 and not any(k.endswith("image/png") for d in bundles for k in d)
    widths = [float(re.search(r'width="([\d.]+)pt"', s).group(1)) / 72 for s in svgs]
    assert max(widths) <= 6.85 and min(widths) > 5  # the default figure: 6.4 in less tight margins
