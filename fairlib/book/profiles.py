"""Parameter profiles: per-notebook overrides kept in one YAML file next to the notebooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROFILES = ("teach", "smoke", "full")
PROFILE_FILE = "profiles.yml"


class ParameterError(ValueError):
    """A profile or ``-p`` override names a parameter the notebook does not declare."""


def load_profile(notebooks_dir: Path, profile: str) -> dict[str, dict[str, Any]]:
    """Overrides per notebook stem for ``profile`` (``teach`` means none)."""
    if profile not in PROFILES:
        raise ValueError(
            f"Expected `profile` to be one of {', '.join(map(repr, PROFILES))}, but got {profile!r}."
        )
    if profile == "teach":
        return {}
    path = Path(notebooks_dir) / PROFILE_FILE
    if not path.exists():
        return {}
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    section = data.get(profile) or {}
    if not isinstance(section, dict):
        raise ValueError(f"Expected `{profile}` in {path} to map notebook names to parameters.")
    return {str(k): dict(v or {}) for k, v in section.items()}


def declared_parameters(notebook: Path) -> dict[str, dict[str, Any]]:
    """The parameters a notebook's ``parameters`` cell declares (papermill's inspection)."""
    import papermill as pm

    return pm.inspect_notebook(str(notebook))


def check_parameters(notebook: Path, overrides: dict[str, Any]) -> None:
    """Refuse overrides the notebook does not declare (a misspelt name would go unnoticed)."""
    declared = declared_parameters(notebook)
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise ParameterError(
            f"Expected parameters of {notebook.name} ({', '.join(sorted(declared)) or 'none'}), "
            f"but got unknown {', '.join(map(repr, unknown))}."
        )
