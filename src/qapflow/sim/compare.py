"""Exact comparison of simulated outputs with the integer model and PyTorch."""

from __future__ import annotations

import numpy as np


def mismatch_report(name: str, got: np.ndarray, want: np.ndarray, limit: int = 5) -> dict:
    """Rows where `got` differs from `want` (exact equality), with the first few shown."""
    bad = np.flatnonzero((got != want).any(axis=1))
    return {
        f"mismatches_vs_{name}": int(len(bad)),
        f"first_mismatches_vs_{name}": [
            {"sample": int(i), "simulated": got[i].tolist(), name: want[i].tolist()} for i in bad[:limit]
        ],
    }


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    return float((scores.argmax(axis=1) == labels).mean())
