"""The ``fairlib`` command turns every user error into one line on stderr and exit status 2.

Each case is refused before any notebook runs, so the table runs in well under a second.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from fairlib.book.cli import main


def _notebook(folder: Path, name: str = "01_tiny.ipynb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("n_boot: int = 10  # resamples")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("print(n_boot)")]
    path = folder / name
    nbformat.write(nb, path)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    notebooks = tmp_path / "notebooks"
    notebook = _notebook(notebooks)
    book = tmp_path / "book"
    book.mkdir()
    (tmp_path / "notes.txt").write_text("not a notebook\n")
    (tmp_path / "text.ipynb").write_text("hello\n")
    (tmp_path / "json.ipynb").write_text('{"a": 1}\n')
    return {"root": tmp_path, "notebooks": notebooks, "notebook": notebook, "book": book}


def _profiles(tree: dict[str, Path], text: str) -> None:
    (tree["notebooks"] / "profiles.yml").write_text(text)


# (case id, profiles.yml text or None, argv built from the tree, words the one line must hold)
CASES = [
    ("bad YAML in -p", None,
     lambda t: ["run", str(t["notebook"]), "-p", "n_boot", "[1, 2", "-o", str(t["root"] / "o.ipynb")],
     ["`-p n_boot`", "YAML", "'[1, 2'", "line 1"]),
    ("malformed profiles.yml", "smoke:\n  01_tiny: {n_boot: [1, 2\n",
     lambda t: ["run", str(t["notebook"]), "--profile", "smoke", "-o", str(t["root"] / "o.ipynb")],
     ["profiles.yml", "valid YAML", "line"]),
    ("malformed profiles.yml, teach profile", "smoke: [\n",
     lambda t: ["run", str(t["notebook"]), "-o", str(t["root"] / "o.ipynb")],
     ["profiles.yml", "valid YAML"]),
    ("profile entry not a mapping", "smoke: {tiny: 5}\n",
     lambda t: ["run", str(t["notebook"]), "--profile", "smoke", "-o", str(t["root"] / "o.ipynb")],
     ["`smoke.tiny`", "parameter names to values", "got 5"]),
    ("profile section not a mapping", "full: [1, 2]\n",
     lambda t: ["build", "--book", str(t["book"]), "--notebooks", str(t["notebooks"]), "--profile", "full"],
     ["`full`", "notebook names", "[1, 2]"]),
    ("profiles.yml not a mapping", "- smoke\n",
     lambda t: ["sweep", str(t["notebook"]), "--backend", "serial", "--out", str(t["root"] / "s")],
     ["profiles.yml", "profile names", "list"]),
    ("not a notebook (suffix)", None,
     lambda t: ["run", str(t["root"] / "notes.txt")],
     ["notebook file (.ipynb)", "notes.txt"]),
    ("not a notebook (text)", None,
     lambda t: ["run", str(t["root"] / "text.ipynb")],
     ["text.ipynb", "Jupyter notebook", "JSON"]),
    ("not a notebook (other JSON)", None,
     lambda t: ["sweep", str(t["root"] / "json.ipynb"), "--backend", "serial", "--out", str(t["root"] / "s")],
     ["json.ipynb", "Jupyter notebook"]),
    ("missing notebook", None,
     lambda t: ["run", str(t["root"] / "nope.ipynb")],
     ["nope.ipynb", "does not exist"]),
    ("--book missing", None,
     lambda t: ["build", "--book", str(t["root"] / "missing"), "--notebooks", str(t["notebooks"])],
     ["`--book`", "existing folder", "missing"]),
    ("--notebooks is a file", None,
     lambda t: ["build", "--book", str(t["book"]), "--notebooks", str(t["notebook"])],
     ["`--notebooks`", "existing folder", "(a file)"]),
    ("--jobs 0", None,
     lambda t: ["build", "--book", str(t["book"]), "--notebooks", str(t["notebooks"]), "--jobs", "0"],
     ["`--jobs`", "positive integer", "0"]),
    ("--jobs not an int", None,
     lambda t: ["build", "--jobs", "two"],
     ["--jobs", "invalid int value", "'two'"]),
    ("--workers 0", None,
     lambda t: ["sweep", str(t["notebook"]), "--workers", "0", "--out", str(t["root"] / "s")],
     ["`workers`"]),
    ("unknown profile", None,
     lambda t: ["run", str(t["notebook"]), "--profile", "fast"],
     ["--profile", "'fast'"]),
    ("-p device gpu", None,
     lambda t: ["run", str(t["notebook"]), "-p", "device", "gpu",
                "-o", str(t["root"] / "o.ipynb")],
     ["`-p device`", "'gpu'"]),
    ("-p device cuda:99", None,
     lambda t: ["run", str(t["notebook"]), "-p", "device", "cuda:99",
                "-o", str(t["root"] / "o.ipynb")],
     ["`-p device`", "CUDA"]),
    ("--grid device=cpu,cuda:99", None,
     lambda t: ["sweep", str(t["notebook"]), "--grid", "device=cpu,cuda:99", "--backend", "serial",
                "--out", str(t["root"] / "s")],
     ["`--grid device`", "CUDA"]),
    ("profile device cuda:99", "smoke:\n  01_tiny: {device: 'cuda:99'}\n",
     lambda t: ["run", str(t["notebook"]), "--profile", "smoke", "-o", str(t["root"] / "o.ipynb")],
     ["`--profile smoke device`", "CUDA"]),
    ("unknown command", None, lambda t: ["frobnicate"], ["invalid choice", "'frobnicate'"]),
    ("results of a missing folder", None,
     lambda t: ["results", str(t["root"] / "missing")],
     ["missing"]),
]


@pytest.mark.parametrize("profiles, argv, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_user_errors_are_one_line_and_exit_2(tree, capsys, profiles, argv, words):
    if profiles is not None:
        _profiles(tree, profiles)
    status = main(argv(tree))
    out, err = capsys.readouterr()
    assert status == 2, err
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert all(w in lines[0] for w in words), lines[0]
    assert not (tree["root"] / "o.ipynb").exists() and not (tree["root"] / "s").exists()


def test_help_returns_0(capsys):
    assert main(["--help"]) == 0
    assert "run" in capsys.readouterr().out


def test_a_valid_profile_still_loads(tree):
    _profiles(tree, "smoke:\n  01_tiny: {n_boot: 2}\n  other:\nconstraints: {}\n")
    from fairlib.book import load_profile

    assert load_profile(tree["notebooks"], "smoke") == {"01_tiny": {"n_boot": 2}, "other": {}}
