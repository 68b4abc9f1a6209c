"""File and settings digests used for checksums, caches and manifests."""

from __future__ import annotations

import hashlib
import json

CHUNK = 1 << 20


def file_digest(path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def settings_digest(settings: dict) -> str:
    """Stable short digest of a JSON-able settings dict (key order does not matter)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]



def sources_digest(text: str, files, root) -> str:
    """Short digest of `text` plus the names (relative to `root`) and bytes of `files`:
    the cache key of a binary built from them."""
    h = hashlib.sha256(text.encode())
    for path in sorted(files):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]
