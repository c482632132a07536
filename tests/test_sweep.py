"""``fairlib sweep``, ``fairlib results`` and ``fairlib.book.read_glue`` on a tiny notebook.

The notebook ``tests/notebooks/sweep_demo.ipynb`` is not a chapter (the book's tests only
look at ``notebooks/``). Its parameters: ``seed: int = 0``, ``scale: float = 1.0``,
``label: str = "a"``, ``values: list = [1, 2]``, ``fail: bool = False``; it glues
``total = seed * scale + sum(values)`` and a few other scalars, and raises when ``fail``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from fairlib.book import ParameterError, check_parameters, check_type, load_profile, read_glue
from fairlib.book.cli import main as cli
from fairlib.book.sweep import (
    SweepRun,
    _execute_run,
    _record,
    expand_grid,
    parse_grid,
    parse_grid_option,
    run_id_of,
    split_values,
)

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "tests" / "notebooks" / "sweep_demo.ipynb"
PARAMS = ["seed", "scale", "label", "values", "fail"]
GLUE = ["total", "tag", "is_big", "mean", "count", "glue.seed", "shown"]
FIRST = ["run_id", "status", "seconds", "error", "notebook", "profile"]
GRID_2X2 = ["--grid", "seed=1,2", "--grid", "scale=0.5,2"]


def _expected_glue(seed: int, scale: float, values=(1, 2), label: str = "a") -> dict:
    total = seed * scale + sum(values)
    return {"total": total, "tag": f"{label}-{seed}", "is_big": total > 2,
            "mean": sum(values) / len(values), "count": len(values), "glue.seed": seed * 10, "shown": 7}


@pytest.fixture(scope="module")
def serial_sweep(tmp_path_factory):
    """A 2x2 sweep of the demo notebook on the serial backend: (folder, exit status)."""
    out = tmp_path_factory.mktemp("sweep") / "serial"
    status = cli(["sweep", str(DEMO), *GRID_2X2, "--backend", "serial", "--out", str(out)])
    return out, status


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["run_id", "status", *PARAMS, *GLUE]].sort_values("run_id").reset_index(drop=True)


# -- a sweep --------------------------------------------------------------------------------------
def test_serial_sweep_writes_one_row_per_run_with_every_parameter_and_glue_key(serial_sweep):
    out, status = serial_sweep
    assert status == 0
    table = pd.read_parquet(out / "results.parquet")
    csv = pd.read_csv(out / "results.csv")
    assert list(table.columns) == FIRST + PARAMS + GLUE
    assert list(csv.columns) == FIRST + PARAMS + GLUE
    assert len(table) == 4 and table["run_id"].is_unique
    assert (table["status"] == "ok").all() and (table["error"] == "").all()
    assert (table["seconds"] > 0).all()
    assert set(table["notebook"]) == {"sweep_demo.ipynb"} and set(table["profile"]) == {"teach"}
    assert table["values"].map(type).eq(str).all()  # lists are stored as JSON text
    for row in table.to_dict("records"):
        assert (row["seed"], row["scale"]) in {(1, 0.5), (1, 2.0), (2, 0.5), (2, 2.0)}
        assert isinstance(row["scale"], float)  # `--grid scale=2` is the float 2.0
        assert (row["label"], json.loads(row["values"]), row["fail"]) == ("a", [1, 2], False)  # defaults
        assert {k: row[k] for k in GLUE} == pytest.approx(_expected_glue(row["seed"], row["scale"]))
        assert row["run_id"] == run_id_of("sweep_demo.ipynb", {
            "seed": row["seed"], "scale": row["scale"], "label": "a", "values": [1, 2], "fail": False}, "teach")
        assert (out / "runs" / f"{row['run_id']}.ipynb").is_file()
    pd.testing.assert_frame_equal(_comparable(csv).drop(columns="values"),
                                  _comparable(table).drop(columns="values"), check_dtype=False)


def test_rerun_skips_every_finished_run(serial_sweep, capsys):
    out, _ = serial_sweep
    files = sorted((out / "runs").glob("*.ipynb")) + sorted((out / "records").glob("*.parquet"))
    before = {f: f.stat().st_mtime_ns for f in files}
    capsys.readouterr()
    status = cli(["sweep", str(DEMO), *GRID_2X2, "--backend", "serial", "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0
    assert "skipped 4 already finished; ran 0" in captured.out
    assert {f: f.stat().st_mtime_ns for f in files} == before  # nothing executed again
    assert len(pd.read_csv(out / "results.csv")) == 4


def test_a_failing_run_is_a_failed_row_and_the_others_go_on(tmp_path, capsys):
    # the profile applies first, the grid on top
    shutil.copy(DEMO, tmp_path)
    (tmp_path / "profiles.yml").write_text("smoke:\n  sweep_demo: {scale: 3.0, label: p}\n")
    out = tmp_path / "out"
    args = ["sweep", str(tmp_path / DEMO.name), "--grid", "fail=false,true", "--grid", "label=g",
            "--profile", "smoke", "--backend", "serial", "--out", str(out)]
    assert cli(args) == 1
    table = pd.read_parquet(out / "results.parquet").set_index("fail")
    assert table.loc[False, "status"] == "ok" and table.loc[False, "error"] == ""
    assert table.loc[True, "status"] == "failed"
    error = table.loc[True, "error"]
    assert "sweep_demo.ipynb failed at cell" in error and "RuntimeError: asked to fail (seed 0)" in error
    assert (table["scale"] == 3.0).all() and (table["label"] == "g").all() and (table["profile"] == "smoke").all()
    assert table.loc[False, "total"] == 3.0 and table.loc[False, "tag"] == "g-0"
    assert "RuntimeError: asked to fail" in capsys.readouterr().err
    # a rerun executes only the failed run again
    assert cli(args) == 1
    assert "skipped 1 already finished; ran 1: 0 ok, 1 failed" in capsys.readouterr().out
    assert len(pd.read_parquet(out / "results.parquet")) == 2


def test_process_backend_gives_the_serial_table(serial_sweep, tmp_path):
    out, _ = serial_sweep
    status = cli(["sweep", str(DEMO), *GRID_2X2, "--backend", "process", "--workers", "2",
                  "--out", str(tmp_path / "process")])
    assert status == 0
    pd.testing.assert_frame_equal(_comparable(pd.read_parquet(tmp_path / "process" / "results.parquet")),
                                  _comparable(pd.read_parquet(out / "results.parquet")))


@pytest.mark.parametrize("grid, words", [
    ("seed=abc", ["`seed`", "int", "'abc'"]),
    ("seed=1.5", ["`seed`", "int", "1.5"]),
    ("fail=1", ["`fail`", "bool", "1 (int)"]),
    ("values=3", ["`values`", "list", "3 (int)"]),
    ("label=3", ["`label`", "str", "3 (int)", "quote"]),
    ("sed=1", ["unknown 'sed'"]),
    ("seed=[1,2", ["--grid seed", "balanced"]),
    ("seed=", ["--grid seed", "non-empty"]),
])
def test_bad_grid_is_refused_before_anything_runs(tmp_path, capsys, grid, words):
    out = tmp_path / "out"
    status = cli(["sweep", str(DEMO), "--grid", "scale=1", "--grid", grid, "--backend", "serial",
                  "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2
    assert all(w in err for w in words), err
    assert not out.exists()


def test_bad_backend_choices_and_missing_notebook_are_refused(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli(["sweep", str(DEMO), "--backend", "serial", "--ray-address", "auto", "--out", str(out)]) == 2
    assert "ray_address" in capsys.readouterr().err
    assert cli(["sweep", str(DEMO), "--workers", "0", "--out", str(out)]) == 2
    assert "`workers`" in capsys.readouterr().err
    assert cli(["sweep", str(tmp_path / "nope.ipynb"), "--out", str(out)]) == 2
    assert "nope.ipynb" in capsys.readouterr().err
    assert cli(["sweep", str(DEMO), "--grid", "seed=1", "--grid", "seed=2", "--out", str(out)]) == 2
    assert "'seed' twice" in capsys.readouterr().err
    assert not out.exists()


def test_run_refuses_a_value_of_the_wrong_type(tmp_path, capsys):
    status = cli(["run", str(DEMO), "-p", "seed", "1.5", "-o", str(tmp_path / "o.ipynb")])
    assert status == 1
    assert "Expected `seed` of sweep_demo.ipynb to be a value of its declared type int, but got 1.5" \
        in capsys.readouterr().err
    assert not (tmp_path / "o.ipynb").exists()


# -- parsing and checks ---------------------------------------------------------------------------
def test_grid_values_split_on_commas_outside_brackets_and_quotes():
    assert parse_grid_option("strengths=[0.5,0.9]") == ("strengths", [[0.5, 0.9]])
    assert parse_grid_option("strengths=[0.5,0.9],[0.6,0.8]") == ("strengths", [[0.5, 0.9], [0.6, 0.8]])
    assert parse_grid_option("label='a,b',c, d") == ("label", ["a,b", "c", "d"])
    assert parse_grid_option("m={a: 1, b: [2, 3]},x") == ("m", [{"a": 1, "b": [2, 3]}, "x"])
    assert parse_grid_option("lr=1e-3,0.01,2") == ("lr", [0.001, 0.01, 2])
    assert parse_grid_option("flag=true,false,null") == ("flag", [True, False, None])
    assert parse_grid_option("x=1") == ("x", [1])
    assert split_values('"[",x') == ['"["', "x"]  # quotes hide brackets and commas
    assert split_values('"a]",b') == ['"a]"', "b"]
    for bad in ("noequals", "=1", "1x=2", "x=[1", "x=1]", "x='a", "x=1,,2"):
        with pytest.raises(ValueError, match="Expected `--grid"):
            parse_grid_option(bad)
    assert expand_grid(parse_grid(["a=1,2", "b=x,y,z"])) == [
        {"a": a, "b": b} for a in (1, 2) for b in ("x", "y", "z")]
    assert expand_grid({}) == [{}]


@pytest.mark.parametrize("declared, value, ok", [
    ("int", 3, True), ("int", True, False), ("int", 1.5, False), ("int", "3", False),
    ("float", 2, True), ("float", 0.5, True), ("float", False, False), ("float", "x", False),
    ("str", "x", True), ("str", 3, False), ("bool", True, True), ("bool", 0, False),
    ("list", [1, "a"], True), ("list", 3, False), ("list[float]", [0.5, 1], True),
    ("list[float]", [0.5, "a"], False), ("list[int]", [1.5], False), ("tuple", [1, 2], True),
    ("Optional[int]", None, True), ("Optional[int]", 2, True), ("Optional[int]", "2", False),
    ("int | None", None, True), ("str | None", 3, False), ("None", object(), True),
    ("dict", {"a": 1}, True), ("dict", [1], False), ("SomeClass", 3, True),
])
def test_check_type(declared, value, ok):
    assert check_type(declared, value) is ok


def test_every_chapter_profile_passes_the_type_check():
    checked = 0
    for profile in ("smoke", "full"):
        for stem, overrides in load_profile(ROOT / "notebooks", profile).items():
            check_parameters(ROOT / "notebooks" / f"{stem}.ipynb", overrides)
            checked += 1
    assert checked >= 16
    with pytest.raises(ParameterError, match=r"`n_boot` of 01_measuring_fairness.ipynb .* type int, but got 'x'"):
        check_parameters(ROOT / "notebooks" / "01_measuring_fairness.ipynb", {"n_boot": "x"})


# -- reading results ------------------------------------------------------------------------------
def test_read_glue_returns_the_glued_scalars(serial_sweep):
    out, _ = serial_sweep
    row = pd.read_parquet(out / "results.parquet").query("seed == 2 and scale == 0.5").iloc[0]
    glued = read_glue(out / "runs" / f"{row['run_id']}.ipynb")
    expected = _expected_glue(2, 0.5)
    expected["seed"] = expected.pop("glue.seed")
    assert glued == expected  # the glued list `values_seen` is not a scalar: skipped
    assert list(glued) == ["total", "tag", "is_big", "mean", "count", "seed", "shown"]
    assert type(glued["mean"]) is float and type(glued["count"]) is int  # from np.float64(...), np.int64(...)


def test_results_prints_the_table_and_writes_csv(serial_sweep, tmp_path, capsys):
    out, _ = serial_sweep
    capsys.readouterr()
    assert cli(["results", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 5  # header + 4 runs, one line each
    assert all(column in printed[0] for column in FIRST + PARAMS + GLUE)
    table = pd.read_parquet(out / "results.parquet")
    assert all(any(run_id in line for line in printed[1:]) for run_id in table["run_id"])
    assert cli(["results", str(out), "--csv", str(tmp_path / "r.csv")]) == 0
    assert "wrote 4 row(s)" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "r.csv"), pd.read_csv(out / "results.csv"))
    assert cli(["results", str(tmp_path / "missing")]) == 2


def test_a_worker_that_cannot_see_the_paths_returns_the_executed_notebook(tmp_path):
    # as on a Ray node without this checkout: the source travels as text, the output back
    out = tmp_path / "sweep"
    params = {"seed": 3, "scale": 1.0, "label": "a", "values": [1, 2], "fail": False}
    run = SweepRun("abc123", str(tmp_path / "elsewhere" / DEMO.name), str(out / "runs" / "abc123.ipynb"),
                   {"seed": 3}, params, "teach", DEMO.read_text())
    result = _execute_run(run)
    assert result["error"] == "" and result["executed"] is not None
    assert not (out / "runs" / "abc123.ipynb").exists()
    record = _record(run, result, None)
    assert (out / "runs" / "abc123.ipynb").is_file()
    assert record["status"] == "ok" and record["total"] == 6.0 and record["values"] == "[1, 2]"
    nb = nbformat.read(out / "runs" / "abc123.ipynb", as_version=4)
    assert nb.metadata.papermill.parameters == {"seed": 3}


# -- Ray --------------------------------------------------------------------------------------------
@pytest.mark.ray
def test_ray_backend_gives_the_serial_rows(local_ray, serial_sweep, tmp_path):
    out, _ = serial_sweep
    status = cli(["sweep", str(DEMO), "--grid", "seed=1,2", "--grid", "scale=0.5", "--backend", "ray",
                  "--out", str(tmp_path / "ray")])
    assert status == 0
    ray_table = _comparable(pd.read_parquet(tmp_path / "ray" / "results.parquet"))
    serial = _comparable(pd.read_parquet(out / "results.parquet"))
    serial = serial[serial["run_id"].isin(ray_table["run_id"])].reset_index(drop=True)
    assert len(ray_table) == 2
    pd.testing.assert_frame_equal(ray_table, serial)
