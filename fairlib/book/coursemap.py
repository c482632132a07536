"""The chapter-dependency diagram of the intro's course map, drawn from the map itself.

The course map in ``book/intro.md`` is a Markdown table whose *Prerequisites* column names
earlier chapters ("chapter 2; small neural networks", "chapters 2-4", "chapters 2 and 4").
:func:`read_course_map` parses it, :func:`dependency_svg` draws the chapters as boxes in
rows (a chapter sits one row below its deepest prerequisite) with an arrow from each
prerequisite, leaving out arrows that other arrows already imply. As a Sphinx extension
(listed in ``book/_config.yml``) the module writes ``_static/course-dependencies.svg``
before every build, so the table is the one source of both.
"""

from __future__ import annotations

import html
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Where the diagram goes, relative to the book's folder.
DIAGRAM = Path("_static") / "course-dependencies.svg"
#: Fill colour of each part's boxes (light tints of the book's colour-blind cycle).
PART_COLOURS = ("#cfe3f2", "#fbe3c0", "#c7eadf", "#f5d2bf", "#f1dcee", "#eadfd2")
_BOX_W, _BOX_H, _GAP_X, _GAP_Y, _MARGIN, _WIDTH = 150, 54, 14, 36, 8, 660


@dataclass(frozen=True)
class Chapter:
    """One row of the course map."""

    number: int
    title: str
    part: str
    prerequisites: frozenset[int] = field(default_factory=frozenset)


def parse_prerequisites(text: str) -> frozenset[int]:
    """Chapter numbers named in a *Prerequisites* cell.

    Examples
    --------
    >>> from fairlib.book.coursemap import parse_prerequisites
    >>> sorted(parse_prerequisites("chapters 2-3; automatic differentiation"))
    [2, 3]
    >>> sorted(parse_prerequisites("chapters 2 and 4")), sorted(parse_prerequisites("Python, pandas"))
    ([2, 4], [])
    >>> sorted(parse_prerequisites("chapter 1; causal graphs")), sorted(parse_prerequisites("chapters 1, 3 to 5"))
    ([1], [1, 3, 4, 5])
    """
    found: set[int] = set()
    for match in re.finditer(r"chapters?\s+((?:\d+(?:\s*(?:-|–|to)\s*\d+)?(?:\s*(?:,|and)\s*)?)+)", text, re.I):
        for part in re.split(r"\s*(?:,|and)\s*", match.group(1).strip()):
            bounds = [int(n) for n in re.findall(r"\d+", part)]
            if len(bounds) == 2:
                found.update(range(bounds[0], bounds[1] + 1))
            elif bounds:
                found.add(bounds[0])
    return frozenset(found)


def read_course_map(intro: str | Path) -> list[Chapter]:
    """The chapters of the course-map table in ``intro`` (a path or the Markdown itself).

    The table needs the columns *Part*, *Chapter* ("N. Title") and *Prerequisites*.

    Raises
    ------
    ValueError
        If there is no such table, or a chapter names itself or a later chapter.
    """
    text = Path(intro).read_text() if isinstance(intro, Path) else intro
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.lstrip().startswith("|")]
    header = next((r for r in rows if {"Part", "Chapter", "Prerequisites"} <= set(r)), None)
    if header is None:
        raise ValueError("Expected a course-map table with the columns Part, Chapter and Prerequisites, "
                         "but found none.")
    col = {name: header.index(name) for name in ("Part", "Chapter", "Prerequisites")}
    chapters = []
    for row in rows[rows.index(header) + 1:]:
        match = re.match(r"(\d+)\.\s*(.+)", row[col["Chapter"]]) if len(row) == len(header) else None
        if match:
            number = int(match.group(1))
            needs = parse_prerequisites(row[col["Prerequisites"]])
            if any(n >= number for n in needs):
                raise ValueError(f"Expected chapter {number}'s prerequisites to be earlier chapters, "
                                 f"but got {sorted(needs)}.")
            chapters.append(Chapter(number, match.group(2).strip(), row[col["Part"]], needs))
    if not chapters:
        raise ValueError("Expected chapter rows ('N. Title') in the course-map table, but found none.")
    return chapters


def _closure(chapters: list[Chapter]) -> dict[int, set[int]]:
    """Every chapter's prerequisites, direct or through others."""
    direct = {c.number: set(c.prerequisites) for c in chapters}
    done: dict[int, set[int]] = {}
    for c in sorted(direct):
        done[c] = set(direct[c])
        for p in direct[c]:
            done[c] |= done.get(p, set())
    return done


def arrows(chapters: list[Chapter]) -> list[tuple[int, int]]:
    """(prerequisite, chapter) pairs of the diagram: the prerequisites without those that
    another prerequisite already needs (a transitive reduction).

    Examples
    --------
    >>> from fairlib.book.coursemap import Chapter, arrows
    >>> arrows([Chapter(1, "a", "p"), Chapter(2, "b", "p", frozenset({1})),
    ...         Chapter(3, "c", "p", frozenset({1, 2}))])
    [(1, 2), (2, 3)]
    """
    closure = _closure(chapters)
    return [(p, c.number) for c in chapters for p in sorted(c.prerequisites)
            if not any(p in closure.get(q, set()) for q in c.prerequisites if q != p)]


def _rows(chapters: list[Chapter]) -> list[list[int]]:
    depth: dict[int, int] = {}
    for c in sorted(chapters, key=lambda c: c.number):
        depth[c.number] = 1 + max((depth.get(p, 0) for p in c.prerequisites), default=-1)
    rows = [sorted(n for n, d in depth.items() if d == level) for level in range(max(depth.values()) + 1)]
    return [r for r in rows if r]


def dependency_svg(chapters: list[Chapter]) -> str:
    """The diagram as a standalone SVG document (no scripts, fonts or links to fetch).

    Examples
    --------
    >>> from fairlib.book.coursemap import Chapter, dependency_svg
    >>> svg = dependency_svg([Chapter(1, "Basics", "A"), Chapter(2, "More", "A", frozenset({1}))])
    >>> svg.startswith("<svg") and svg.count('class="chapter"') == 2 and svg.count('class="arrow"') == 1
    True
    """
    rows = _rows(chapters)
    by_number = {c.number: c for c in chapters}
    parts = list(dict.fromkeys(c.part for c in chapters))
    colour = {p: PART_COLOURS[i % len(PART_COLOURS)] for i, p in enumerate(parts)}
    pos: dict[int, tuple[float, float]] = {}
    for level, row in enumerate(rows):
        span = len(row) * _BOX_W + (len(row) - 1) * _GAP_X
        for i, n in enumerate(row):
            pos[n] = ((_WIDTH - span) / 2 + i * (_BOX_W + _GAP_X), _MARGIN + level * (_BOX_H + _GAP_Y))
    legend_y = _MARGIN + len(rows) * (_BOX_H + _GAP_Y) - _GAP_Y + 22
    per_line = 3
    height = legend_y + 20 * ((len(parts) + per_line - 1) // per_line) + _MARGIN
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height:.0f}" '
           f'viewBox="0 0 {_WIDTH} {height:.0f}" role="img" font-family="sans-serif">',
           "<title>Chapter dependencies</title>",
           "<desc>An arrow from one chapter to another: read the first before the second.</desc>",
           '<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/>'
           "</marker></defs>"]
    for a, b in arrows(chapters):
        (xa, ya), (xb, yb) = pos[a], pos[b]
        x1, y1, x2, y2 = xa + _BOX_W / 2, ya + _BOX_H, xb + _BOX_W / 2, yb
        mid = (y1 + y2) / 2
        out.append(f'<path class="arrow" d="M {x1:.1f} {y1:.1f} C {x1:.1f} {mid:.1f}, {x2:.1f} {mid:.1f}, '
                   f'{x2:.1f} {y2 - 1:.1f}" fill="none" stroke="#555" stroke-width="1.3" '
                   f'marker-end="url(#head)"><title>chapter {a} before chapter {b}</title></path>')
    for n, (x, y) in pos.items():
        c = by_number[n]
        lines = textwrap.wrap(c.title, 20)[:2]
        out.append(f'<g class="chapter"><rect x="{x:.1f}" y="{y:.1f}" width="{_BOX_W}" height="{_BOX_H}" '
                   f'rx="6" fill="{colour[c.part]}" stroke="#666"/>')
        out.append(f'<text x="{x + _BOX_W / 2:.1f}" y="{y + 16:.1f}" text-anchor="middle" font-size="11" '
                   f'font-weight="bold" fill="#222">Chapter {n}</text>')
        for i, line in enumerate(lines):
            out.append(f'<text x="{x + _BOX_W / 2:.1f}" y="{y + 32 + 14 * i:.1f}" text-anchor="middle" '
                       f'font-size="12" fill="#222">{html.escape(line)}</text>')
        out.append("</g>")
    for i, p in enumerate(parts):
        x = _MARGIN + 8 + (i % per_line) * 215
        y = legend_y + 20 * (i // per_line)
        out.append(f'<rect x="{x}" y="{y - 11}" width="14" height="14" rx="3" fill="{colour[p]}" stroke="#666"/>'
                   f'<text x="{x + 20}" y="{y}" font-size="12" fill="#222">{html.escape(p)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_diagram(book_dir: str | Path) -> Path | None:
    """Write :data:`DIAGRAM` under ``book_dir`` from its ``intro.md`` (only when it changed);
    None, and nothing written, for a book whose intro has no course-map table."""
    book_dir = Path(book_dir)
    intro = book_dir / "intro.md"
    text = intro.read_text() if intro.exists() else ""
    if not re.search(r"^\s*\|.*\bPrerequisites\b.*\|", text, re.M):
        return None
    target = book_dir / DIAGRAM
    svg = dependency_svg(read_course_map(text))
    if not target.exists() or target.read_text() != svg:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(svg)
    return target


def setup(app: Any) -> dict[str, Any]:
    """Sphinx extension: draw the diagram from the intro before the sources are read."""
    app.connect("builder-inited", lambda app: write_diagram(app.srcdir))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
