"""Hardware in a study's loop: cost-model estimates for every trained iteration, and the
verification of chosen designs on real hardware paths.

A trial with `cost_model` in its extra settings exports every pruning iteration (zeros folded)
to TRIAL/hardware/iter_NNN/model.onnx and estimates its LUTs, FFs and latency with the cost
model (synth/cost_model.py); the BO of `accuracy_luts` scores a trial by the smallest of its
iterations within a point of its best accuracy (study/bo.py).

A `verify` trial puts one iteration of a finished trial through the whole open path, exactly as
`qapflow compare` does (export, RTL project, Verilator against the IntModel, Yosys), and through
the hls4ml project's C simulation; it is finished when both simulations were exact. Verify
trials run on the study's executor like every other trial (one folder each, cached, resumable).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from qapflow.common.atomic import write_json
from qapflow.common.errors import QapflowError


def estimate_iterations(folder: Path) -> list[dict]:
    """Cost-model figures of every finished iteration of the run in `folder` (cached per iteration)."""
    from qapflow.common.hashing import file_digest
    from qapflow.export.qonnx_export import export_checkpoint, resolve_checkpoint
    from qapflow.synth.cost_model import estimate_model_file

    rows = []
    for metrics_file in sorted(Path(folder).glob("iter_*/metrics.json")):
        it_dir = metrics_file.parent
        out = Path(folder) / "hardware" / it_dir.name
        cost_file = out / "cost.json"
        digest = file_digest(resolve_checkpoint(it_dir))
        cached = json.loads(cost_file.read_text()) if cost_file.exists() else None
        if cached is None or cached.get("source_sha256") != digest:
            export_checkpoint(it_dir, out / "model.onnx")
            estimate = estimate_model_file(out / "model.onnx")
            cached = {"source_sha256": digest, "estimate": estimate}
            write_json(cost_file, cached)
        metrics = json.loads(metrics_file.read_text())
        deployed = metrics.get("folded", metrics)  # what the export takes: BN folded where it was
        est = cached["estimate"]
        rows.append({"iteration": metrics["iteration"], "sparsity": deployed["sparsity"]["overall"],
                     "accuracy": deployed["accuracy"], "bops": deployed["bops"],
                     "LUT": est["LUT"], "FF": est["FF"], "latency_cycles": est["latency_cycles"],
                     "da4ml_cost": est["figures"]["da4ml_cost"]})
    return rows


def pareto_front(points: list[dict], cost: str = "LUT", gain: str = "accuracy") -> list[dict]:
    """The points no other point beats on both (lower cost, higher gain), by rising cost."""
    front, best = [], float("-inf")
    for p in sorted(points, key=lambda p: (p[cost], -p[gain])):
        if p[gain] > best:
            front.append(p)
            best = p[gain]
    return front


def run_verify_trial(payload: dict, folder: Path) -> dict:
    """Export, RTL (Verilator, Yosys) and hls4ml (C simulation) of extra.source's extra.iteration."""
    from qapflow.compare.compare import compare_iteration

    extra = payload["extra"]
    it_dir = Path(extra["source"]) / f"iter_{int(extra['iteration']):03d}"
    if not (it_dir / "metrics.json").exists():
        raise QapflowError(f"{it_dir}: no finished iteration to verify")
    n, family = int(extra.get("samples", 10_000)), extra.get("family", "xc7")
    rtl = compare_iteration(it_dir, folder, "rtl", payload["data"], n, family)
    hls = compare_iteration(it_dir, folder, "hls4ml", payload["data"], n, family)
    if rtl["sim_mismatches"] or hls["sim_mismatches"]:
        raise QapflowError(f"{it_dir}: simulation not exact (RTL {rtl['sim_mismatches']}, hls4ml "
                           f"{hls['sim_mismatches']} mismatching samples)")
    # the RTL row carries the cost model's figures of the same IntModel (compare.compare_iteration)
    return {"verified": {
        "source": extra["source"], "iteration": int(extra["iteration"]), "sparsity": rtl["sparsity"],
        "accuracy": rtl["accuracy"], "bops": rtl["bops"], "nonzero_weights": rtl["nonzero_weights"],
        "LUT": rtl["LUT"], "FF": rtl["FF"], "DSP": rtl["DSP"], "CARRY": rtl["CARRY"],
        "latency_cycles": rtl["latency_cycles"], "sim_samples_rtl": rtl["sim_samples"],
        "sim_samples_hls4ml": hls["sim_samples"], "mismatches_rtl": rtl["sim_mismatches"],
        "mismatches_hls4ml": hls["sim_mismatches"], "LUT_estimate": rtl["LUT_estimate"],
        "FF_estimate": rtl["FF_estimate"], "latency_estimate": rtl["latency_estimate"],
        "model": payload["config"].get("model", {})}}


def verify_trials(group: str, sources: list[tuple[dict, int]], verify) -> list:
    """Verify trials for (finished trial result, iteration) pairs."""
    from qapflow.study.spec import Trial

    # the folder name reaches make (Verilator's build), which cannot take '=' or ',' in a path
    return [Trial(f"verify_{group}", re.sub(r"[^A-Za-z0-9._-]+", "_", f"{result['label']}_iter{iteration}"),
                  result["config"], kind="verify",
                  extra=(("source", result["folder"]), ("source_label", result["label"]), ("iteration", iteration),
                         ("samples", verify.samples), ("family", verify.family)))
            for result, iteration in sources]


def verified_rows(results: list[dict | None]) -> list[dict]:
    return [{"label": f"{r['extra']['source_label']}/iter{r['verified']['iteration']}",
             **{k: v for k, v in r["verified"].items() if k != "model"}} for r in results if r is not None]


VERIFIED_COLUMNS = ("label", "sparsity", "accuracy", "bops", "nonzero_weights", "LUT", "LUT_estimate", "FF",
                    "FF_estimate", "DSP", "CARRY", "latency_cycles", "latency_estimate", "mismatches_rtl",
                    "mismatches_hls4ml", "sim_samples_rtl", "sim_samples_hls4ml", "source", "iteration")


def write_verified(folder: Path, rows: list[dict]) -> None:
    from qapflow.common.tables import write_csv_and_markdown

    write_json(folder / "verified.json", rows)
    write_csv_and_markdown(rows, VERIFIED_COLUMNS, folder / "verified.csv", folder / "verified.md")


def verify_front(runner, name: str, spec, records: list[dict]) -> list[dict]:
    """The accuracy-vs-estimated-LUT front over every iteration of every finished BO trial,
    through the hardware path; returns the verified rows (also in bo/NAME/verified.*)."""
    points = []
    for rec in records:
        result = runner.results.get(rec.get("folder", ""))
        if rec["status"] == "done" and result is not None:
            points += [{**row, "result": result} for row in result["hardware"]
                       if row["accuracy"] >= spec.verify.min_accuracy]
    front = pareto_front(points)
    trials = verify_trials(f"bo_{name}", [(p["result"], p["iteration"]) for p in front], spec.verify)
    rows = verified_rows(runner.run_batch(trials, f"verify BO {name} front"))
    write_verified(runner.work / "bo" / name, rows)
    return rows


def synthesize_sweep(runner, name: str, sweep, results: list[dict | None]) -> list[dict]:
    """Every iteration of every finished trial of a sweep through the hardware path."""
    sources = [(r, it["iteration"]) for r in results if r is not None for it in r["summary"]["iterations"]
               if it["sparsity"] >= sweep.synthesize.min_sparsity - 1e-9
               and it["accuracy"] >= sweep.synthesize.min_accuracy]
    rows = verified_rows(runner.run_batch(verify_trials(name, sources, sweep.synthesize), f"synthesize {name}"))
    write_verified(runner.work / "sweeps" / name, rows)
    return rows
