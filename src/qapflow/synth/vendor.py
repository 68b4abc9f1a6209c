"""Vendor HLS synthesis of an hls4ml project and its reports as resources.json.

`run_vendor_synth` runs the project's own build_prj.tcl (hls4ml writes it) with
vitis_hls or vivado_hls; `parse_vendor_reports` reads the reports through hls4ml's own
parser (the csynth XML of the solution, and vivado_synth.rpt when Vivado ran).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from qapflow.backends.project import read_project
from qapflow.common.atomic import write_json
from qapflow.common.errors import QapflowError
from qapflow.common.tools import ToolNotFound, require_tool, run_tool

TOOLS = {"vitis": "vitis_hls", "vivado": "vivado_hls"}
SYNTH_TIMEOUT_S = 6 * 3600


def _number(text) -> float | None:
    try:
        return float(str(text).split()[0])
    except (TypeError, ValueError, IndexError):
        return None


def parse_vendor_reports(prj) -> dict:
    """resources.json content from the reports in an hls4ml project folder."""
    from hls4ml.report import parse_vivado_report

    with contextlib.redirect_stdout(io.StringIO()):  # hls4ml prints what it does not find
        report = parse_vivado_report(str(prj)) or {}
    csynth = report.get("CSynthesisReport")
    if not csynth:
        raise QapflowError(f"{prj}: no C-synthesis report (<project>_prj/<solution>/syn/report/"
                           "<project>_csynth.xml); run `qapflow synth` where the vendor tools exist")
    clock = _number(csynth.get("EstimatedClockPeriod")) or _number(csynth.get("TargetClockPeriod"))
    best, worst = _number(csynth.get("BestLatency")), _number(csynth.get("WorstLatency"))
    out = {
        "source": "vendor HLS C-synthesis estimate (csynth.xml)",
        "latency_cycles": {"best": best, "worst": worst},
        "latency_ns": {"best": best * clock if best is not None and clock else None,
                       "worst": worst * clock if worst is not None and clock else None},
        "initiation_interval": {"min": _number(csynth.get("IntervalMin")), "max": _number(csynth.get("IntervalMax"))},
        "clock_ns": {"target": _number(csynth.get("TargetClockPeriod")),
                     "estimated": _number(csynth.get("EstimatedClockPeriod"))},
        "resources": {k: _number(csynth.get(k)) for k in ("LUT", "FF", "DSP", "BRAM_18K", "URAM") if k in csynth},
        "available": {k[len("Available"):]: _number(v) for k, v in csynth.items() if k.startswith("Available")},
    }
    vsynth = report.get("VivadoSynthReport")
    if vsynth:
        out["vivado_synth"] = {("DSP" if k == "DSP48E" else k): _number(v) for k, v in vsynth.items()}
    return out


def run_vendor_synth(prj, tool: str = "vitis", vivado_synth: bool = False) -> dict:
    """HLS synthesis (and optionally Vivado logic synthesis); writes PRJ/resources.json."""
    prj = Path(prj)
    read_project(prj)
    if tool not in TOOLS:
        raise QapflowError(f"unknown synthesis tool {tool!r}; use vitis, vivado or yosys")
    executable = TOOLS[tool]
    try:
        require_tool(executable)
    except ToolNotFound as exc:
        raise ToolNotFound(f"{exc}. HLS synthesis needs AMD/Xilinx {executable}, which cannot be "
                           "installed here; see docker/README.md to run it with your own installation") from exc
    run_tool([executable, "-f", "build_prj.tcl", "reset=1", "csim=0", "synth=1", "cosim=0",
              "validation=0", "export=0", f"vsynth={int(vivado_synth)}"],
             prj, prj / "vendor_synth.log", SYNTH_TIMEOUT_S)
    resources = parse_vendor_reports(prj)
    write_json(prj / "resources.json", resources)
    return resources
