"""What every backend's project folder shares: its manifest, and a safe way to (re)write it."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from qapflow.common.errors import QapflowError

PROJECT_MANIFEST = "qapflow_project.json"


@contextlib.contextmanager
def build_into(out: Path) -> Iterator[Path]:
    """Yield a temporary build folder beside `out` and move it to `out` when done.

    An existing qapflow project at `out` is replaced; any other non-empty folder is
    refused, so a mistyped --out never deletes a user's files. A failed build leaves
    `out` as it was.
    """
    out = Path(out)
    if out.exists() and not (out / PROJECT_MANIFEST).exists() and any(out.iterdir()):
        raise QapflowError(f"{out} exists and is not a qapflow project; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        build = Path(tmp) / "prj"
        yield build
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(build), str(out))


def read_project(prj) -> dict:
    path = Path(prj) / PROJECT_MANIFEST
    if not path.exists():
        raise QapflowError(f"{prj}: not a qapflow project (no {PROJECT_MANIFEST}); "
                           "make one with `qapflow compile`")
    return json.loads(path.read_text())
