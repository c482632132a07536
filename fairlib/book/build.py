"""Build the book: execute every chapter in ``_toc.yml``, then run Jupyter Book.

Everything happens in a staging folder next to the output; the output folder is
replaced only after every notebook ran and ``jupyter-book build`` (execution off,
warnings as errors) succeeded, so a failure never leaves a half-built book in place
of the last good one.

Pages are rebuilt incrementally too: the staging build starts from a copy of the last
good build's Sphinx state, and Sphinx reads and writes again only the pages whose staged
files changed (compared by content; every page when a heading or target changed: see
:func:`_reuse_pages`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import cache
from .execute import Execution, NotebookError, _used_parameters, book_style, run_notebook
from .profiles import load_profile

STUDENT_CONFIG = {
    # sphinx-exercise drops every solution; the page sources and the .ipynb download
    # button would otherwise still carry the solution code.
    "hide_solutions": True,
    "html_copy_source": False,
    "html_show_sourcelink": False,
}


class BuildError(RuntimeError):
    """The book could not be built; the message says which step and why."""


@dataclass
class BuildResult:
    """Where the HTML went and what was executed."""

    html: Path
    executions: list[Execution] = field(default_factory=list)
    seconds: float = 0.0


def toc_files(book_dir: Path) -> list[str]:
    """Every ``file`` entry of ``_toc.yml`` (root first), without extension."""
    import yaml

    toc = yaml.safe_load((book_dir / "_toc.yml").read_text()) or {}
    files = [toc["root"]] if "root" in toc else []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(str(node["file"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return files


def chapter_notebooks(book_dir: Path, notebooks_dir: Path) -> list[tuple[str, Path]]:
    """(toc entry, source notebook) for every toc entry that names a notebook in ``notebooks_dir``."""
    found = []
    for entry in toc_files(book_dir):
        source = notebooks_dir / f"{Path(entry).name}.ipynb"
        if source.exists():
            found.append((entry, source))
        elif not any((book_dir / f"{entry}{ext}").exists() for ext in (".md", ".ipynb")):
            raise BuildError(f"_toc.yml lists {entry!r}, but neither {source} nor a page in {book_dir} exists.")
    return found


def _stage_sources(book_dir: Path, stage: Path) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n.startswith(("_build", ".")) or n == "chapters"}

    shutil.copytree(book_dir, stage, ignore=ignore)


PAGES = "pages.json"  # content hash of every staged file, kept with the build
#: what Sphinx needs from the last build to skip unchanged pages
_SPHINX_STATE = (".doctrees", "jupyter_execute")
# Lines another page can show or point to: headings (navigation, previous/next
# titles), targets "(label)=" and named figures or equations; and the citations, which
# the bibliography page lists.
_OUTLINE = re.compile(r"^\s*(#{1,6}\s|\([^)]+\)=\s*$|:(name|label):)")
_CITE = re.compile(r"\{cite[^}]*\}`[^`]*`")
STATUS = "status.md"  # written by every build (status_page)


def _outline(path: Path) -> str:
    """Hash of the lines of a page that other pages show or link to."""
    text = path.read_text(errors="replace")
    if path.suffix == ".ipynb":
        try:
            cells = json.loads(text).get("cells", [])
        except ValueError:
            return ""
        text = "\n".join("".join(c.get("source", "")) for c in cells if c.get("cell_type") == "markdown")
    lines = [line.strip() for line in text.splitlines() if _OUTLINE.match(line)]
    return hashlib.sha256("\n".join(lines + sorted(set(_CITE.findall(text)))).encode()).hexdigest()


def _pages(src: Path, edition: str) -> dict[str, Any]:
    files = {path.relative_to(src).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
             for path in sorted(src.rglob("*")) if path.is_file()}
    outlines = {rel: _outline(src / rel) for rel in files if rel.endswith((".md", ".ipynb"))}
    return {"edition": edition, "files": files, "outlines": outlines}


def _reuse_pages(previous: Path, src: Path, built: Path, edition: str) -> dict[str, Any]:
    """Let Sphinx read and write again only the pages that changed since the build in
    ``previous``.

    Sphinx decides what to redo by modification times, which a fresh staging copy does
    not preserve. So every staged file gets a time by content instead: a file whose hash
    matches the last build's gets an old time (unchanged for Sphinx), any other file the
    current time; and the last build's environment, doctrees and notebook outputs are
    copied into ``built`` to start from. Its HTML is copied too (only the changed pages
    are written) when every changed file is a chapter notebook (or the status page) whose
    headings, targets, names and citations (:func:`_outline`) are as before; otherwise
    (any other page, such as the glossary, a toc, a bibliography or a static file)
    every page is written again, so that navigation and cross-references are current
    everywhere. Without a usable last
    build of the same edition (``"student"`` or ``"teacher"``: a student edition never
    starts from pages that had solutions) nothing is copied and Sphinx builds everything.
    Returns what to keep with this build.
    """
    pages = _pages(src, edition)
    try:
        last = json.loads((previous / PAGES).read_text())
        last_files, last_outlines = dict(last["files"]), dict(last["outlines"])
    except (OSError, ValueError, KeyError, TypeError):
        return pages
    if last.get("edition") != edition or not (previous / _SPHINX_STATE[0]).is_dir():
        return pages
    files, outlines = pages["files"], pages["outlines"]
    changed = {rel for rel in files.keys() | last_files.keys() if files.get(rel) != last_files.get(rel)}
    same_outline = all((rel.endswith(".ipynb") or rel == STATUS) and rel in outlines
                       and outlines[rel] == last_outlines.get(rel) for rel in changed)
    built.mkdir(parents=True, exist_ok=True)
    for name in _SPHINX_STATE + (("html",) if same_outline else ()):
        if (previous / name).is_dir():
            shutil.copytree(previous / name, built / name, symlinks=True)
    now, long_ago = time.time(), 946_684_800.0  # 2000-01-01: before any build read it
    for rel, digest in files.items():
        stamp = long_ago if last_files.get(rel) == digest else now
        os.utime(src / rel, (stamp, stamp))
    return pages


def _student_config(stage: Path) -> Path:
    import yaml

    config = yaml.safe_load((stage / "_config.yml").read_text()) or {}
    sphinx = config.setdefault("sphinx", {})
    sphinx.setdefault("config", {}).update(STUDENT_CONFIG)
    sphinx["config"].setdefault("html_theme_options", {})["use_download_button"] = False
    config.setdefault("html", {})["use_download_button"] = False
    config["title"] = f"{config.get('title', 'Book')} (student edition)"
    path = stage / "_config_student.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def strip_gated_solutions(notebook: Path) -> int:
    """Delete every cell of a gated solution (``{solution-start}`` .. ``{solution-end}``)
    from an executed notebook; returns how many cells were removed.

    For the student edition. Besides keeping solution code out of every output, this
    avoids a sphinx-exercise bug: with ``hide_solutions`` it drops the start node of a
    gated solution but still emits the end node, which the HTML writer cannot render.
    """
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    kept, inside = [], False
    for cell in nb.cells:
        text = cell.source if cell.cell_type == "markdown" else ""
        inside = inside or "{solution-start}" in text
        if not inside:
            kept.append(cell)
        if "{solution-end}" in text:
            inside = False
    removed = len(nb.cells) - len(kept)
    nb.cells = kept
    nbformat.write(nb, notebook)
    return removed


def _jupyter_book() -> list[str]:
    exe = Path(sys.executable).with_name("jupyter-book")
    return [str(exe)] if exe.exists() else [shutil.which("jupyter-book") or "jupyter-book"]


def _replace(new: Path, target: Path) -> None:
    """Swap ``new`` in at ``target``, keeping the old one until the move succeeded."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def status_page(chapters: list[tuple[str, Path]], results: list[Execution], profile: str,
                student: bool) -> str:
    """The build-status page: every chapter's profile, wall time and when it was executed."""
    rows = []
    for (entry, source), r in zip(chapters, results, strict=True):
        how = "reused (unchanged since)" if r.cached else "executed"
        rows.append(f"| {{doc}}`{entry}` | `{source.name}` | {how} {r.executed} | {r.seconds:.0f} s |")
    total = sum(r.seconds for r in results)
    edition = "student edition" if student else "edition with solutions"
    return "\n".join([
        "# Build status", "",
        f"The last successful build of this book ({edition}) ran every chapter under the `{profile}` "
        "profile. A chapter is executed again only when its code, its parameters or the library "
        "changed; otherwise its outputs from the run listed here are reused.", "",
        "| Chapter | Notebook | Outputs from | Wall time |", "|---|---|---|---|", *rows, "",
        f"Sum of the chapters' wall times: {total:.0f} s.", ""])


def build_book(
    book_dir: Path | str = "book",
    notebooks_dir: Path | str = "notebooks",
    *,
    profile: str = "teach",
    jobs: int = 1,
    student: bool = False,
    output: Path | str | None = None,
    force: bool = False,
    log: Any = print,
) -> BuildResult:
    """Execute every chapter listed in the toc under ``profile`` and build the HTML.

    Parameters
    ----------
    book_dir, notebooks_dir : path
        The Jupyter Book sources and the chapter notebooks.
    profile : {"teach", "smoke", "full"}
        Parameter profile (``teach`` = each notebook's defaults).
    jobs : int
        Notebooks executed at once.
    student : bool
        Build the student edition (solutions and page sources removed).
    output : path, optional
        Where the build goes; default ``book/_build`` (``book/_build_student``).
        The HTML is in ``<output>/html``, executed chapters in ``<output>/executed``.
    force : bool
        Execute every chapter and build every page. By default a chapter whose code, cell layout, parameters,
        profile, fairlib source, Python and torch versions match the last successful build
        (the student edition reads the cache of the edition with solutions, and writes none,
        since the cached copies hold the solutions) is not executed again: its executed copy is reused with the
        chapter's current Markdown (see :mod:`fairlib.book.cache`).

    Raises
    ------
    BuildError
        Naming the failed notebooks (cell and error) or the failed build step.
    """
    start = time.perf_counter()
    book_dir, notebooks_dir = Path(book_dir).resolve(), Path(notebooks_dir).resolve()
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"Expected `jobs` to be a positive integer, but got {jobs!r}.")
    out = Path(output) if output else book_dir / ("_build_student" if student else "_build")
    out = out.resolve()
    overrides = load_profile(notebooks_dir, profile)
    chapters = chapter_notebooks(book_dir, notebooks_dir)
    unknown = sorted(set(overrides) - {src.stem for _, src in chapters})
    if unknown:
        raise BuildError(f"profile {profile!r} names notebooks that are not in _toc.yml: {unknown}")

    staging = out.with_name(out.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    src = staging / "src"
    _stage_sources(book_dir, src)

    caches = [out / "cache", book_dir / "_build" / "cache"]
    keys: dict[str, str | None] = {}

    def execute(item: tuple[str, Path]) -> Execution | NotebookError:
        entry, source = item
        target = src / f"{entry}.ipynb"
        params = overrides.get(source.stem, {})
        used = _used_parameters(source, params)
        key = keys[entry] = cache.notebook_key(source, used, profile)
        hits = [] if force or key is None else [c for c in (cache.cached_copy(d, source, key) for d in caches) if c]
        if hits:
            copy, meta = hits[0]
            from .constraints import check_constraints
            from .profiles import check_parameters

            check_parameters(source, params)
            check_constraints(source, used)
            cache.refresh_markdown(copy, source, target)
            log(f"  {source.name}: code, parameters and library unchanged; reused its last executed copy")
            return Execution(source, target, used, float(meta.get("seconds", float("nan"))), cached=True,
                             executed=str(meta.get("executed", "")))
        log(f"executing {source.name} (profile {profile})")
        try:
            result = run_notebook(source, target, params, profile=profile, progress=jobs == 1)
        except NotebookError as err:
            return err
        log(f"  {source.name}: done in {result.seconds:.1f} s")
        return result

    # Kernels inherit the environment: share the cores between notebooks run at once.
    threads_set = jobs > 1 and "OMP_NUM_THREADS" not in os.environ
    if threads_set:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    try:
        with book_style(), ThreadPoolExecutor(max_workers=jobs) as pool:  # one rc for all kernels
            results = list(pool.map(execute, chapters))
    finally:
        if threads_set:
            del os.environ["OMP_NUM_THREADS"]
    failures = [r for r in results if isinstance(r, NotebookError)]
    if failures:
        raise BuildError(
            f"{len(failures)} notebook(s) failed; the book was not built and {out} is unchanged.\n"
            + "\n".join(f"  {f}" for f in failures)
        )
    new_cache = staging / "cache"
    for (entry, source), result in zip(chapters, results, strict=True):
        # The cache holds full copies (solutions included): never inside a student edition,
        # which reads the teacher's cache instead.
        if keys.get(entry) and not student:
            cache.store(new_cache, src / f"{entry}.ipynb", source, keys[entry], seconds=result.seconds,
                        when=result.executed)
    if (src / STATUS).exists():
        (src / STATUS).write_text(status_page(chapters, results, profile, student))
    cmd = _jupyter_book() + ["build", str(src), "--path-output", str(staging / "out"),
                             "--warningiserror", "--nitpick", "--keep-going"]
    if student:
        cmd += ["--config", str(_student_config(src))]
        for entry, _ in chapters:
            strip_gated_solutions(src / f"{entry}.ipynb")
    built = staging / "out" / "_build"
    edition = "student" if student else "teacher"
    pages = _pages(src, edition) if force else _reuse_pages(out, src, built, edition)
    log("building the HTML: " + " ".join(cmd[1:]))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if "updating environment" in line:  # e.g. "0 added, 2 changed, 0 removed"
            log("  pages read by sphinx: " + re.sub(r"\x1b\[[0-9;]*m", "", line).split(":", 1)[-1].strip())
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        problems = [line for line in lines if "WARNING" in line or "ERROR" in line][:30]
        detail = "\n".join(problems or lines[-30:])
        raise BuildError(f"jupyter-book build failed (warnings are errors); {out} is unchanged.\n{detail}")
    (built / PAGES).write_text(json.dumps(pages, indent=0, sort_keys=True) + "\n")
    if not student:  # the student edition ships no notebooks (they would carry solutions)
        executed = built / "executed"
        executed.mkdir()
        for entry, source in chapters:
            shutil.copy2(src / f"{entry}.ipynb", executed / source.name)
    if new_cache.exists():
        new_cache.rename(built / "cache")
    _replace(built, out)
    shutil.rmtree(staging, ignore_errors=True)
    return BuildResult(out / "html", [r for r in results if isinstance(r, Execution)],
                       time.perf_counter() - start)
