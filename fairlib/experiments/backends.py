"""Where runs execute: in this process, on a process pool, or on Ray.

:func:`map_unordered` is the one executor behind :func:`~fairlib.experiments.run_study` and
``fairlib sweep``: it calls ``fn(item)`` for every item and yields ``(item, result, error)``
as each call finishes, so callers can store results at once. A call that raises yields its
error text and the others go on.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from .._validation import MSG_TYPE, check_choice

BACKENDS = ("serial", "process", "ray")
T = TypeVar("T")


def _error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _init_worker(threads: int) -> None:
    """Pin torch to ``threads`` threads so workers do not oversubscribe the cores."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(threads)


def _guarded(fn: Callable[[Any], Any], item: Any) -> tuple[Any, str | None]:
    """Run ``fn(item)`` and return ``(result, None)`` or ``(None, error text)``."""
    try:
        return fn(item), None
    except Exception as err:  # a failing run is recorded, not raised
        return None, _error_text(err) + "\n" + traceback.format_exc(limit=5)


def _ray_call(fn: Callable[[Any], Any], item: Any, threads: int) -> tuple[Any, str | None]:
    _init_worker(threads)
    return _guarded(fn, item)


def check_backend(backend: str, workers: int | None, ray_address: str | None) -> None:
    """Refuse a bad backend choice before any work starts."""
    check_choice("backend", backend, BACKENDS)
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(MSG_TYPE.format(name="workers", expected="a positive integer or None",
                                         got=repr(workers)))
    if ray_address is not None and backend != "ray":
        raise ValueError(MSG_TYPE.format(name="ray_address", expected="None unless backend='ray'",
                                         got=repr(ray_address)))
    if backend == "ray":
        import_ray()


def import_ray() -> Any:
    """Import Ray or explain which extra installs it."""
    try:
        import ray
    except ImportError:
        raise ImportError(
            "backend='ray' needs Ray, which is the optional extra `fairlib[ray]`: "
            "pip install 'fairlib[ray]' (or pip install ray)."
        ) from None
    return ray


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def map_unordered(
    fn: Callable[[T], Any],
    items: Sequence[T],
    *,
    backend: str = "process",
    workers: int | None = None,
    ray_address: str | None = None,
    threads_per_worker: int = 1,
) -> Iterator[tuple[T, Any, str | None]]:
    """Call ``fn`` on every item and yield ``(item, result, error)`` as calls finish.

    Parameters
    ----------
    fn : callable
        A module-level function (the process and Ray backends pickle it by reference).
    items : sequence
        Arguments, one call each; picklable for the process and Ray backends.
    backend : {"serial", "process", "ray"}
        ``"process"`` uses a ``spawn`` process pool; ``"ray"`` connects to
        ``ray_address`` when given, else to the cluster the ``RAY_ADDRESS`` environment
        variable names, else starts (or reuses) a local Ray.
    workers : int, optional
        Pool size (default: one per core); for Ray, the number of CPUs of a local instance.
    threads_per_worker : int
        Torch threads in each worker (the serial backend leaves this process alone).

    Yields
    ------
    tuple
        ``(item, result, None)`` or ``(item, None, error_text)``.

    Examples
    --------
    >>> from fairlib.experiments.backends import map_unordered
    >>> sorted(r for _, r, _ in map_unordered(abs, [-2, 1], backend="serial"))
    [1, 2]
    """
    check_backend(backend, workers, ray_address)
    items = list(items)
    if not items:
        return
    if backend == "serial":
        for item in items:
            result, error = _guarded(fn, item)
            yield item, result, error
        return
    if backend == "process":
        yield from _process(fn, items, workers or default_workers(), threads_per_worker)
        return
    yield from _ray(fn, items, workers, ray_address, threads_per_worker)


def _process(fn: Callable[[Any], Any], items: list[Any], workers: int,
             threads: int) -> Iterator[tuple[Any, Any, str | None]]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: forking a process whose torch already started threads can deadlock.
    with ProcessPoolExecutor(max_workers=min(workers, len(items)), mp_context=mp.get_context("spawn"),
                             initializer=_init_worker, initargs=(threads,)) as pool:
        futures = {pool.submit(_guarded, fn, item): item for item in items}
        for future in as_completed(futures):
            item = futures[future]
            try:
                result, error = future.result()
            except Exception as err:  # the worker died or the item did not pickle
                result, error = None, _error_text(err)
            yield item, result, error


def _ray(fn: Callable[[Any], Any], items: list[Any], workers: int | None, address: str | None,
         threads: int) -> Iterator[tuple[Any, Any, str | None]]:
    ray = import_ray()
    if not ray.is_initialized():
        if address is None and os.environ.get("RAY_ADDRESS"):
            ray.init(log_to_driver=False)  # the cluster RAY_ADDRESS names
        elif address is not None:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers or default_workers(), include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=threads)(_ray_call)
    pending = {remote.remote(fn, item, threads): item for item in items}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            item = pending.pop(ref)
            try:
                result, error = ray.get(ref)
            except Exception as err:  # RayTaskError, WorkerCrashedError
                result, error = None, _error_text(err)
            yield item, result, error
