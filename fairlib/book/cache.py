"""Reuse a chapter's executed copy when nothing that decides its outputs changed.

A chapter's key hashes its code cells (source and tags), the order and ids of all its
cells, the resolved parameters, the profile, the source of the installed ``fairlib``
package and the versions of Python and torch. Markdown text is left out of the key: on a
hit the cached executed notebook gets the chapter's current Markdown, so a prose edit
rebuilds without executing anything.
"""

from __future__ import annotations

import hashlib
import json
import platform
from functools import lru_cache
from pathlib import Path
from typing import Any

KEY_SUFFIX = ".key"


@lru_cache(maxsize=1)
def library_hash() -> str:
    """Hash of every ``.py`` file of the installed fairlib package."""
    import fairlib

    root = Path(fairlib.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def notebook_key(source: Path, parameters: dict[str, Any], profile: str) -> str | None:
    """The cache key of executing ``source`` with ``parameters`` under ``profile``; None
    (never cached) when its cells lack distinct ids to carry Markdown edits over."""
    import nbformat
    import torch

    nb = nbformat.read(source, as_version=4)
    ids = [c.get("id") for c in nb.cells]
    if None in ids or len(set(ids)) != len(ids):
        return None
    cells = [(c.cell_type, c.get("id"), c.source if c.cell_type == "code" else "",
              sorted(c.metadata.get("tags", []))) for c in nb.cells]
    blob = json.dumps({"cells": cells, "parameters": parameters, "profile": profile,
                       "fairlib": library_hash(), "python": platform.python_version(),
                       "torch": torch.__version__}, sort_keys=True, default=repr)
    return hashlib.sha256(blob.encode()).hexdigest()


def _meta(stored: Path) -> dict[str, Any]:
    try:
        meta = json.loads(stored.read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def cached_copy(cache: Path | None, source: Path, key: str) -> tuple[Path, dict[str, Any]] | None:
    """The cached executed copy of ``source`` and its record (``seconds``, ``executed``: when)
    when its stored key is ``key``."""
    if cache is None:
        return None
    executed, stored = cache / source.name, cache / (source.stem + KEY_SUFFIX)
    if executed.is_file() and stored.is_file():
        meta = _meta(stored)
        if meta.get("key") == key:
            return executed, meta
    return None


def refresh_markdown(executed: Path, source: Path, output: Path) -> None:
    """Write ``executed`` to ``output`` with every Markdown cell taken from ``source``
    (matched by cell id; the key guarantees both have the same cells)."""
    import nbformat

    text = {c.get("id"): c.source for c in nbformat.read(source, as_version=4).cells
            if c.cell_type == "markdown"}
    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.get("id") in text:
            cell.source = text[cell.get("id")]
    output.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, output)


def store(cache: Path, executed: Path, source: Path, key: str, *, seconds: float, when: str) -> None:
    """Keep ``executed`` (the copy before any student stripping) under ``cache``, with the
    key, the execution's wall time and when it ran."""
    import shutil

    cache.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, cache / source.name)
    record = {"key": key, "seconds": seconds, "executed": when}
    (cache / (source.stem + KEY_SUFFIX)).write_text(json.dumps(record) + "\n")
