"""The two executors of a study: a local process pool, or tasks on an existing Ray cluster.

Both take plain-data payloads and a top-level function and yield (payload, result, error)
as trials finish, so the study runner neither knows nor cares where a trial ran. No
scheduling of our own: concurrent.futures and Ray do it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed

Outcome = tuple[dict, dict | None, str | None]


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run_in_pool(fn: Callable[[dict], dict], payloads: list[dict], workers: int) -> Iterator[Outcome]:
    """Each payload in its own task of a process pool (spawned: torch and fork do not mix)."""
    if not payloads:
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(payloads)), mp_context=context) as pool:
        futures = {pool.submit(fn, p): p for p in payloads}
        for future in as_completed(futures):
            try:
                yield futures[future], future.result(), None
            except Exception as exc:  # the trial's own error; the sweep goes on
                yield futures[future], None, f"{type(exc).__name__}: {exc}"


def run_on_ray(fn: Callable[[dict], dict], payloads: list[dict], address: str | None) -> Iterator[Outcome]:
    """Each payload a Ray task (one CPU) on the cluster at `address` (None: a local instance)."""
    if not payloads:
        return
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError("the ray executor needs the `ray` package: pip install -e '.[study]'") from exc
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, logging_level=logging.WARNING,
             include_dashboard=False if address is None else None)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(fn)
        pending = {task.remote(p): p for p in payloads}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            payload = pending.pop(done[0])
            try:
                yield payload, ray.get(done[0]), None
            except Exception as exc:  # RayTaskError wraps the trial's exception
                cause = getattr(exc, "cause", None) or exc
                yield payload, None, f"{type(cause).__name__}: {cause}"
    finally:
        ray.shutdown()


def run_trials(fn, payloads: list[dict], executor: str, workers: int | None = None,
               ray_address: str | None = None) -> Iterator[Outcome]:
    if executor == "pool":
        return run_in_pool(fn, payloads, workers or default_workers())
    if executor == "ray":
        return run_on_ray(fn, payloads, ray_address)
    raise ValueError(f"executor {executor!r}: use pool or ray")
