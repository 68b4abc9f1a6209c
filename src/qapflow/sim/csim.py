"""C simulation of an hls4ml project, compared bit for bit with the integer model and PyTorch.

The testbench (hls_templates/csim_testbench.cpp.tmpl) is compiled with g++ against the
project's own firmware sources and ap_types headers, which is what Vivado/Vitis csim
compiles, qapflow's sparse kernels as the index tables of their own statements (kernel_tables:
the same ap_fixed operations in the same order, in seconds instead of minutes). The binary is
cached by a digest of those sources, so a changed weight file rebuilds it. Where
vitis_hls/vivado_hls exist, `vendor=True` runs the vendor's csim.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from qapflow.backends.project import read_project
from qapflow.backends.templates import render
from qapflow.common.atomic import write_json
from qapflow.common.build_lock import key_lock, remove_others
from qapflow.common.errors import QapflowError
from qapflow.common.hashing import sources_digest
from qapflow.common.tools import ToolNotFound, run_tool
from qapflow.sim.hls_ports import HlsPorts
from qapflow.sim.kernel_tables import CODE_GEN, KERNEL_RULES, simulation_code_gen
from qapflow.sim.report import finish_report, load_int_model
from qapflow.sim.vectors import simulation_inputs

CSIM_DIR = "qapflow_csim"
COMPILE_TIMEOUT_S = 1800
RUN_TIMEOUT_S = 1800
# -O1: the testbench's run is bound by its text I/O, and -O1 builds faster than -O2
FLAGS = ("-O1", "-std=c++14")


def _numbers(text: str) -> np.ndarray:
    return np.array([float(v) for v in text.replace(",", " ").split()], dtype=np.float64)


def check_weight_files(prj: Path) -> int:
    """The csim loads weights/*.txt, synthesis compiles the arrays in weights/*.h: refuse to
    simulate unless every pair holds the same numbers. Returns the number of arrays checked."""
    checked = 0
    for header in sorted((prj / "firmware" / "weights").glob("*.h")):
        text = header.read_text()
        body = text[text.index("#else"):]
        synthesized = _numbers(body[body.index("{") + 1 : body.index("}")])
        txt = header.with_suffix(".txt")
        if not txt.exists():
            raise QapflowError(f"{txt}: missing; the csim loads it in place of the array in {header.name}")
        loaded = _numbers(txt.read_text())
        if not np.array_equal(loaded, synthesized):
            bad = int(np.flatnonzero(loaded != synthesized)[0]) if len(loaded) == len(synthesized) else None
            raise QapflowError(f"{txt}: differs from the synthesized array in {header.name}"
                               + (f" at element {bad}" if bad is not None else f" ({len(loaded)} vs "
                                  f"{len(synthesized)} values)") + "; csim would not test what synthesis builds")
        checked += 1
    return checked


def c_string(text: str) -> str:
    """A C++ string literal of any text (a project path may hold quotes, backslashes, `??`
    trigraphs of -std=c++14, non-ASCII): printable ASCII kept, the rest as octal escapes."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in '\\"?':
            out.append("\\" + ch)
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def stage_firmware(prj: Path, into: Path) -> Path:
    """The project's firmware as the g++ csim compiles it, in `into`: every file as hls4ml wrote
    it (ap_types from the project by -I), the sparse kernels in their loop form (kernel_tables)."""
    firmware = into / "firmware"
    for path in sorted((prj / "firmware").rglob("*")):
        rel = path.relative_to(prj / "firmware")
        if not path.is_file() or rel.parts[0] in ("ap_types", "weights"):  # both read from the project
            continue
        target = firmware / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.as_posix() == CODE_GEN:
            target.write_text(simulation_code_gen(path.read_text()))
        else:
            shutil.copy2(path, target)
    return firmware


def build_testbench(prj: Path, summary: dict) -> tuple[Path, float, bool]:
    """Compile (or reuse) the testbench binary; return (binary, seconds, rebuilt). Processes
    building the same binary at once wait for one build (build_lock)."""
    project = summary["project_name"]
    ports = HlsPorts.of(prj, summary)
    tb = render("csim_testbench.cpp.tmpl", project=project, top=project, n_in=ports.n_in, n_out=ports.n_out,
                input_exp=summary["input"]["exp"], output_exp=summary["output_exp"], **ports.template_fields(project))
    work = prj / CSIM_DIR
    work.mkdir(exist_ok=True)
    # the firmware loads its weights from firmware/weights/*.txt outside synthesis, as in
    # hls4ml's own build_lib.sh and the vendor csim
    weights_dir = f'-DWEIGHTS_DIR={c_string(str((prj / "firmware" / "weights").resolve()))}'
    firmware = [p for p in (prj / "firmware").rglob("*") if p.is_file() and "ap_types" not in p.parts]
    digest = sources_digest(tb + " ".join(FLAGS) + weights_dir + KERNEL_RULES(), firmware, prj)
    binary = work / f"csim_{digest}"
    if binary.exists():
        return binary, 0.0, False
    with key_lock(work / f"{binary.name}.lock"):
        if binary.exists():
            return binary, 0.0, False
        remove_others(work, "csim_*", binary)
        with tempfile.TemporaryDirectory(prefix="build_", dir=work) as tmp:
            staged = stage_firmware(prj, Path(tmp))
            (Path(tmp) / "testbench.cpp").write_text(tb)
            out = Path(tmp) / binary.name
            cmd = ["g++", *FLAGS, weights_dir, "-I", str(staged), "-I", str(prj / "firmware"),
                   "-I", str(prj / "firmware" / "ap_types"), str(Path(tmp) / "testbench.cpp"),
                   str(staged / f"{project}.cpp"), "-o", str(out)]
            seconds = run_tool(cmd, tmp, work / "compile.log", COMPILE_TIMEOUT_S)
            out.rename(binary)
    return binary, seconds, True


def run_csim(prj, data_file=None, n: int = 10_000, vendor: bool = False, split: str = "test",
             inputs_file=None) -> dict:
    """Simulate `n` inputs (jets from `data_file`, or arrays from `inputs_file`); write
    PRJ/csim_report.json, outputs_int.npy and outputs.npy, and return the report."""
    prj = Path(prj).resolve()
    summary = read_project(prj)
    if summary.get("backend") != "hls4ml":
        raise QapflowError(f"{prj} is a {summary.get('backend')} project; the g++ csim takes hls4ml projects")
    if vendor:
        return run_vendor_csim(prj, summary)
    im = load_int_model(prj)
    inputs = simulation_inputs(summary, n, data_file, inputs_file, split)
    x_int, rounded = im.input_integers(inputs.x)
    arrays_checked = check_weight_files(prj)
    binary, compile_s, rebuilt = build_testbench(prj, summary)
    work = prj / CSIM_DIR
    ports = HlsPorts.of(prj, summary)
    np.savetxt(work / "inputs.txt", ports.to_ports(x_int), fmt="%d")
    start = time.time()
    run_tool([str(binary), str(work / "inputs.txt"), str(work / "outputs.txt")], work,
             work / "run.log", RUN_TIMEOUT_S)
    run_s = time.time() - start
    simulated = ports.from_ports(np.loadtxt(work / "outputs.txt", dtype=np.int64, ndmin=2))
    tool = {"tool": "g++ (project firmware + ap_types)", "compile_seconds": compile_s,
            "weight_files_checked_against_synthesis_arrays": arrays_checked,
            "binary_reused": not rebuilt, "run_seconds": run_s,
            "csim_samples_per_second": len(x_int) / max(run_s, 1e-9)}
    return finish_report(prj, summary, im, inputs, x_int, rounded, simulated, tool)


def run_vendor_csim(prj: Path, summary: dict) -> dict:
    """The vendor's own csim through the project's build script (needs Vitis/Vivado HLS)."""
    tool = next((t for t in ("vitis_hls", "vivado_hls") if shutil.which(t)), None)
    if tool is None:
        raise ToolNotFound("--vendor-csim needs vitis_hls or vivado_hls on PATH; neither is installed "
                           "here (the g++ csim above compiles the same sources)")
    seconds = run_tool([tool, "-f", "build_prj.tcl", "reset=1", "csim=1", "synth=0", "cosim=0",
                        "validation=0", "export=0", "vsynth=0"], prj, prj / CSIM_DIR / "vendor_csim.log",
                       RUN_TIMEOUT_S)
    report = {"tool": tool, "run_seconds": seconds, "passed": True,
              "note": "vendor csim ran the hls4ml testbench (tb_data); see vendor_csim.log"}
    write_json(prj / "csim_report.json", report)
    return report
