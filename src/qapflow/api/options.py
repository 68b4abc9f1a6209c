"""convert()'s options: exactly the CLI's compile options (`qapflow compile --help`), with its
defaults, mapped onto each backend's compile function as cli.py's `_compile` calls it."""

from __future__ import annotations

from pathlib import Path

from qapflow.common.errors import QapflowError
from qapflow.common.values import DEFAULT_PART, BadValue

# the options every backend takes, and each backend's own (names as keyword arguments)
COMMON = {"input_type": None, "scaler_file": None, "input_shape": None, "part": DEFAULT_PART, "clock_ns": 5.0}
OWN = {
    "hls4ml": {"activations": "auto", "io": "parallel", "strategy": "latency", "reuse": 1, "vendor": "vitis"},
    "rtl": {"activations": "auto", "pipeline_stages": 0},
    "finn": {"target_fps": None, "folding_file": None, "mem_mode": "internal_decoupled"},
}
BACKENDS = tuple(OWN)


def check_backend(backend: str) -> None:
    if backend not in OWN:
        raise QapflowError(f"backend {backend!r}: use one of {list(BACKENDS)}")


def resolve(backend: str, options: dict) -> dict:
    """The backend's full option set: defaults, then the caller's; an unknown name is refused
    with the names this backend takes."""
    check_backend(backend)
    allowed = {**COMMON, **OWN[backend]}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise QapflowError(f"convert(backend={backend!r}): unknown option(s) {unknown}; this backend takes "
                           f"{sorted(allowed)}")
    resolved = {**allowed, **options}
    if resolved.get("target_fps") is not None and (not isinstance(resolved["target_fps"], int)
                                                   or resolved["target_fps"] < 1):
        raise BadValue(f"target_fps {resolved['target_fps']!r}: a whole number of inferences per second, >= 1")
    if resolved["input_shape"] is not None:
        shape = list(resolved["input_shape"])
        if not shape or any(not isinstance(s, int) or s < 1 for s in shape):
            raise BadValue(f"input_shape {resolved['input_shape']!r}: sizes batch first, each at least 1, e.g. [1, 16]")
        resolved["input_shape"] = shape
    return resolved


def compile_project(backend: str, model_path: Path, out: Path, options: dict) -> dict:
    """Run the backend's compile (as `qapflow compile` does); returns its summary."""
    o = resolve(backend, options)
    extra = {"input_type": o["input_type"], "scaler_file": o["scaler_file"], "input_shape": o["input_shape"]}
    if backend == "rtl":
        from qapflow.backends.rtl.backend import compile_rtl

        return compile_rtl(model_path, out, o["pipeline_stages"], o["clock_ns"], part=o["part"],
                           activations=o["activations"], **extra)
    if backend == "finn":
        from qapflow.backends.finn.build import FinnOptions, compile_finn

        opts = FinnOptions(target_fps=o["target_fps"], folding_file=o["folding_file"], mem_mode=o["mem_mode"],
                           clock_ns=o["clock_ns"], part=o["part"], input_type=o["input_type"],
                           scaler_file=o["scaler_file"], input_shape=o["input_shape"])
        return compile_finn(model_path, out, opts)
    from qapflow.backends.hls4ml.backend import CompileOptions, compile_hls4ml

    opts = CompileOptions(part=o["part"], clock_ns=o["clock_ns"], io=o["io"], strategy=o["strategy"],
                          reuse=o["reuse"], vendor=o["vendor"])
    return compile_hls4ml(model_path, out, opts, activations=o["activations"], **extra)
