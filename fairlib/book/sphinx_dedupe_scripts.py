"""Sphinx extension: drop repeated ``<script>`` entries from every HTML page.

With Sphinx 7.4, inline scripts that sphinx-togglebutton and sphinx-thebe register
after the builder starts are emitted twice; the second ``const THEBE_JS_URL`` is a
JavaScript SyntaxError in the reader's console. Listed in ``book/_config.yml``.
"""

from __future__ import annotations

from typing import Any


def _key(script: Any) -> tuple[str, str]:
    attributes = getattr(script, "attributes", {}) or {}
    # An inline script is registered once with filename None and once with "".
    return str(getattr(script, "filename", script) or ""), repr(sorted(attributes.items()))


def dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Keep the first of each identical script in the page context."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app: Any) -> dict[str, Any]:
    """Register the page hook (late, after the theme added its scripts)."""
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
