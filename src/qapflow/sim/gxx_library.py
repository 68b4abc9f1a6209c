"""In-process C simulation of an hls4ml project: its firmware as a shared library, called
through ctypes on whole int64 batches (as hls4ml's own compile()/predict() do).

The library compiles the same firmware sources and ap_types headers as the csim testbench
(sim/csim.py), with two differences that make it what synthesis compiles and keep text files
off the hot path:
- each weights/*.h keeps its `#else` (synthesis) branch only: the array's literals, assigned
  when the library loads (synthesis_weights says why not by its initializer);
- the top function's block that loads weights/*.txt outside synthesis is removed.
Both builds compile qapflow's sparse kernels as index tables read from the generated header
(kernel_tables: the same operations in the same order, a build that no longer grows with them).
csim.check_weight_files proves the .txt files equal those arrays, so both builds compute the
same firmware. The build is keyed by the digest of every firmware file it compiles (ap_types
included, since the key is shared between projects; not weights/*.txt), the entry point and
the flags; kept in PRJ/qapflow_library/ and in the user cache (cache.py), so an unchanged
project reuses it and a changed weight rebuilds it.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qapflow.backends.templates import render
from qapflow.common.build_lock import key_lock, publish, remove_others, usable_cpus
from qapflow.common.cache import cache_root
from qapflow.common.errors import QapflowError
from qapflow.common.hashing import sources_digest
from qapflow.common.tools import run_tool
from qapflow.sim.hls_ports import HlsPorts
from qapflow.sim.kernel_tables import CODE_GEN, KERNEL_RULES, simulation_code_gen

LIBRARY_DIR = "qapflow_library"
BUILD_TIMEOUT_S = 1800
# -O2: with the sparse kernels as tables (kernel_tables) a build no longer grows with the weights,
# so the optimiser's time is small (784-64-64-64-10, 1-bit, 2 cores: -O1 5.9 s, 867 samples/s;
# -O2 7.1 s, 1,023 samples/s; -O3 no faster to run; -O0 41 samples/s). The run is bound by
# ap_fixed's arithmetic (about 50 instructions a product, bit fields through memory).
# -fvisibility=hidden and -Bsymbolic keep two loaded projects' libraries (same symbol names)
# from binding to each other's functions and weights; -pthread for the batch's threads
FLAGS = ("-O2", "-std=c++14", "-shared", "-fPIC", "-pthread", "-fvisibility=hidden", "-Wl,-Bsymbolic")
# changes to the source rewriting below change what is built: part of the cache key
REWRITE_RULES = "weights: #else branch literals of weights/*.h, assigned at load; top: no txt loading; v2"
WEIGHT_BRANCHES = re.compile(r"#ifndef __SYNTHESIS__\n(?P<sim>[^\n]*);\n#else\n(?P<synth>.*?)\n#endif", re.DOTALL)
ARRAY_DECLARATION = re.compile(r"[A-Za-z_][\w:<>, ]* (?P<name>[A-Za-z_]\w*)\[(?P<size>\d+)\]")
LOAD_BLOCK = re.compile(r"#ifndef __SYNTHESIS__\n\s*static bool loaded_weights = false;.*?#endif\n", re.DOTALL)


class LibraryError(QapflowError):
    """The firmware could not be turned into the simulation library (names the file)."""


@dataclass
class BuildResult:
    path: Path
    seconds: float
    rebuilt: bool
    source: str  # "built", "project" (this project's earlier build) or "shared cache"

    def as_dict(self) -> dict:
        return {"library": str(self.path), "build_seconds": self.seconds, "rebuilt": self.rebuilt,
                "reused": not self.rebuilt, "reused_from": None if self.rebuilt else self.source}


def synthesis_weights(header: Path) -> str:
    """weights/NAME.h with its synthesis array only: the same literals, converted into the
    array by the same ap_fixed(double) conversion its initializer makes, but in a loop when the
    library loads. (The initializer itself, thousands of ap_fixed constructors, triples g++'s
    time: 30 s instead of 10 s for the jet model, even at -O0.)"""
    text = header.read_text()
    matches = list(WEIGHT_BRANCHES.finditer(text))
    if len(matches) != 1:
        raise LibraryError(f"{header}: expected one `#ifndef __SYNTHESIS__ ... #else ... #endif` weight block "
                           f"(hls4ml's layout), found {len(matches)}")
    m = matches[0]
    decl = ARRAY_DECLARATION.fullmatch(m.group("sim"))
    synth = m.group("synth")
    if decl is None or not synth.startswith(m.group("sim") + " = {") or not synth.rstrip().endswith("};"):
        raise LibraryError(f"{header}: the synthesis branch is not `TYPE NAME[SIZE] = {{...}};` of the "
                           f"declaration {m.group('sim')!r}")
    name, size = decl.group("name"), decl.group("size")
    literals = synth[synth.index("{") : synth.rindex("}") + 1]
    loop = (f"static const double {name}_values[{size}] = {literals};\n{m.group('sim')};\n"
            f"static struct {name}_load_t {{ {name}_load_t() {{ for (int i = 0; i < {size}; i++) "
            f"{name}[i] = {name}_values[i]; }} }} {name}_load;")
    return text[: m.start()] + loop + text[m.end():]


def without_weight_loading(top_cpp: Path) -> str:
    text = top_cpp.read_text()
    matches = list(LOAD_BLOCK.finditer(text))
    if len(matches) != 1:
        raise LibraryError(f"{top_cpp}: expected one block loading weights/*.txt outside synthesis, "
                           f"found {len(matches)}")
    return LOAD_BLOCK.sub("", text)


def _firmware_files(prj: Path) -> list[Path]:
    """What the library compiles: every firmware file but the weights' text copies."""
    return sorted(p for p in (prj / "firmware").rglob("*") if p.is_file() and p.suffix != ".txt")


def _entry_point(prj: Path, summary: dict) -> str:
    project = summary["project_name"]
    ports = HlsPorts.of(prj, summary)
    return render("csim_library.cpp.tmpl", project=project, top=project, n_in=ports.n_in, n_out=ports.n_out,
                  input_exp=summary["input"]["exp"], output_exp=summary["output_exp"], **ports.template_fields(project))


def _stage(prj: Path, summary: dict, into: Path) -> Path:
    """The firmware as the library compiles it, in `into`; returns its firmware folder."""
    firmware = into / "firmware"
    top_cpp = prj / "firmware" / f"{summary['project_name']}.cpp"
    for path in _firmware_files(prj):
        rel = path.relative_to(prj / "firmware")
        if rel.parts[0] == "ap_types":  # included from the project by -I
            continue
        target = firmware / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.parts[0] == "weights" and path.suffix == ".h":
            target.write_text(synthesis_weights(path))
        elif path == top_cpp:
            target.write_text(without_weight_loading(path))
        elif rel.as_posix() == CODE_GEN:
            target.write_text(simulation_code_gen(path.read_text()))
        else:
            shutil.copy2(path, target)
    return firmware


def cache_dir() -> Path:
    """Libraries shared between projects, keyed by the digest of their sources."""
    return cache_root() / "gxx"


def build_library(prj, summary: dict) -> BuildResult:
    """Build (or reuse) PRJ's simulation library; safe when processes build the same key at once."""
    prj = Path(prj).resolve()
    entry = _entry_point(prj, summary)
    work = prj / LIBRARY_DIR
    digest = sources_digest(entry + " ".join(FLAGS) + REWRITE_RULES + KERNEL_RULES(), _firmware_files(prj), prj)
    library = work / f"lib_{digest}.so"
    if library.exists():
        return BuildResult(library, 0.0, False, "project")
    work.mkdir(exist_ok=True)
    shared = cache_dir() / library.name
    with key_lock(cache_dir() / f"{library.name}.lock"):
        if library.exists():  # built by another process while this one waited
            return BuildResult(library, 0.0, False, "project")
        remove_others(work, "lib_*.so", library)
        if shared.exists():
            publish(shared, library)
            return BuildResult(library, 0.0, False, "shared cache")
        with tempfile.TemporaryDirectory(prefix="build_", dir=work) as tmp:
            firmware = _stage(prj, summary, Path(tmp))
            (Path(tmp) / "library.cpp").write_text(entry)
            out = Path(tmp) / library.name
            cmd = ["g++", *FLAGS, "-I", str(firmware), "-I", str(prj / "firmware" / "ap_types"),
                   str(Path(tmp) / "library.cpp"), str(firmware / f"{summary['project_name']}.cpp"), "-o", str(out)]
            seconds = run_tool(cmd, tmp, work / "build.log", BUILD_TIMEOUT_S)
            out.rename(library)
        publish(library, shared)
    return BuildResult(library, seconds, True, "built")


def default_threads(stream: bool) -> int:
    """Threads over the batch: the machine's cores for io_parallel tops, whose calls share only
    read-only state once the first sample has run; one for io_stream tops, whose layers keep
    static line buffers between calls."""
    return 1 if stream else usable_cpus()


class FirmwareLibrary:
    """A loaded simulation library: predict_int(x_int) -> output integers, one call per batch."""

    def __init__(self, path: Path, n_in: int, n_out: int, threads: int = 1):
        self.path, self.threads = Path(path), max(1, int(threads))
        try:
            self._lib = ctypes.CDLL(str(self.path))
        except OSError as exc:
            raise LibraryError(f"{self.path}: cannot be loaded: {exc}") from exc
        sizes = (ctypes.c_int64(), ctypes.c_int64())
        self._lib.qapflow_sizes(ctypes.byref(sizes[0]), ctypes.byref(sizes[1]))
        if (sizes[0].value, sizes[1].value) != (n_in, n_out):
            raise LibraryError(f"{self.path}: built for {sizes[0].value} inputs and {sizes[1].value} outputs, "
                               f"the project has {n_in} and {n_out}; recompile it")
        self.n_in, self.n_out = n_in, n_out
        array = np.ctypeslib.ndpointer(dtype=np.int64, flags="C_CONTIGUOUS")
        self._predict = self._lib.qapflow_predict
        self._predict.argtypes = [array, array, ctypes.c_int64, ctypes.c_int64]
        self._predict.restype = ctypes.c_int64

    def predict_int(self, x_int: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x_int, dtype=np.int64)
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise QapflowError(f"input integers of shape {list(x.shape)}: the firmware takes (n, {self.n_in})")
        out = np.empty((len(x), self.n_out), np.int64)
        if len(x) and self._predict(x, out, len(x), self.threads) != len(x):
            raise LibraryError(f"{self.path}: the batch call returned early")
        return out
