"""The iterative pruning schedule: target sparsity after each pruning iteration.

As in the paper: about 10% of the original weights per iteration, fewer per step once
90% sparsity is reached (here 2% of the original weights per step).
"""

from __future__ import annotations

COARSE_STEP = 0.10
FINE_STEP = 0.02
FINE_FROM = 0.90


def target_sparsities(iterations: int | None = None, target: float | None = None) -> list[float]:
    """Targets for iterations 1..K (iteration 0 is the unpruned model).

    Give `iterations` (K), `target` (stop at the first step reaching it), or both.
    """
    if iterations is None and target is None:
        raise ValueError("give a number of iterations, a target sparsity, or both")
    if target is not None and not 0.0 < target < 1.0:
        raise ValueError(f"target sparsity must be in (0, 1), got {target}")
    out: list[float] = []
    s = 0.0
    while iterations is None or len(out) < iterations:
        step = COARSE_STEP if s < FINE_FROM - 1e-9 else FINE_STEP
        s = round(min(s + step, 0.99), 4)
        if target is not None and s > target + 1e-9:
            s = target
        out.append(s)
        if (target is not None and s >= target - 1e-9) or s >= 0.99:
            break
    return out


def prune_count(total: int, already: int, sparsity: float) -> int:
    """How many more weights to prune to reach `sparsity` of `total` (rounded to nearest)."""
    return max(0, int(round(sparsity * total)) - already)
