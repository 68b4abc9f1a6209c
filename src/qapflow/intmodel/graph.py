"""The integer graph (IntGraph): integer operations in topological order, integer tensors between.

Every tensor is an int64 array (batch axis first, then the per-sample shape, channels first)
with its grid, one of two kinds:
- quantized (build.Grid): q in spec's [lo, hi], real value scale * (mult * q + offset[c]);
  what a Quant / BipolarQuant / MultiThreshold of the graph gives.
- accumulator (Accumulator): wide integers a of a linear op; where the graph's float ops take
  them, their value is float32(a * scale[c] / divisor) + bias[c] in float32: the exact sum of
  the integers, rounded once, then the op's own float bias as the graph adds it (software.
  dense_output). divisor: an average's window size, folded into the next requantization.
Operations are in intmodel.ops. What runs in software before the input quantizer and after the
last integer tensor is kept as the graph's own nodes (GraphEnds), as intmodel.software does.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from qapflow.common.atomic import atomic_path, write_json
from qapflow.intmodel.build import Grid
from qapflow.intmodel.model import QuantSpec
from qapflow.intmodel.ops import Op, op_from_dict
from qapflow.intmodel.ops.base import channel_array, ints
from qapflow.intmodel.software import dense_output
from qapflow.intmodel.subgraph import run

FORMAT = "qapflow.intgraph"
VERSION = 1


@dataclass
class Accumulator:
    scale: list[float]  # per channel, exact in float64 (products of float32 scales)
    divisor: int = 1
    bias: list[float] | None = None  # float32 per channel, added after the one rounding

    kind = "accumulator"


def tensor_values(grid, a: np.ndarray) -> np.ndarray:
    """The float32 values the graph holds for integers `a` [N, C, ...] on `grid`."""
    a = np.asarray(a)
    if isinstance(grid, Accumulator):
        exact = a.astype(np.float64) / grid.divisor if grid.divisor != 1 else a
        bias = None if grid.bias is None else channel_array(np.asarray(grid.bias, np.float32), a.ndim)
        return dense_output(exact, channel_array(grid.scale, a.ndim), bias)
    units = grid.mult * a.astype(np.float64) + channel_array(np.asarray(grid.offset, np.float64), a.ndim)
    return dense_output(units, grid.scale)  # a quantizer's output: float32(scale * units)


def grid_integers(grid: Grid, values: np.ndarray) -> np.ndarray:
    """Integers of a quantized tensor from its float values (offsets per channel on axis 1)."""
    values = np.asarray(values, np.float64)
    offset = channel_array(np.asarray(grid.offset, np.float64), values.ndim)
    return np.round((values / grid.scale - offset) / grid.mult).astype(np.int64)


def grid_to_dict(grid) -> dict:
    if isinstance(grid, Accumulator):
        return {"kind": "accumulator", **dataclasses.asdict(grid)}
    return {"kind": "quantized", "spec": dataclasses.asdict(grid.spec), "scale": grid.scale, "mult": grid.mult,
            "offset": np.asarray(grid.offset, np.float64).tolist(), "rounding": grid.rounding}


def grid_from_dict(data: dict):
    if data["kind"] == "accumulator":
        return Accumulator(data["scale"], data["divisor"], data["bias"])
    offset = data["offset"]
    return Grid(QuantSpec(**data["spec"]), data["scale"], data["mult"],
                np.asarray(offset, np.float64) if isinstance(offset, list) else offset, data["rounding"])


@dataclass
class Tensor:
    name: str
    shape: list[int]  # per sample, channels first
    grid: object  # build.Grid (quantized) or Accumulator

    @property
    def channels(self) -> int:
        return int(self.shape[0]) if self.shape else 1

    @property
    def quantized(self) -> bool:
        return isinstance(self.grid, Grid)


@dataclass
class GraphEnds:
    """The graph's own float nodes on either side of the integers, run by qonnx.
    head: graph input -> the input quantizer's output; tail: the output tensor's float values
    -> the graph's output."""

    input_shape: list[int]
    head: onnx.ModelProto
    tail: onnx.ModelProto
    description: dict = field(default_factory=dict)

    def save(self, folder: Path, stem: str) -> dict:
        names = {"head": f"{stem}.head.onnx", "tail": f"{stem}.tail.onnx"}
        for key, proto in (("head", self.head), ("tail", self.tail)):
            with atomic_path(Path(folder) / names[key]) as tmp:
                onnx.save(proto, str(tmp))
        return {"input_shape": self.input_shape, "files": names, "description": self.description}

    @classmethod
    def load(cls, folder: Path, data: dict) -> "GraphEnds":
        files = data["files"]
        return cls(data["input_shape"], onnx.load(str(Path(folder) / files["head"])),
                   onnx.load(str(Path(folder) / files["tail"])), data.get("description", {}))


@dataclass
class IntGraph:
    tensors: dict[str, Tensor]
    ops: list[Op]  # topological order
    input: str
    output: str
    ends: GraphEnds | None = None

    # -- evaluation -------------------------------------------------------------------
    def evaluate(self, x_int: np.ndarray) -> dict[str, np.ndarray]:
        """Every tensor's integers for input integers x_int [N, *input shape]."""
        shape = self.tensors[self.input].shape
        values = {self.input: np.asarray(x_int, np.int64).reshape(len(x_int), *shape)}
        for op in self.ops:
            values[op.output] = op.evaluate(*(values[name] for name in op.inputs))
        return values

    def forward(self, x_int: np.ndarray) -> np.ndarray:
        return self.evaluate(x_int)[self.output]

    def input_integers(self, x: np.ndarray) -> np.ndarray:
        """The input quantizer's integers for float inputs in the graph's input shape."""
        x = np.asarray(x, np.float32)
        y = run(self.ends.head, x.reshape(len(x), *self.ends.input_shape))
        return grid_integers(self.tensors[self.input].grid, y).reshape(len(x), *self.tensors[self.input].shape)

    def outputs(self, out_int: np.ndarray) -> np.ndarray:
        """The graph's outputs from the output tensor's integers (the software tail)."""
        return run(self.ends.tail, tensor_values(self.tensors[self.output].grid, out_int))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.outputs(self.forward(self.input_integers(x)))

    # -- bounds -----------------------------------------------------------------------
    def bounds(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per tensor, per channel, the integers' reachable [lo, hi] (Python ints) over the
        input grid: intervals through every op."""
        t = self.tensors[self.input]
        spec = t.grid.spec
        out = {self.input: (ints([spec.lo] * t.channels), ints([spec.hi] * t.channels))}
        for op in self.ops:
            out[op.output] = op.bound(*(out[name] for name in op.inputs))
        return out

    @property
    def comparators(self) -> int:
        return sum(op.thresholds.comparators for op in self.ops if op.kind == "thresholds")

    def op(self, output: str) -> Op:
        return next(o for o in self.ops if o.output == output)

    # -- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "input": self.input, "output": self.output,
                "tensors": {n: {"shape": list(t.shape), "grid": grid_to_dict(t.grid)} for n, t in self.tensors.items()},
                "ops": [op.to_dict() for op in self.ops]}

    @classmethod
    def from_dict(cls, data: dict, ends: GraphEnds | None = None) -> "IntGraph":
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError(f"not an IntGraph of version {VERSION}: format {data.get('format')!r}, "
                             f"version {data.get('version')!r}")
        tensors = {n: Tensor(n, t["shape"], grid_from_dict(t["grid"])) for n, t in data["tensors"].items()}
        return cls(tensors, [op_from_dict(o) for o in data["ops"]], data["input"], data["output"], ends)

    def save(self, path) -> None:
        path = Path(path)
        data = self.to_dict()
        if self.ends is not None:
            data["software"] = self.ends.save(path.parent, path.stem)
        write_json(path, data)

    @classmethod
    def load(cls, path) -> "IntGraph":
        path = Path(path)
        data = json.loads(path.read_text())
        ends = GraphEnds.load(path.parent, data["software"]) if data.get("software") else None
        return cls.from_dict(data, ends)
