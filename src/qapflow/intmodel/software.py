"""What runs in software on either side of the firmware, as the original graph's own nodes.

head: graph input -> the first dense layer's input (reshapes, float preprocessing, the input
      quantizer); its float output is mapped back to the input integers exactly.
tail: the last layer's integers -> the graph's output: integers to float32 as the graph's
      dequantization or accumulator would hold them, a Gemm bias added in float32, then the
      remaining nodes (float BN/Mul/Add, Softmax, ArgMax, ...), executed by qonnx.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from qapflow.common.atomic import atomic_path
from qapflow.intmodel.subgraph import run


# float32 holds every integer below 2**24 exactly; a sum that can reach it cannot be held
FLOAT32_INTEGERS = 2**24


def dense_output(acc_true: np.ndarray, scale, bias=None, wide: bool = False) -> np.ndarray:
    """A dense layer's float32 output as qapflow defines it: the exact sum of integer products
    (the accumulator, times the input and weight scales) rounded once to float32, then the
    layer's own bias added in float32 as the graph adds it.

    wide: the layer's sums can pass 2**24 (float32's significand), so float32 cannot hold them
    and rounding there would decide the quantizer after it (16-bit weights times 16-bit inputs
    are 32-bit products). Such a layer is defined in real arithmetic instead: its output and
    its tail up to the quantizer run in float64 (exact for sums below 2**53), which is what
    hls4ml's and qapflow's integer firmware compute."""
    if wide:
        y = np.asarray(acc_true, np.float64) * np.asarray(scale, np.float64)
        return y + np.asarray(bias, np.float32).astype(np.float64) if bias is not None else y
    y = (np.asarray(acc_true, np.float64) * np.asarray(scale, np.float64)).astype(np.float32)
    return y + np.asarray(bias, np.float32) if bias is not None else y


@dataclass
class InputGrid:
    """x = scale * (mult * q + offset) for the input integers q (offset per input or scalar)."""

    scale: float
    mult: int = 1
    offset: list[float] | float = 0.0
    quantized_by_model: bool = True  # False: no input quantizer; the grid is --input-type's
    assumed_type: str | None = None
    rounding: str = "ROUND"


@dataclass
class OutputMap:
    """y = float32((mult * out_int + offset) * scale) (+ bias in float32), per channel."""

    scale: list[float]
    mult: int = 1
    offset: list[float] | float = 0.0
    bias: list[float] | None = None
    # the graph's own float output is reproduced exactly (a quantizer's grid, or a power-of-two
    # accumulator); False: a float affine whose float32 rounding the original graph does in its
    # MatMul, in an order the firmware does not follow
    exact: bool = True
    wide: bool = False  # sums float32 cannot hold: the output is float64 (dense_output)


@dataclass
class SoftwareEnds:
    input_shape: list[int]
    grid: InputGrid
    output: OutputMap
    head: onnx.ModelProto
    tail: onnx.ModelProto
    description: dict = field(default_factory=dict)

    def input_integers(self, x: np.ndarray, spec) -> tuple[np.ndarray, int]:
        x = np.asarray(x, np.float32)
        n = len(x)
        if x.size != n * int(np.prod(self.input_shape)):
            raise ValueError(f"inputs of shape {list(x.shape)} do not fit the model's input shape "
                             f"{self.input_shape} (per sample)")
        y = run(self.head, x.reshape(n, *self.input_shape)).reshape(n, -1).astype(np.float64)
        g = self.grid
        units = (y / g.scale - np.asarray(g.offset, np.float64)) / g.mult
        q = np.round(units)
        if g.quantized_by_model:
            return q.astype(np.int64), 0
        clipped = np.clip(q, spec.lo, spec.hi)
        return clipped.astype(np.int64), int(np.count_nonzero(clipped != units))

    def outputs(self, out_int: np.ndarray) -> np.ndarray:
        o = self.output
        acc_true = o.mult * np.asarray(out_int, np.float64) + np.asarray(o.offset, np.float64)
        return run(self.tail, dense_output(acc_true, o.scale, o.bias, o.wide))

    def save(self, folder: Path, stem: str) -> dict:
        names = {"head": f"{stem}.head.onnx", "tail": f"{stem}.tail.onnx"}
        for key, proto in (("head", self.head), ("tail", self.tail)):
            with atomic_path(Path(folder) / names[key]) as tmp:
                onnx.save(proto, str(tmp))
        return {"input_shape": self.input_shape, "grid": self.grid.__dict__, "output": self.output.__dict__,
                "files": names, "description": self.description}

    @classmethod
    def load(cls, folder: Path, data: dict) -> "SoftwareEnds":
        files = data["files"]
        return cls(data["input_shape"], InputGrid(**data["grid"]), OutputMap(**data["output"]),
                   onnx.load(str(Path(folder) / files["head"])), onnx.load(str(Path(folder) / files["tail"])),
                   data.get("description", {}))
