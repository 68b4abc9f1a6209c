"""The integer model (IntModel): the single source of truth between a model and its hardware.

Per layer: integer weights (zeros kept; a row negated where the layer's thresholds need a
rising accumulator), an integer bias, and one of two activations:
- shift-and-clip (power-of-two scales): ReLU, round half to even by a shift, saturate; cheap;
- thresholds (anything else: float or per-channel scales, batch norm, float biases, zero
  points, bipolar outputs): q = base + #{k : acc >= T_k}, FINN's MultiThreshold semantics,
  derived exactly from the original float ops (intmodel.thresholds).
The last layer gives integers (its accumulators, or its quantizer's integers). What runs in
software on either side, the input head (reshapes, preprocessing, the input quantizer) and
the float tail (rescale, bias, Softmax, ...), is kept as the original graph's own nodes
(intmodel.software) and named in every report.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qapflow.common.atomic import write_json
from qapflow.common.errors import QapflowError
from qapflow.intmodel.software import SoftwareEnds
from qapflow.intmodel.thresholds import Thresholds


class NotBitExact(QapflowError):
    """The model cannot be represented exactly by the integer model."""


@dataclass
class QuantSpec:
    """An integer grid: int in [lo, hi]; value = int * 2**exp where the scale is a power of two
    (exp = 0 for grids whose float scale lives in the software ends or in thresholds)."""

    bits: int
    exp: int
    signed: bool
    narrow: bool

    @property
    def lo(self) -> int:
        if not self.signed:
            return 0
        return -(2 ** (self.bits - 1)) + (1 if self.narrow else 0)

    @property
    def hi(self) -> int:
        # qonnx's max_int: an unsigned narrow grid stops one below the full range
        return 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1 - int(self.narrow)


@dataclass
class IntLayer:
    weight: np.ndarray  # int64 [out, in]
    bias: np.ndarray  # int64 [out], added to the accumulator
    weight_bits: int
    weight_exp: int  # 0 where the weight scale is not a power of two
    acc_exp: int
    act: QuantSpec | None  # the output grid; None: the output layer's accumulators are the output
    thresholds: Thresholds | None = None  # set: the activation is thresholds, not shift-and-clip

    @property
    def nonzero_weights(self) -> int:
        return int(np.count_nonzero(self.weight))

    @property
    def activation(self) -> str:
        if self.thresholds is not None:
            return "thresholds"
        return "shift_clip" if self.act is not None else "none"


def round_shift(values: np.ndarray, shift: int) -> np.ndarray:
    """values * 2**-shift rounded half to even, in integers (shift may be <= 0)."""
    if shift <= 0:
        return values << (-shift)
    q = values >> shift  # floor division by 2**shift
    r = values - (q << shift)
    half = 1 << (shift - 1)
    return q + ((r > half) | ((r == half) & (q & 1 == 1)))


@dataclass
class IntModel:
    input: QuantSpec
    layers: list[IntLayer]
    software: SoftwareEnds | None = None

    # -- evaluation -------------------------------------------------------------------
    def input_integers(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """(input integers, how many input values were not on the input grid) for float inputs
        in the model's input shape: the software head (the graph's own ops) then the grid."""
        if self.software is None:
            scaled = np.asarray(x, dtype=np.float64).reshape(len(x), -1) * 2.0 ** (-self.input.exp)
            q = np.clip(np.round(scaled), self.input.lo, self.input.hi)
            return q.astype(np.int64), int(np.count_nonzero(q != scaled))
        return self.software.input_integers(x, self.input)

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        return self.input_integers(x)[0]

    def forward_int(self, x_int: np.ndarray) -> np.ndarray:
        """The last layer's integers: accumulators, or its quantizer's integers."""
        return self.forward_layers(x_int)[-1]

    def forward_layers(self, x_int: np.ndarray) -> list[np.ndarray]:
        """Every layer's output integers (its activation's, or the last accumulators)."""
        a = np.asarray(x_int, dtype=np.int64)
        outs = []
        for layer in self.layers:
            acc = a @ layer.weight.T + layer.bias
            if layer.thresholds is not None:
                a = layer.thresholds.apply(acc)
            elif layer.act is None:
                a = acc
            else:
                relu = np.maximum(acc, 0)
                a = np.clip(round_shift(relu, layer.act.exp - layer.acc_exp), layer.act.lo, layer.act.hi)
            outs.append(a)
        return outs

    def output_exp(self) -> int:
        last = self.layers[-1]
        return last.acc_exp if last.act is None else last.act.exp

    def outputs(self, out_int: np.ndarray) -> np.ndarray:
        """The model's outputs as the graph defines them, from the firmware's integers."""
        if self.software is None:
            return np.ldexp(np.asarray(out_int, np.float64), self.output_exp())
        return self.software.outputs(out_int)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.outputs(self.forward_int(self.quantize_input(x)))

    # -- bounds, for the narrowest exact types ------------------------------------------
    def accumulator_ranges(self, with_bias: bool = True) -> list[tuple[int, int]]:
        """Per layer, the smallest and largest accumulator any input can produce (always
        including 0; with_bias=False: the sum of products alone)."""
        return [(int(min(lo.min(), 0)), int(max(hi.max(), 0)))
                for lo, hi in self.channel_ranges(with_bias)]

    def channel_ranges(self, with_bias: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per layer, per channel, the accumulator's reachable [lo, hi] over the input grid."""
        n_in = self.layers[0].weight.shape[1]
        lo_in = np.full(n_in, self.input.lo, dtype=object)
        hi_in = np.full(n_in, self.input.hi, dtype=object)
        out = []
        for layer in self.layers:
            lo, hi = interval_matvec(layer.weight, lo_in, hi_in)
            bias = layer.bias.astype(object) if with_bias else 0
            out.append((lo + bias, hi + bias))
            if layer.act is not None:
                n = len(layer.bias)
                lo_in = np.full(n, layer.act.lo, dtype=object)
                hi_in = np.full(n, layer.act.hi, dtype=object)
        return out

    @property
    def nonzero_weights(self) -> int:
        return sum(layer.nonzero_weights for layer in self.layers)

    @property
    def comparators(self) -> int:
        return sum(layer.thresholds.comparators for layer in self.layers if layer.thresholds is not None)

    # -- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "input": asdict(self.input),
            "layers": [
                {"weight": l.weight.tolist(), "bias": l.bias.tolist(), "weight_bits": l.weight_bits,
                 "weight_exp": l.weight_exp, "acc_exp": l.acc_exp,
                 "act": asdict(l.act) if l.act else None,
                 "thresholds": l.thresholds.to_dict() if l.thresholds is not None else None}
                for l in self.layers
            ],
        }

    @classmethod
    def from_dict(cls, data: dict, software: SoftwareEnds | None = None) -> "IntModel":
        layers = [
            IntLayer(np.array(l["weight"], dtype=np.int64).reshape(len(l["bias"]), -1),
                     np.array(l["bias"], dtype=np.int64), l["weight_bits"], l["weight_exp"],
                     l["acc_exp"], QuantSpec(**l["act"]) if l["act"] else None,
                     Thresholds.from_dict(l["thresholds"]) if l.get("thresholds") else None)
            for l in data["layers"]
        ]
        return cls(QuantSpec(**data["input"]), layers, software)

    def save(self, path) -> None:
        path = Path(path)
        data = self.to_dict()
        if self.software is not None:
            data["software"] = self.software.save(path.parent, path.stem)
        write_json(path, data)

    @classmethod
    def load(cls, path) -> "IntModel":
        path = Path(path)
        data = json.loads(path.read_text())
        software = SoftwareEnds.load(path.parent, data["software"]) if data.get("software") else None
        return cls.from_dict(data, software)


def interval_matvec(weight: np.ndarray, lo_in: np.ndarray, hi_in: np.ndarray):
    """Per output channel, the smallest and largest weight @ x for x in the box [lo_in, hi_in]."""
    w = weight.astype(object)
    pos, neg = np.where(w > 0, w, 0), np.where(w < 0, w, 0)
    return pos @ lo_in + neg @ hi_in, pos @ hi_in + neg @ lo_in
