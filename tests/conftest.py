"""Shared fixtures: one smoke-profile build of the real book per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smoke_build(tmp_path_factory):
    """``fairlib build --profile smoke`` of the real book into a temporary folder.

    Executes every chapter notebook under the smoke profile through the same runner
    as ``make book``; the HTML is in ``<result>.html``.
    """
    from fairlib.book import build_book

    out = tmp_path_factory.mktemp("smoke-book") / "_build"
    return build_book(ROOT / "book", ROOT / "notebooks", profile="smoke", output=out, log=lambda *_: None)


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray with 2 CPUs, started once for every test that asks for it."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
