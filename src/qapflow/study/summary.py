"""The study's summary table: one row a trial (its last pruning iteration), CSV and Markdown."""

from __future__ import annotations

from pathlib import Path

from qapflow.common.tables import write_csv_and_markdown

COLUMNS = ("group", "label", "kind", "bits", "prune", "iterations", "sparsity", "accuracy",
           "accuracy_sem", "bkg_eff_t", "bops", "bops_float_input", "seconds")


def final_row(result: dict) -> dict:
    """The headline numbers of a trial: its last iteration (mean over folds where it has folds)."""
    last = result["summary"]["iterations"][-1]
    model = result["config"].get("model", {})
    bits = result.get("bits") or model.get("bits", "")
    return {"group": result["group"], "label": result["label"], "kind": result["kind"], "bits": bits,
            "prune": result["config"].get("prune", "none"), "iterations": len(result["summary"]["iterations"]),
            "sparsity": last["sparsity"], "accuracy": last["accuracy"],
            "accuracy_sem": last.get("accuracy_sem", ""), "bkg_eff_t": last["bkg_eff_t"], "bops": last["bops"],
            "bops_float_input": last["bops_float_input"], "seconds": result["seconds"]}


def read_study_trials(work) -> list[dict]:
    """Every trial result of the study in `work` (its study.json)."""
    import json

    from qapflow.common.errors import QapflowError

    record_path = Path(work) / "study.json"
    if not record_path.exists():
        raise QapflowError(f"{work}: not a study folder (no study.json)")
    return json.loads(record_path.read_text())["trials"]


def write_summary(work: Path, results: list[dict]) -> tuple[Path, Path]:
    rows = [final_row(r) for r in sorted(results, key=lambda r: (r["group"], r["label"])) if "summary" in r]
    csv_path, md_path = write_csv_and_markdown(rows, COLUMNS, Path(work) / "summary.csv", Path(work) / "summary.md")
    return csv_path, md_path
