"""A Project: a compiled project folder (qapflow_project.json, the IntModel, the source graph,
the generated code) plus its loaded simulator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from qapflow.backends.project import read_project
from qapflow.common.errors import DataFormatError, QapflowError
from qapflow.sim.vectors import SimInputs, check_finite_rows

RESOURCES = "resources.json"
CSIM_REPORT = "csim_report.json"


def float_inputs(x, shape: list[int], where: str) -> np.ndarray:
    """`x` as float32 in the model's input shape (batch first), checked as `--inputs` files are."""
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DataFormatError(where, f"inputs of type {x.dtype}; expected numbers (float32)")
    per_sample = int(np.prod(shape))
    if x.ndim == 0 or len(x) == 0 or x[0].size != per_sample:
        raise DataFormatError(where, f"inputs of shape {list(x.shape)}: the model takes {shape} "
                                     f"({per_sample} values) per sample, batch first")
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    check_finite_rows(where, x.reshape(len(x), -1), x32.reshape(len(x), -1))
    return x32.reshape(-1, *shape)


class Project:
    def __init__(self, path):
        from qapflow.api.simulators import SIMULATORS
        from qapflow.sim.report import load_int_model

        self.path = Path(path).resolve()
        self.summary = read_project(self.path)
        self.backend = self.summary.get("backend")
        if self.backend not in SIMULATORS:
            raise QapflowError(f"{self.path / 'qapflow_project.json'}: backend {self.backend!r} is not one of "
                               f"{list(SIMULATORS)}")
        self.int_model = load_int_model(self.path)
        self._simulator = SIMULATORS[self.backend](self.path, self.summary)
        self._compiled = None

    def __repr__(self) -> str:
        return f"Project({str(self.path)!r}, backend={self.backend!r})"

    @property
    def input_shape(self) -> list[int]:
        return self.summary.get("input_shape") or [self.summary["layer_widths"][0][1]]

    # -- simulation --------------------------------------------------------------------
    def compile(self) -> dict:
        """Build the simulator (hls4ml: the firmware as a shared library; rtl: the Verilator
        binary; finn: the Verilator binary of FINN's RTL), or reuse the cached build of
        unchanged sources; the dict says which (`rebuilt`, `reused`, `reused_from`)."""
        self._compiled = {"backend": self.backend, "simulator": self._simulator.name, **self._simulator.build()}
        return self._compiled

    def _integers(self, x, where: str) -> tuple[np.ndarray, np.ndarray, int]:
        x32 = float_inputs(x, self.input_shape, where)
        x_int, rounded = self.int_model.input_integers(x32)
        if self._compiled is None:
            self.compile()
        return x32, x_int, rounded

    def predict(self, x, integers: bool = False) -> np.ndarray:
        """The firmware's outputs for float inputs `x` (the model's input shape, batch first):
        the graph's outputs as outputs.npy holds them; integers=True: the firmware's output
        integers, as outputs_int.npy. Builds the simulator first if compile() was not called."""
        _, x_int, _ = self._integers(x, "Project.predict(x)")
        out = self._simulator.predict_int(x_int)
        return out if integers else self.int_model.outputs(out)

    def verify(self, x, labels=None) -> dict:
        """The report `qapflow csim` writes (also written to csim_report.json, outputs_int.npy,
        outputs.npy): the firmware vs the integer model and qonnx (and PyTorch where the model
        is a qapflow export), every output compared exactly; labels: class indices, for accuracy."""
        from qapflow.sim.report import finish_report

        x32, x_int, rounded = self._integers(x, "Project.verify(x)")
        labels = None if labels is None else np.asarray(labels)
        inputs = SimInputs(x32, labels, {"file": None, "split": "as given (Project.verify)", "rows": len(x32)})
        simulated, tool, tool_passed = self._simulator.run(x_int, self.int_model)
        return finish_report(self.path, self.summary, self.int_model, inputs, x_int, rounded, simulated, tool,
                             tool_passed=tool_passed)

    def trace(self, x) -> dict:
        """Every layer's integers from the integer model, and the firmware's where it gives
        them (its output layer: the generated tops expose no inner layers), compared exactly."""
        _, x_int, _ = self._integers(x, "Project.trace(x)")
        firmware_out = self._simulator.predict_int(x_int)
        if hasattr(self.int_model, "graph"):  # an integer graph: every op's output tensor
            return {"input_integers": x_int, "layers": self._graph_rows(x_int, firmware_out)}
        layers = self.int_model.forward_layers(x_int)
        rows = []
        for i, (layer, ints) in enumerate(zip(self.int_model.layers, layers)):
            last = i == len(layers) - 1
            rows.append({"layer": i, "activation": layer.activation, "int_model": ints,
                         "firmware": firmware_out if last else None,
                         "mismatching_samples": int(np.count_nonzero((firmware_out != ints).any(axis=1)))
                         if last else None})
        return {"input_integers": x_int, "layers": rows}

    def _graph_rows(self, x_int: np.ndarray, firmware_out: np.ndarray) -> list[dict]:
        g = self.int_model.graph
        values = g.evaluate(x_int.reshape(len(x_int), *g.tensors[g.input].shape))
        rows = []
        for op in g.ops:
            ints = values[op.output].reshape(len(x_int), -1)
            last = op.output == g.output
            rows.append({"layer": op.name, "op": op.kind, "shape": list(g.tensors[op.output].shape), "int_model": ints,
                         "firmware": firmware_out if last else None,
                         "mismatching_samples": int(np.count_nonzero((firmware_out != ints).any(axis=1)))
                         if last else None})
        return rows

    # -- synthesis and reports -------------------------------------------------------------
    def synth(self, tool: str | None = None, family: str = "xc7", vivado_synth: bool = False) -> dict:
        """Synthesize as `qapflow synth` does (resources.json); tool: yosys (rtl, finn), vitis or
        vivado (hls4ml, finn's vendor steps); default: yosys for rtl and finn, vitis for hls4ml."""
        tool = tool or ("vitis" if self.backend == "hls4ml" else "yosys")
        if self.backend == "finn":
            if tool == "yosys":
                from qapflow.synth.finn_resources import finn_resources

                return finn_resources(self.path, family)
            from qapflow.backends.finn.vendor import run_vendor_steps

            return run_vendor_steps(self.path)
        if self.backend == "rtl" and tool != "yosys":
            raise QapflowError(f"{self.path} is an RTL project: synthesize it with tool='yosys' "
                               f"({tool} takes hls4ml projects)")
        if tool == "yosys":
            from qapflow.synth.yosys import run_yosys

            return run_yosys(self.path, family)
        from qapflow.synth.vendor import run_vendor_synth

        return run_vendor_synth(self.path, tool, vivado_synth)

    def report(self) -> dict:
        """The compile summary and the latest csim and synthesis reports (None where not run)."""
        def read(name: str):
            path = self.path / name
            return json.loads(path.read_text()) if path.exists() else None

        return {"project": str(self.path), "backend": self.backend, "summary": self.summary,
                "simulator": self._compiled, "csim": read(CSIM_REPORT), "synth": read(RESOURCES)}
