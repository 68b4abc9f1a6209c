"""One model on every backend, side by side: exactness, throughput, latency, resources and
where each resource figure comes from (a table for the flow and the notes)."""

from __future__ import annotations

import json
from pathlib import Path

from qapflow.common.tables import write_csv

BACKEND_COLUMNS = ("backend", "exact", "samples", "mismatches", "cycles_per_inference", "latency_cycles",
                   "LUT", "FF", "DSP", "BRAM", "resources_source", "finn_estimate_LUT", "finn_estimate_DSP",
                   "finn_estimate_BRAM_18K")


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def cycles_and_latency(backend: str, sim: dict, res: dict) -> tuple:
    """(cycles per inference, latency in cycles) of a project, from where each backend measures them."""
    if backend == "rtl":  # one sample per clock; latency measured in the Verilator trace
        return 1, sim.get("latency_cycles_measured")
    if backend == "finn":  # both measured in the Verilator run of FINN's RTL
        return sim.get("cycles_per_inference_measured"), sim.get("first_inference_latency_cycles")
    # hls4ml: csim is untimed; the vendor's C-synthesis report (synth/vendor.py) has the worst-case
    # II and latency where it ran
    return (res.get("initiation_interval") or {}).get("max"), (res.get("latency_cycles") or {}).get("worst")


def backend_row(name: str, prj: Path) -> dict:
    sim, res = _read(prj / "csim_report.json"), _read(prj / "resources.json")
    cycles, latency = cycles_and_latency(_read(prj / "qapflow_project.json").get("backend"), sim, res)
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
    write_csv(rows, path, columns)
