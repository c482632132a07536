"""Check fairlib on a CUDA GPU in one command: device tests, benchmarks and one chapter.

``make gpu-check`` (or ``python benchmarks/gpu_check.py``) runs, each step in its own
process, timed:

1. the test suite's device tests on CUDA: ``pytest tests -k cuda``, i.e. every test marked
   ``@pytest.mark.cuda``, parametrised with a ``cuda`` id or with ``cuda`` in its name
   (they skip themselves without CUDA, so ``make test`` on a CPU machine is unaffected);
2. ``bench_metrics.py --device cuda`` (metric calls on the GPU; fairlearn left out);
3. ``bench_meta.py`` (ERM, L2RW and FORML epochs; ``fit``'s ``device="auto"`` picks the GPU);
4. chapter 1 at its ``full`` profile with ``-p device cuda`` through ``fairlib run``;

then prints one summary table (step, status, seconds, note) and exits 1 if any step
failed (0 otherwise). Budget: under 5 minutes on one GPU; a step still running after
``--timeout`` seconds is stopped and counts as failed.

Without CUDA it prints one line saying so and exits 0: nothing is checked.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "01_measuring_fairness"  # full profile (10,000 bootstrap resamples) in well under a minute
BUDGET = 300.0  # seconds, the whole check on one GPU
PYTEST_NO_TESTS = 5  # pytest's exit status when the selection is empty


@dataclass(frozen=True)
class Step:
    """One command of the check."""

    name: str
    argv: list[str]


@dataclass(frozen=True)
class Outcome:
    """What a step's command gave: exit status, its last (error) output line, whether it timed out."""

    returncode: int
    last_line: str = ""
    timed_out: bool = False


@dataclass(frozen=True)
class Result:
    """One row of the summary table."""

    step: str
    ok: bool
    seconds: float
    note: str = ""


Runner = Callable[[Sequence[str], float], Outcome]


def fairlib_command() -> list[str]:
    """The ``fairlib`` console script of this interpreter (its ``main`` if not installed as a script)."""
    script = Path(sys.executable).with_name("fairlib")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from fairlib.book.cli import main; sys.exit(main())"]


def steps(out_dir: Path, chapter: str = CHAPTER) -> list[Step]:
    """The check's commands, in order; the chapter's executed copy goes to ``out_dir``."""
    py = sys.executable
    return [
        Step("device tests (pytest -k cuda)",
             [py, "-m", "pytest", "tests", "-k", "cuda", "-q", "-p", "no:cacheprovider"]),
        Step("bench_metrics on cuda",
             [py, "benchmarks/bench_metrics.py", "--device", "cuda", "--fairlearn-max", "0",
              "--repeats", "3"]),
        Step("bench_meta on cuda", [py, "benchmarks/bench_meta.py", "--repeats", "2"]),
        Step(f"chapter {chapter}, full profile, cuda",
             [*fairlib_command(), "run", f"notebooks/{chapter}.ipynb", "--profile", "full",
              "-p", "device", "cuda", "-o", str(out_dir / f"{chapter}.executed.ipynb")]),
    ]


def run_subprocess(argv: Sequence[str], timeout: float) -> Outcome:
    """Run ``argv`` from the repository root, echoing its output; stop it after ``timeout`` s."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # own session, so a timeout also stops the children it started (e.g. a notebook kernel)
    proc = subprocess.Popen(list(argv), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace",
                            start_new_session=True)
    expired = threading.Event()

    def stop() -> None:
        expired.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, stop)
    timer.start()
    last = error = ""
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            text = line.strip().rsplit("\r", 1)[-1]  # a progress bar's final state
            if text:
                last = text
                if "error" in text.lower() or "failed" in text.lower():
                    error = text
        returncode = proc.wait()
    finally:
        timer.cancel()
    # the note shows the last line that names an error, else the last line
    return Outcome(returncode, error or last, expired.is_set())


def run_step(step: Step, runner: Runner = run_subprocess, timeout: float = BUDGET) -> Result:
    """Run one step through ``runner`` and judge it: ok only on exit status 0."""
    start = time.perf_counter()
    outcome = runner(step.argv, timeout)
    seconds = time.perf_counter() - start
    if outcome.timed_out:
        return Result(step.name, False, seconds, f"stopped after the {timeout:g} s timeout")
    if outcome.returncode == 0:
        return Result(step.name, True, seconds)
    if outcome.returncode == PYTEST_NO_TESTS and "pytest" in step.argv:
        return Result(step.name, False, seconds, "no test selected")
    note = f"exit {outcome.returncode}" + (f": {outcome.last_line}" if outcome.last_line else "")
    return Result(step.name, False, seconds, note)


def summary(results: Sequence[Result], budget: float = BUDGET) -> tuple[str, int]:
    """The summary table (Markdown) and the exit status: 1 if any step failed, else 0."""
    total = sum(r.seconds for r in results)
    lines = ["| step | status | seconds | note |", "|---|---|---|---|"]
    for r in results:
        note = r.note if len(r.note) <= 100 else r.note[:97] + "..."
        note = note.replace("|", "/")  # keeps the table's columns
        lines.append(f"| {r.step} | {'ok' if r.ok else 'FAIL'} | {r.seconds:.1f} | {note} |")
    failed = sum(not r.ok for r in results)
    within = "within" if total <= budget else "over"
    lines.append(f"| total | {'ok' if not failed else f'{failed} FAILED'} | {total:.1f} | "
                 f"{within} the {budget:g} s budget |")
    return "\n".join(lines), int(failed > 0)


def no_cuda_line(torch_version: str, cuda_build: str | None) -> str:
    """The one line printed on a machine without CUDA."""
    why = "this torch build has no CUDA support" if cuda_build is None else "no CUDA device found"
    return f"gpu-check: CUDA is not available ({why}, torch {torch_version}): nothing was checked."


def main(argv: Sequence[str] | None = None, *, cuda: bool | None = None,
         runner: Runner = run_subprocess) -> int:
    """Run the check; returns the exit status. ``cuda``/``runner`` are for tests (default: detect, run)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=BUDGET,
                        help="seconds per step before it is stopped")
    parser.add_argument("--chapter", default=CHAPTER, help="notebook stem run at its full profile")
    args = parser.parse_args(argv)
    import torch

    if cuda is None:
        cuda = torch.cuda.is_available()
    if not cuda:
        print(no_cuda_line(torch.__version__, torch.version.cuda))
        return 0
    with tempfile.TemporaryDirectory(prefix="fairlib-gpu-check-") as tmp:
        plan = steps(Path(tmp), args.chapter)
        results = []
        for i, step in enumerate(plan, 1):
            print(f"== [{i}/{len(plan)}] {step.name}: {' '.join(step.argv)}", flush=True)
            results.append(run_step(step, runner, args.timeout))
    table, status = summary(results)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CUDA (simulated)"
    print(f"\ngpu-check on {device}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    print(table)
    return status


if __name__ == "__main__":
    sys.exit(main())
