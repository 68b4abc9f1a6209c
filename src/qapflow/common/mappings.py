"""Nested settings as plain dicts."""

from __future__ import annotations

import copy


def merge(base: dict, extra: dict) -> dict:
    """`extra` over `base` (a copy), nested mappings merged key by key."""
    out = copy.deepcopy(base)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
