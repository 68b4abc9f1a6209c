"""The integer reference model: the single source of truth between export and hardware.

Per layer: integer weights (zeros kept), integer bias at the accumulator scale, power-of-two
scale exponents, activation bit widths and the quantizers' rounding (half to even, as
Brevitas' ROUND and ap_fixed's AP_RND_CONV) and saturation. Evaluated in numpy int64.
Built from the QONNX graph; a graph whose scales are not powers of two (scaled-int) cannot
be an IntModel and raises NotBitExact.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from qapflow.common.atomic import write_json
from qapflow.common.errors import QapflowError
from qapflow.export.graph import bias_vector, dense_chain, quant_params, weight_matrix


class NotBitExact(QapflowError):
    """The model cannot be represented exactly in fixed point (e.g. float scales)."""


def pot_exponent(scale, what: str) -> int:
    """The exponent e with scale == 2**e exactly, for a per-tensor scale."""
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    if s.size != 1:
        raise NotBitExact(f"{what}: per-channel scales are not supported, got {s.size}")
    mantissa, exponent = math.frexp(float(s[0]))
    if mantissa != 0.5:
        raise NotBitExact(f"{what}: scale {float(s[0])!r} is not a power of two (float scales "
                          "cannot be represented exactly in fixed point)")
    return exponent - 1


@dataclass
class QuantSpec:
    """An integer grid: value = int * 2**exp, int in [lo, hi], rounding half to even."""

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
        return 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1


@dataclass
class IntLayer:
    weight: np.ndarray  # int64 [out, in]
    bias: np.ndarray  # int64 [out], at the accumulator scale 2**acc_exp
    weight_bits: int
    weight_exp: int
    acc_exp: int
    act: QuantSpec | None  # None: the output layer (its accumulator is the output)

    @property
    def nonzero_weights(self) -> int:
        return int(np.count_nonzero(self.weight))


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

    # -- evaluation -------------------------------------------------------------------
    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float32 features (standardised) to input integers, as the input quantizer does."""
        scaled = np.asarray(x, dtype=np.float64) * 2.0 ** (-self.input.exp)
        return np.clip(np.round(scaled), self.input.lo, self.input.hi).astype(np.int64)

    def forward_int(self, x_int: np.ndarray) -> np.ndarray:
        """Output accumulators (int64) at scale 2**layers[-1].acc_exp."""
        a = np.asarray(x_int, dtype=np.int64)
        for layer in self.layers:
            acc = a @ layer.weight.T + layer.bias
            if layer.act is None:
                return acc
            relu = np.maximum(acc, 0)
            a = np.clip(round_shift(relu, layer.act.exp - layer.acc_exp), layer.act.lo, layer.act.hi)
        return a

    def output_exp(self) -> int:
        return self.layers[-1].acc_exp

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Float outputs (exact: int * 2**exp) for float inputs."""
        return np.ldexp(self.forward_int(self.quantize_input(x)).astype(np.float64), self.output_exp())

    # -- bounds, for the narrowest exact types ------------------------------------------
    def accumulator_ranges(self, with_bias: bool = True) -> list[tuple[int, int]]:
        """Per layer, the smallest and largest accumulator value any input can produce
        (with_bias=False: the sum of products alone)."""
        lo_in = np.full(self.layers[0].weight.shape[1], self.input.lo, dtype=object)
        hi_in = np.full(self.layers[0].weight.shape[1], self.input.hi, dtype=object)
        out = []
        for layer in self.layers:
            w = layer.weight.astype(object)
            pos, neg = np.where(w > 0, w, 0), np.where(w < 0, w, 0)
            bias = layer.bias.astype(object) if with_bias else 0
            acc_hi = pos @ hi_in + neg @ lo_in + bias
            acc_lo = pos @ lo_in + neg @ hi_in + bias
            out.append((int(min(acc_lo.min(), 0)), int(max(acc_hi.max(), 0))))
            if layer.act is not None:
                n = len(layer.bias)
                lo_in = np.full(n, layer.act.lo, dtype=object)
                hi_in = np.full(n, layer.act.hi, dtype=object)
        return out

    @property
    def nonzero_weights(self) -> int:
        return sum(layer.nonzero_weights for layer in self.layers)

    # -- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "input": asdict(self.input),
            "layers": [
                {"weight": l.weight.tolist(), "bias": l.bias.tolist(), "weight_bits": l.weight_bits,
                 "weight_exp": l.weight_exp, "acc_exp": l.acc_exp,
                 "act": asdict(l.act) if l.act else None}
                for l in self.layers
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "IntModel":
        layers = [
            IntLayer(np.array(l["weight"], dtype=np.int64).reshape(len(l["bias"]), -1),
                     np.array(l["bias"], dtype=np.int64), l["weight_bits"], l["weight_exp"],
                     l["acc_exp"], QuantSpec(**l["act"]) if l["act"] else None)
            for l in data["layers"]
        ]
        return cls(QuantSpec(**data["input"]), layers)

    def save(self, path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path) -> "IntModel":
        return cls.from_dict(json.loads(Path(path).read_text()))


def _quant_spec(model: ModelWrapper, node, what: str) -> QuantSpec:
    p = quant_params(model, node)
    if np.any(p["zeropt"] != 0):
        raise NotBitExact(f"{what}: non-zero zero point")
    if p["rounding_mode"].upper() not in ("ROUND", "ROUND_TO_EVEN"):
        raise NotBitExact(f"{what}: rounding mode {p['rounding_mode']} is not round-half-even")
    return QuantSpec(int(p["bitwidth"].reshape(-1)[0]), pot_exponent(p["scale"], what), p["signed"], p["narrow"])


def _as_int(values: np.ndarray, exp: int, what: str) -> np.ndarray:
    scaled = np.ldexp(values, -exp)
    ints = np.round(scaled)
    if not np.array_equal(ints, scaled):
        raise NotBitExact(f"{what}: values are not integers at scale 2^{exp}")
    return ints.astype(np.int64)


def int_model_from_qonnx(model: ModelWrapper) -> IntModel:
    """Build the IntModel of a QONNX dense chain; NotBitExact if it is not fixed point."""
    chain = dense_chain(model)
    if chain.input_quant is None:
        raise NotBitExact("the network input is not quantized (float input); give the model an "
                          "input quantizer (input_bits) to make it fixed point")
    input_spec = _quant_spec(model, chain.input_quant, "input quantizer")
    in_exp = input_spec.exp
    layers = []
    for layer in chain.layers:
        name = layer.gemm.name
        if layer.weight_quant is None:
            raise NotBitExact(f"layer {name}: float weights (32-bit layer)")
        if layer.norm is not None:
            raise NotBitExact(f"layer {name}: batch norm {layer.norm.name} is not folded into the weights")
        w_spec = _quant_spec(model, layer.weight_quant, f"layer {name} weights")
        acc_exp = in_exp + w_spec.exp
        weight = _as_int(weight_matrix(model, layer), w_spec.exp, f"layer {name} weights")
        bias = _as_int(bias_vector(model, layer), acc_exp, f"layer {name} bias")
        act = None
        if layer.relu is not None:
            if layer.act_quant is None:
                raise NotBitExact(f"layer {name}: activation without a quantizer")
            act = _quant_spec(model, layer.act_quant, f"layer {name} activation")
            if act.signed:
                raise NotBitExact(f"layer {name}: signed quantizer after ReLU")
            in_exp = act.exp
        layers.append(IntLayer(weight, bias, w_spec.bits, w_spec.exp, acc_exp, act))
    return IntModel(input_spec, layers)
