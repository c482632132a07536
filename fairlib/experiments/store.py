"""A results store: one small Parquet file per finished run, read back as one table.

Each record is written to ``<path>/records/<run_id>.parquet`` through a temporary file and
an atomic rename, so a study that crashes or is killed keeps every run that finished, and
several writers never touch the same file. :meth:`ResultStore.write_tables` materialises
the whole store as ``results.parquet`` (and ``results.csv``) for readers who want one file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .._validation import MSG_TYPE

STATUS_OK = "ok"
STATUS_FAILED = "failed"


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:  # pragma: no cover - pyarrow is a core dependency
        raise ImportError("The results store needs pyarrow: pip install 'pyarrow>=14'.") from None


class ResultStore:
    """Records of runs kept in a folder, one Parquet file per run.

    Parameters
    ----------
    path : str or pathlib.Path
        The folder (created on first write).

    Examples
    --------
    >>> import tempfile
    >>> from fairlib.experiments import ResultStore
    >>> store = ResultStore(tempfile.mkdtemp())
    >>> store.append({"run_id": "a1", "status": "ok", "test_accuracy": 0.8})
    >>> store.append({"run_id": "b2", "status": "failed", "error": "ValueError: no"})
    >>> sorted(store.finished_ids())
    ['a1']
    >>> store.read()[["run_id", "status"]].values.tolist()
    [['a1', 'ok'], ['b2', 'failed']]
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(MSG_TYPE.format(name="store", expected="a folder path",
                                            got=type(path).__name__))
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(MSG_TYPE.format(name="store", expected="a folder (or a new path)",
                                             got=f"the file {self.path}"))
        self.records_dir = self.path / "records"

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"

    def _files(self) -> list[Path]:
        if not self.records_dir.is_dir():
            return []
        return sorted(self.records_dir.glob("*.parquet"), key=lambda p: p.stat().st_mtime_ns)

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one run's record (replacing an earlier record with the same ``run_id``)."""
        _require_pyarrow()
        run_id = record.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            raise ValueError(MSG_TYPE.format(name="record", expected="a mapping with a `run_id` string",
                                             got=repr(run_id)))
        self.records_dir.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame([dict(record)])
        fd, tmp = tempfile.mkstemp(dir=self.records_dir, suffix=".tmp")
        os.close(fd)
        try:
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, self.records_dir / f"{run_id}.parquet")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def read(self) -> pd.DataFrame:
        """Every record as one DataFrame, in the order the runs finished."""
        files = self._files()
        if not files:
            return pd.DataFrame()
        # Read file by file: a column can hold ints in one run and floats in another.
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)

    def finished_ids(self) -> set[str]:
        """``run_id`` of every run stored with status ``"ok"`` (a rerun skips these)."""
        frame = self.read()
        if frame.empty:
            return set()
        return set(frame.loc[frame["status"] == STATUS_OK, "run_id"])

    def write_tables(self, *, csv: bool = True) -> pd.DataFrame:
        """Write ``results.parquet`` (and ``results.csv``) next to the records; return the table."""
        frame = self.read()
        self.path.mkdir(parents=True, exist_ok=True)
        targets: Iterable[tuple[str, Any]] = [("results.parquet", lambda p: frame.to_parquet(p, index=False))]
        if csv:
            targets = [*targets, ("results.csv", lambda p: frame.to_csv(p, index=False))]
        for name, write in targets:
            fd, tmp = tempfile.mkstemp(dir=self.path, suffix=".tmp")
            os.close(fd)
            try:
                write(tmp)
                os.replace(tmp, self.path / name)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return frame
