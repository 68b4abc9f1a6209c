"""Builds shared through the user cache: one process builds a key while the others wait for it.

Two processes (a test run beside a flow, two studies' workers) often build the same simulator
at once. Without a lock both pay for the build; the results are renamed into place atomically
either way, so what a reader finds under a key is always a whole file. fcntl's advisory lock is
the OS's own and is released when its holder dies, so a killed build never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from qapflow.common.atomic import atomic_path


@contextmanager
def key_lock(path: Path):
    """Hold the exclusive lock of one cache key (file `path`, created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def publish(source: Path, target: Path) -> None:
    """Copy `source` onto `target` atomically (a reader never sees half a binary)."""
    with atomic_path(target) as tmp:
        shutil.copy2(source, tmp)


def remove_others(folder: Path, pattern: str, keep: Path) -> None:
    """Remove the earlier builds in `folder` (another key of the same project), never `keep`:
    a process building the same key may have just renamed it into place."""
    for old in folder.glob(pattern):
        if old.name != keep.name:
            old.unlink(missing_ok=True)


def usable_cpus() -> int:
    """The processors this process may run on (a container's or taskset's share, not the host's)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
