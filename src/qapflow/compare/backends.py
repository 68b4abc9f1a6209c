"""One model on every backend, side by side: exactness, throughput, latency, resources and
where each resource figure comes from (a table for the flow and the notes)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from qapflow.common.atomic import atomic_path

BACKEND_COLUMNS = ("backend", "exact", "samples", "mismatches", "cycles_per_inference", "latency_cycles",
                   "LUT", "FF", "DSP", "BRAM", "resources_source", "finn_estimate_LUT", "finn_estimate_DSP",
                   "finn_estimate_BRAM_18K")


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def backend_row(name: str, prj: Path) -> dict:
    sim, res = _read(prj / "csim_report.json"), _read(prj / "resources.json")
    backend = _read(prj / "qapflow_project.json").get("backend")
    if backend == "rtl":
        cycles, latency = 1, sim.get("latency_cycles_measured")
    elif backend == "finn":
        cycles, latency = sim.get("cycles_per_inference_measured"), sim.get("first_inference_latency_cycles")
    else:  # hls4ml csim is untimed; the vendor's report has II and latency where it ran
        cycles, latency = res.get("interval_cycles"), res.get("latency_cycles")
    estimates = res.get("finn_estimates", {})
    return {
        "backend": name,
        "exact": sim.get("passed"),
        "samples": sim.get("samples"),
        "mismatches": sim.get("mismatches_vs_int_model"),
        "cycles_per_inference": cycles,
        "latency_cycles": latency,
        "LUT": res.get("LUT"), "FF": res.get("FF"), "DSP": res.get("DSP"),
        "BRAM": res.get("BRAM", res.get("BRAM_18K")),
        "resources_source": res.get("source", "not synthesized"),
        "finn_estimate_LUT": estimates.get("LUT"), "finn_estimate_DSP": estimates.get("DSP"),
        "finn_estimate_BRAM_18K": estimates.get("BRAM_18K"),
    }


def backends_table(projects: dict[str, Path]) -> list[dict]:
    return [backend_row(b, Path(p)) for b, p in projects.items()]


def write_table(rows: list[dict], path: Path, columns=BACKEND_COLUMNS) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
