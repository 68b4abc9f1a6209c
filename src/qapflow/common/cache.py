"""The user's qapflow cache: downloads, shared simulator builds ($QAPFLOW_CACHE, else the XDG
cache folder)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    root = os.environ.get("QAPFLOW_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "qapflow")
    return Path(root)
