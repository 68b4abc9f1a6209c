"""summary.json of a run: one row per pruning iteration, mean and standard error over folds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from qapflow.data.schema import CLASSES


def iteration_row(metrics: dict) -> dict:
    """The headline numbers of one iteration's metrics.json, flat."""
    row = {
        "iteration": metrics["iteration"],
        "target_sparsity": metrics["target_sparsity"],
        "sparsity": metrics["sparsity"]["overall"],
        "accuracy": metrics["accuracy"],
        "bops": metrics["bops"],
        "bops_float_input": metrics["bops_float_input"],
        "neural_efficiency": metrics["neural_efficiency"]["network"],
        **{f"auc_{c}": metrics["auc"][c] for c in CLASSES},
        **{f"bkg_eff_{c}": metrics["bkg_eff_at_sig_eff_0p5"][c] for c in CLASSES},
    }
    if "folded" in metrics:
        row["folded_accuracy"] = metrics["folded"]["accuracy"]
        row["folded_bops"] = metrics["folded"]["bops"]
    return row


def chain_rows(chain_dir: Path) -> list[dict]:
    rows = []
    for metrics_path in sorted(chain_dir.glob("iter_*/metrics.json")):
        rows.append(iteration_row(json.loads(metrics_path.read_text())))
    return rows


def summarize_run(run_dir) -> dict:
    run_dir = Path(run_dir)
    fold_dirs = sorted(run_dir.glob("fold_*"))
    if not fold_dirs:
        return {"folds": None, "iterations": chain_rows(run_dir)}
    per_fold = [chain_rows(d) for d in fold_dirs]
    n_iter = min(len(rows) for rows in per_fold)
    iterations = []
    for it in range(n_iter):
        rows = [rows[it] for rows in per_fold]
        entry = {"iteration": it, "target_sparsity": rows[0]["target_sparsity"]}
        for key in rows[0]:
            if key in entry:
                continue
            values = np.array([r[key] for r in rows], dtype=float)
            entry[key] = float(values.mean())
            entry[f"{key}_sem"] = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
        iterations.append(entry)
    return {"folds": len(fold_dirs), "iterations": iterations}
