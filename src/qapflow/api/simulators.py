"""One simulator per backend behind one interface: build() once, then run(x_int) turns input
integers into the firmware's output integers (at the IntModel's output scale) plus the tool's
fields for the csim report. Each reuses its backend's existing build and cache."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from qapflow.common.errors import QapflowError
from qapflow.intmodel.model import IntModel


class Hls4mlLibrary:
    """The firmware as an in-process g++ shared library (sim/gxx_library.py)."""

    name = "g++ shared library (project firmware with its synthesis weight arrays + ap_types), in process"

    def __init__(self, prj: Path, summary: dict):
        from qapflow.sim.hls_ports import HlsPorts

        self.prj, self.summary, self.lib, self.built = prj, summary, None, None
        self.ports = HlsPorts.of(prj, summary)

    def build(self) -> dict:
        from qapflow.sim.gxx_library import (
            FirmwareLibrary,
            build_library,
            default_threads,
        )

        self.built = build_library(self.prj, self.summary)
        if self.lib is None or self.lib.path != self.built.path:
            self.lib = FirmwareLibrary(self.built.path, self.ports.n_in, self.ports.n_out,
                                       default_threads(self.ports.stream))
        return self.built.as_dict()

    def run(self, x_int: np.ndarray, im: IntModel) -> tuple[np.ndarray, dict, bool]:
        from qapflow.sim.csim import check_weight_files

        checked = check_weight_files(self.prj)  # as the csim: the .txt files equal the compiled arrays
        start = time.perf_counter()
        out = self.predict_int(x_int)
        seconds = time.perf_counter() - start
        return out, {"tool": self.name, "compile_seconds": self.built.seconds, "library": str(self.built.path),
                     "library_reused": not self.built.rebuilt,
                     "weight_files_checked_against_synthesis_arrays": checked, "run_seconds": seconds,
                     "csim_samples_per_second": len(x_int) / max(seconds, 1e-9)}, True

    def predict_int(self, x_int: np.ndarray) -> np.ndarray:
        return self.ports.from_ports(self.lib.predict_int(self.ports.to_ports(x_int)))


class VerilatorBinary:
    """The RTL project's Verilator model as an in-process trace library (sim/verilator.py)."""

    name = "verilator (trace library, in process)"

    def __init__(self, prj: Path, summary: dict):
        self.prj, self.summary, self.binary = prj, summary, None

    def build(self) -> dict:
        from qapflow.sim.verilator import build_simulator

        self.binary, self.seconds, self.rebuilt = build_simulator(self.prj, self.summary)
        return {"binary": str(self.binary), "build_seconds": self.seconds, "rebuilt": self.rebuilt,
                "reused": not self.rebuilt, "reused_from": None if self.rebuilt else "project or shared cache"}

    def _trace(self, x_int: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(out_valid per cycle, outputs per cycle at the model's scale, run seconds)."""
        from qapflow.sim.verilator import TraceLibrary, _to_model_units

        if self.binary is None:
            self.build()
        start = time.perf_counter()
        valid, raw = TraceLibrary.of(self.binary, self.summary).trace(x_int)
        seconds = time.perf_counter() - start
        return valid, _to_model_units(raw, self.summary), seconds

    def predict_int(self, x_int: np.ndarray) -> np.ndarray:
        valid, outputs, _ = self._trace(x_int)
        if not valid.any():
            raise QapflowError(f"{self.prj}: out_valid never rose in the simulation; no outputs")
        lag = int(np.flatnonzero(valid)[0])  # the hardware's own word: out_valid marks the first result
        return outputs[lag : lag + len(x_int)]

    def run(self, x_int: np.ndarray, im: IntModel) -> tuple[np.ndarray, dict, bool]:
        from qapflow.sim.verilator import align_trace

        valid, outputs, seconds = self._trace(x_int)
        simulated, latency, first_valid = align_trace(valid, outputs, im.forward_int(x_int))
        return simulated, {"tool": self.name, "latency_cycles_measured": latency,
                           "latency_cycles_out_valid": first_valid,
                           "latency_cycles_metadata": self.summary["pipeline_registers"], "initiation_interval": 1,
                           "build_seconds": self.seconds, "binary_reused": not self.rebuilt, "run_seconds": seconds,
                           "sim_samples_per_second": len(x_int) / max(seconds, 1e-9)}, \
            latency is not None and latency == first_valid


class FinnRtl:
    """FINN's RTL chain in Verilator, driven through its AXI streams (sim/finn_sim.py)."""

    name = "verilator (FINN RTL chain)"

    def __init__(self, prj: Path, summary: dict):
        self.prj, self.summary = prj, summary

    def build(self) -> dict:
        # finn_sim builds its cached binary on first run; a one-sample run builds (or reuses) it
        from qapflow.sim.finn_sim import rtl_simulation
        from qapflow.sim.hls_ports import port_sizes

        n_in = port_sizes(self.summary)[0]
        _, timing = rtl_simulation(self.prj, self.summary, np.zeros((1, n_in), np.int64))
        return {"build_seconds": timing["build_seconds"], "rebuilt": not timing["binary_reused"],
                "reused": timing["binary_reused"], "reused_from": "project or shared cache"
                if timing["binary_reused"] else None}

    def predict_int(self, x_int: np.ndarray) -> np.ndarray:
        from qapflow.sim.finn_sim import hardware_to_model, rtl_simulation
        from qapflow.sim.report import load_int_model

        return hardware_to_model(load_int_model(self.prj), rtl_simulation(self.prj, self.summary, x_int)[0])

    def run(self, x_int: np.ndarray, im: IntModel) -> tuple[np.ndarray, dict, bool]:
        from qapflow.sim.finn_sim import hardware_to_model, rtl_simulation

        out, timing = rtl_simulation(self.prj, self.summary, x_int)
        return hardware_to_model(im, out), timing, True


SIMULATORS = {"hls4ml": Hls4mlLibrary, "rtl": VerilatorBinary, "finn": FinnRtl}
