"""Student handouts: one runnable ``.ipynb`` per chapter, readable in plain Jupyter.

The chapter notebooks are written for Jupyter Book (MyST roles and directives, glued
numbers). A handout is the same notebook with the solutions removed (kept in the teacher's
copy), outputs cleared, ``{glue:text}`` roles replaced by plain text (the values of the
book's last build, or a placeholder), figures, cross-references and citations written out,
and exercise/solution directives turned into Markdown headings. Code cells are kept, so a
handout runs top to bottom; the only code change makes glued figures display when run.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .build import strip_gated_solutions
from .glue import read_glue

PLACEHOLDER = "[computed: `{key}`]"
_DIRECTIVE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}[ \t]*(?P<arg>[^\n]*)\n"
                        r"(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)
_OPTION = re.compile(r"\A:([\w-]+):[ \t]*([^\n]*)\n?")
_ROLE = re.compile(r"\{(?P<role>[\w:-]+)\}`(?P<text>[^`]*)`")
_EXPLICIT = re.compile(r"\A(?P<title>.*?)\s*<(?P<target>[^<>]+)>\Z", re.S)
_TARGET = re.compile(r"^\(([\w:-]+)\)=[ \t]*\n+#+[ \t]*(.+)$", re.M)
_FIGURES = ("glue:figure", "figure")
_EXERCISES = ("exercise", "exercise-start")


def _directives(source: str) -> list[tuple[str, str, dict[str, str], str]]:
    """(name, argument, options, body) of every fenced directive, in order."""
    found = []
    for m in _DIRECTIVE.finditer(source):
        body, options = m["body"], {}
        while (opt := _OPTION.match(body)):
            options[opt[1]] = opt[2].strip()
            body = body[opt.end():]
        found.append((m["name"], m["arg"].strip(), options, body.strip("\n")))
    return found


def _targets(nb: Any, chapter: int) -> dict[str, tuple[str, str]]:
    """Label -> (kind, number or title) for exercises, figures and section targets."""
    targets, counts = {}, {"Exercise": 0, "Figure": 0}
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for name, _, options, _ in _directives(cell.source):
            kind = "Exercise" if name in _EXERCISES else "Figure" if name in _FIGURES else None
            if kind:
                counts[kind] += 1
                targets[options.get("label") or options.get("name") or f"{kind}-{counts[kind]}"] = (
                    kind, f"{chapter}.{counts[kind]}")
        targets.update({m[1]: ("Section", m[2].strip()) for m in _TARGET.finditer(cell.source)})
    return targets


def _bibliography(notebooks_dir: Path) -> dict[str, tuple[str, str, str]]:
    """Key -> (authors, year, title) from the ``.bib`` files of the notebooks or ``../book``."""
    try:
        from pybtex.database import parse_file
        from pybtex.richtext import Text
    except ImportError:  # pragma: no cover - pybtex comes with jupyter-book
        return {}

    def plain(latex: str) -> str:
        return Text.from_latex(latex).render_as("text")

    entries = {}
    folders = (notebooks_dir, notebooks_dir.parent / "book")
    for bib in [path for folder in folders for path in sorted(folder.glob("*.bib"))]:
        for key, entry in parse_file(str(bib)).entries.items():
            names = [plain(" ".join(p.prelast_names + p.last_names))
                     for p in entry.persons.get("author") or entry.persons.get("editor") or []]
            authors = (" and ".join(names) if len(names) < 3 else f"{names[0]} et al.") or key
            entries.setdefault(key, (authors, entry.fields.get("year", "n.d."),
                                     plain(entry.fields.get("title", ""))))
    return entries


def _provenance(executed: Path) -> str:
    """``profile `teach`, executed 2026-01-01 12:00 UTC`` from an executed copy's footer."""
    import nbformat

    footer = nbformat.read(executed, as_version=4).cells[-1].source
    parts = [m[0] for m in (re.search(r"profile `\w+`", footer),
                            re.search(r"executed \d{4}-\d\d-\d\d \d\d:\d\d UTC", footer)) if m]
    return f" ({', '.join(parts)})" if parts else ""


@dataclass
class _Chapter:
    """Rewrites one chapter's MyST Markdown as plain Markdown (see :func:`write_handouts`)."""

    number: int
    solutions: bool
    values: dict[str, Any] | None  # glued values of the last build, if any
    targets: dict[str, tuple[str, str]]  # label -> (kind, number or title), every chapter
    titles: dict[str, str]  # notebook stem -> chapter title
    bib: dict[str, tuple[str, str, str]]
    cited: list[str] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)  # glue keys shown as placeholders
    counts: dict[str, int] = field(default_factory=lambda: {"Exercise": 0, "Figure": 0})

    def markdown(self, source: str) -> str:
        text = _ROLE.sub(self.role, _DIRECTIVE.sub(self.directive, source))
        return re.sub(r"\n{3,}", "\n\n", re.sub(r"^\([\w:-]+\)=[ \t]*\n", "", text, flags=re.M)).strip()

    def _number(self, kind: str, label: str) -> str:
        self.counts[kind] += 1
        return self.targets.get(label, ("", f"{self.number}.{self.counts[kind]}"))[1]

    def role(self, m: re.Match[str]) -> str:
        name, text = m["role"], m["text"]
        explicit = _EXPLICIT.match(text)
        title, label = (explicit["title"], explicit["target"].strip()) if explicit else ("", text.strip())
        if name in ("glue", "glue:text"):
            key, _, spec = text.partition(":")
            if self.values is None or key not in self.values:
                self.missing.add(key)
                return PLACEHOLDER.format(key=key)
            try:
                return format(self.values[key], spec)
            except (ValueError, TypeError):
                return str(self.values[key])
        if name.startswith("cite"):
            keys = [k.strip() for k in text.split(",") if k.strip()]
            self.cited.extend(k for k in keys if k not in self.cited)
            found = [self.bib.get(k, (k, "", "")) for k in keys]
            if name in ("cite:t", "cite:ts"):
                return ", ".join(f"{a} ({y})" if y else a for a, y, _ in found)
            return "(" + "; ".join(f"{a} {y}".strip() for a, y, _ in found) + ")"
        if name in ("ref", "numref"):
            kind, number = self.targets.get(label, ("", label))
            if title:
                return title.replace("%s", number).replace("{number}", number)
            return f'"{number}"' if kind == "Section" else f"{kind} {number}".strip()
        if name == "doc":
            stem = Path(label).stem
            return f"[{title or self.titles[stem]}]({stem}.ipynb)" if stem in self.titles else title or stem
        return f"${text}$" if name == "math" else title or text

    def directive(self, m: re.Match[str]) -> str:
        [(name, arg, options, body)] = _directives(m[0])
        if name in _EXERCISES:
            heading = f"### Exercise {self._number('Exercise', options.get('label', ''))}"
            return heading + (f": {arg}" if arg else "") + (f"\n\n{body}" if body else "")
        if name in ("solution", "solution-start"):
            if not self.solutions:
                return ""
            number = self.targets.get(arg, ("", ""))[1]
            heading = f"### Solution to Exercise {number}" if number else "### Solution"
            return heading + (f"\n\n{body}" if body else "")
        if name in ("exercise-end", "solution-end"):
            return ""
        if name in _FIGURES:
            number = self._number("Figure", options.get("name", ""))
            caption = " ".join(body.split())
            return f"*Figure {number} appears when you run the code above.* {caption}".strip()
        title = arg if name == "admonition" and arg else name.replace("-", " ").capitalize()
        return "\n".join([f"> **{title}.**", ">", *(f"> {line}".rstrip() for line in body.splitlines())])

    def note(self, provenance: str) -> str:
        """The blockquote under the title: what the handout is and where its numbers come from."""
        shown = PLACEHOLDER.format(key="name")
        if self.values is None:
            numbers = f"Numbers the code computes show in the text as {shown}; the book prints their values."
        else:
            numbers = (f"Numbers quoted in the text are those of the book's last build{provenance}; "
                       "running the notebook recomputes them, and other parameters change them."
                       + (f" Those that build lacks show as {shown}." if self.missing else ""))
        return (f"> **Handout for chapter {self.number}** "
                f"({'solutions included' if self.solutions else 'solutions removed'}). {numbers} "
                "Figures appear when their code runs. Cells that call `note(...)` store numbers for "
                "the book's text: run them like the others.")


def write_handouts(notebooks_dir: Path | str, out_dir: Path | str, *, solutions: bool = False,
                   glue_from: Path | str | None = None) -> list[Path]:
    """Write one handout notebook per chapter notebook (``NN_*.ipynb``) of ``notebooks_dir``.

    Parameters
    ----------
    notebooks_dir : path
        The chapter notebooks (sources, without outputs).
    out_dir : path
        Where the handouts go (created); each keeps its chapter's file name.
    solutions : bool
        Keep the solutions (the teacher's copy). By default every solution is removed: its
        Markdown and, for gated solutions, the code cells inside it.
    glue_from : path, optional
        A folder of executed chapters (e.g. ``book/_build/executed``). Glued numbers in the
        text are then the values of that build, and the handout says so at the top;
        without it (or for a number that build lacks) the text shows a placeholder.

    Returns
    -------
    list of pathlib.Path
        The handouts, in chapter order.

    Raises
    ------
    FileNotFoundError
        If ``notebooks_dir`` holds no chapter notebook.

    Notes
    -----
    Exercises become ``### Exercise N.k`` (N from the file name, k in chapter order),
    solutions ``### Solution to Exercise N.k``, ``{glue:figure}`` an italic line with the
    caption, ``{numref}``/``{ref}`` the figure's or exercise's number, ``{doc}`` a link to
    the sibling handout, ``{cite}`` author and year (from the ``.bib`` files in
    ``notebooks_dir`` or ``../book``; the chapter's works are listed at the end), other
    directives a blockquote. A note under the title says where the numbers come from.
    Outputs are cleared; every code cell stays, including the ``parameters`` cell.

    Examples
    --------
    >>> import nbformat, tempfile
    >>> from pathlib import Path
    >>> src, out = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
    >>> md = nbformat.v4.new_markdown_cell
    >>> nb = nbformat.v4.new_notebook(cells=[
    ...     md("# Toy"), md("The rate is {glue:text}`rate:.1%`."),
    ...     md("```{exercise-start}\\n:label: ex-toy\\n```\\n\\nDouble it.\\n\\n```{exercise-end}\\n```"),
    ...     md("```{solution-start} ex-toy\\n:class: dropdown\\n```"),
    ...     nbformat.v4.new_code_cell("answer = 2 * rate"),
    ...     md("```{solution-end}\\n```")])
    >>> nbformat.write(nb, src / "01_toy.ipynb")
    >>> [path] = write_handouts(src, out)
    >>> print(*[c.source for c in nbformat.read(path, as_version=4).cells], sep="\\n--\\n")
    ... # doctest: +ELLIPSIS
    # Toy
    <BLANKLINE>
    > **Handout for chapter 1** (solutions removed). Numbers the code computes show in the text as ...
    --
    The rate is [computed: `rate`].
    --
    ### Exercise 1.1
    <BLANKLINE>
    Double it.
    >>> [teacher] = write_handouts(src, out, solutions=True)
    >>> [c.source for c in nbformat.read(teacher, as_version=4).cells[3:]]
    ['### Solution to Exercise 1.1', 'answer = 2 * rate']
    """
    import nbformat

    notebooks_dir, out_dir = Path(notebooks_dir), Path(out_dir)
    sources = sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if not sources:
        raise FileNotFoundError(f"Expected chapter notebooks (NN_*.ipynb) in {notebooks_dir}, but found none.")
    originals = {src.stem: nbformat.read(src, as_version=4) for src in sources}
    targets = {k: v for stem, nb in originals.items() for k, v in _targets(nb, int(stem[:2])).items()}
    titles = {stem: next((line[2:].strip() for c in nb.cells if c.cell_type == "markdown"
                          for line in c.source.splitlines() if line.startswith("# ")), stem)
              for stem, nb in originals.items()}
    bib = _bibliography(notebooks_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sources:
        target = out_dir / src.name
        shutil.copyfile(src, target)
        if not solutions:
            strip_gated_solutions(target)
        nb = nbformat.read(target, as_version=4)
        executed = Path(glue_from) / src.name if glue_from is not None else None
        values = read_glue(executed) if executed and executed.exists() else None
        chapter = _Chapter(int(src.stem[:2]), solutions, values, targets, titles, bib)
        figures = [options["name"] for c in nb.cells if c.cell_type == "markdown"
                   for name, _, options, _ in _directives(c.source) if name in _FIGURES and "name" in options]
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = chapter.markdown(cell.source)
                continue
            cell.outputs, cell.execution_count = [], None
            for key in ("execution", "papermill"):
                cell.metadata.pop(key, None)
            for name in figures:  # a glued figure is not displayed where it is glued: show it here
                cell.source = re.sub(rf"(glue\(\s*['\"]{re.escape(name)}['\"](?:(?!glue\().)*?"
                                     r"display\s*=\s*)False", r"\1True", cell.source, flags=re.S)
        nb.cells = [c for c in nb.cells if c.cell_type != "markdown" or c.source]
        note = chapter.note(_provenance(executed) if values is not None else "")
        first = nb.cells[0]
        if first.cell_type == "markdown" and first.source.startswith("# "):
            heading, _, rest = first.source.partition("\n")
            first.source = f"{heading}\n\n{note}\n\n{rest.strip()}".strip()
        else:
            nb.cells.insert(0, nbformat.v4.new_markdown_cell(note, id="handout-note"))
        refs = [f"- {bib[k][0]} ({bib[k][1]}). *{bib[k][2]}*" for k in chapter.cited if k in bib]
        if refs:
            references = "## References\n\n" + "\n".join(refs)
            nb.cells.append(nbformat.v4.new_markdown_cell(references, id="handout-references"))
        nbformat.validate(nb)
        nbformat.write(nb, target)
        written.append(target)
    return written
