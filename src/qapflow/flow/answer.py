"""What a flow was run for, read back from its workdir: per backend whether the firmware is exact
and on how many samples, its accuracy, cycles and latency, resources with their source, and the
model's BOPs and the plots' paths. `qapflow run` prints it last; flow_answer.json holds it."""

from __future__ import annotations

import json
from pathlib import Path

from qapflow.compare.backends import backend_row
from qapflow.export.qonnx_export import manifest_path


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def flow_answer(work: Path, backends: list[str], clock_ns: float | None) -> dict:
    work = Path(work)
    rows = []
    for backend in backends:
        prj = work / f"prj_{backend}"
        row = backend_row(backend, prj)
        acc = _read(prj / "csim_report.json").get("accuracy") or {}
        row["accuracy"] = acc.get("firmware")
        latency = row.get("latency_cycles")
        row["latency_ns"] = round(latency * clock_ns, 3) if latency is not None and clock_ns else None
        rows.append(row)
    manifest = _read(manifest_path(work / "export" / "model.onnx"))
    report = work / "report"
    plots = sorted(str(p) for p in report.glob("*.png")) if report.is_dir() else []
    compare = _read(work / "compare" / "compare.json")
    sparsity = manifest.get("sparsity")
    return {"backends": rows, "bops": manifest.get("bops"),
            "sparsity": sparsity.get("overall") if isinstance(sparsity, dict) else sparsity,
            "clock_ns": clock_ns, "pearson_bops_luts": compare.get("pearson_bops_luts"), "plots": plots,
            "flow_report": str(work / "flow_report.json")}


def _cell(value, fmt: str = "{}") -> str:
    return "-" if value is None else fmt.format(value)


def format_answer(answer: dict) -> str:
    """The answer as a few lines of text: one row per backend, then the model's figures."""
    head = f"{'backend':<8} {'exact':<6} {'samples':>8} {'accuracy':>9} {'cycles/inf':>10} {'latency':>14} " \
           f"{'LUT':>7} {'FF':>7} {'DSP':>4}  resources from"
    lines = [head]
    for r in answer["backends"]:
        exact = {True: "yes", False: "NO"}.get(r["exact"], "-")
        latency = "-" if r["latency_cycles"] is None else (
            f"{r['latency_cycles']} cyc" + (f" {r['latency_ns']:g} ns" if r["latency_ns"] is not None else ""))
        lines.append(f"{r['backend']:<8} {exact:<6} {_cell(r['samples']):>8} {_cell(r['accuracy'], '{:.4f}'):>9} "
                     f"{_cell(r['cycles_per_inference']):>10} {latency:>14} {_cell(r['LUT']):>7} {_cell(r['FF']):>7} "
                     f"{_cell(r['DSP']):>4}  {r['resources_source']}")
    bops = answer.get("bops")
    lines.append(f"BOPs {_cell(bops, '{:,.0f}')}, weight sparsity {_cell(answer.get('sparsity'), '{:.3f}')}"
                 + (f", Pearson(BOPs, LUTs) over the pruning run {answer['pearson_bops_luts']:.3f}"
                    if answer.get("pearson_bops_luts") is not None else ""))
    if answer["plots"]:
        lines.append("plots: " + ", ".join(answer["plots"]))
    lines.append(f"full record: {answer['flow_report']}")
    return "\n".join(lines)
