"""benchmarks/gpu_check.py: one line and exit 0 without CUDA; the CUDA path with a fake runner."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    yield module
    del sys.modules["gpu_check"]


class FakeRunner:
    """Stands in for the subprocess runner: records the commands, answers from a script."""

    def __init__(self, answers=None):
        self.answers = answers or {}
        self.calls = []

    def __call__(self, argv, timeout):
        self.calls.append((list(argv), timeout))
        for needle, outcome in self.answers.items():
            if needle in " ".join(argv):
                return outcome
        return self.ok


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_without_cuda_one_line_and_exit_0():
    proc = subprocess.run([sys.executable, str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = (proc.stdout + proc.stderr).splitlines()
    assert len(lines) == 1, lines
    assert "CUDA is not available" in lines[0] and "nothing was checked" in lines[0]


def test_no_cuda_line_names_the_reason(gpu_check):
    assert "has no CUDA support" in gpu_check.no_cuda_line("2.13.0+cpu", None)
    assert "no CUDA device found" in gpu_check.no_cuda_line("2.13.0", "12.4")


def test_steps_cover_tests_both_benches_and_a_full_chapter_on_cuda(gpu_check, tmp_path):
    plan = gpu_check.steps(tmp_path)
    commands = [" ".join(s.argv) for s in plan]
    assert len(plan) == 4
    assert "-m pytest tests -k cuda" in commands[0]
    assert "benchmarks/bench_metrics.py --device cuda" in commands[1]
    assert "benchmarks/bench_meta.py" in commands[2]
    assert "run notebooks/01_measuring_fairness.ipynb --profile full -p device cuda -o" in commands[3]
    for s in plan:  # every path the commands name exists (they run from the repository root)
        for arg in s.argv:
            if arg.startswith(("benchmarks/", "notebooks/", "tests")):
                assert (ROOT / arg).exists(), arg
    assert str(tmp_path) in commands[3]


def test_all_steps_ok_exit_0(gpu_check, capsys):
    runner = FakeRunner()
    runner.ok = gpu_check.Outcome(0, "fine")
    assert gpu_check.main(["--timeout", "7"], cuda=True, runner=runner) == 0
    out = capsys.readouterr().out
    assert len(runner.calls) == 4 and all(timeout == 7 for _, timeout in runner.calls)
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert table[0] == "| step | status | seconds | note |"
    assert len(table) == 2 + 4 + 1  # header, rule, one row per step, total
    assert all("| ok |" in row for row in table[2:])
    assert out.count("| step | status") == 1  # one table


def test_a_failed_step_is_reported_and_exits_1(gpu_check, capsys):
    runner = FakeRunner({
        "bench_metrics": gpu_check.Outcome(2, "bench_metrics.py: error: unrecognized arguments: --device cuda"),
        "pytest": gpu_check.Outcome(5, "1388 deselected in 7.0s"),
        "fairlib": gpu_check.Outcome(-9, "", timed_out=True),
    })
    runner.ok = gpu_check.Outcome(0)
    assert gpu_check.main([], cuda=True, runner=runner) == 1
    rows = {line.split(" | ")[0].lstrip("| "): line for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ")}
    assert "| FAIL |" in rows["bench_metrics on cuda"]
    assert "exit 2: bench_metrics.py: error: unrecognized arguments: --device cuda" in rows["bench_metrics on cuda"]
    assert "| FAIL |" in rows["device tests (pytest -k cuda)"] and "no test selected" in rows[
        "device tests (pytest -k cuda)"]
    chapter = next(v for k, v in rows.items() if k.startswith("chapter"))
    assert "| FAIL |" in chapter and "timeout" in chapter
    assert "| ok |" in rows["bench_meta on cuda"]
    assert "3 FAILED" in rows["total"]


def test_summary_formats_a_failed_step_and_returns_nonzero(gpu_check):
    results = [gpu_check.Result("a", True, 1.25), gpu_check.Result("b", False, 300.5, "exit 1: boom | x")]
    table, status = gpu_check.summary(results)
    assert status == 1
    lines = table.splitlines()
    assert lines[2] == "| a | ok | 1.2 |  |"
    assert lines[3] == "| b | FAIL | 300.5 | exit 1: boom / x |"  # a pipe in a note keeps the table intact
    assert lines[4] == "| total | 1 FAILED | 301.8 | over the 300 s budget |"
    table, status = gpu_check.summary(results[:1])
    assert status == 0 and "within the 300 s budget" in table


def test_run_subprocess_echoes_and_keeps_the_last_line(gpu_check, capsys):
    out = gpu_check.run_subprocess([sys.executable, "-c", "print('one'); print('two'); raise SystemExit(3)"], 60)
    assert out == gpu_check.Outcome(3, "two", False)
    assert capsys.readouterr().out == "one\ntwo\n"
    out = gpu_check.run_subprocess([sys.executable, "-c", "import time; print('start'); time.sleep(30)"], 1)
    assert out.timed_out and out.returncode != 0 and out.last_line == "start"


def test_run_subprocess_prefers_the_last_error_line(gpu_check, capsys):
    code = "print('x: failed at cell 8: AssertionError: boom'); print('  partial output: here'); exit(1)"
    out = gpu_check.run_subprocess([sys.executable, "-c", code], 60)
    assert out == gpu_check.Outcome(1, "x: failed at cell 8: AssertionError: boom", False)
