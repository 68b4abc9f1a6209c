"""Build the IntModel of any quantized MLP from its (ingested) QONNX graph.

Each layer keeps the cheap shift-and-clip form where it is exact (power-of-two scales, zero
points 0, an integer bias, ReLU then a round-half-even quantizer); every other path from the
accumulator to the next quantizer becomes exact integer thresholds (intmodel.thresholds).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from qapflow.intmodel.chain import Chain, Stage, annotated_integer_type, attr, describe, quant_params, read_chain
from qapflow.intmodel.model import IntLayer, IntModel, NotBitExact, QuantSpec, interval_matvec
from qapflow.intmodel.software import FLOAT32_INTEGERS, InputGrid, OutputMap, SoftwareEnds, dense_output
from qapflow.intmodel.subgraph import run, subgraph
from qapflow.intmodel.thresholds import channel_directions, derive_thresholds

DEFAULT_INPUT_TYPE = "fixed<16,6>"  # signed, 16 bits, 10 fraction bits: standardised features
SHIFT_ROUNDING = ("ROUND", "ROUND_TO_EVEN")
# comparators a threshold layer may need (levels x channels); FINN stores them in memory, a
# fully unrolled design cannot: past this, narrower activations or power-of-two scales are asked for
MAX_THRESHOLDS_PER_LAYER = 1 << 16


@dataclass
class Grid:
    """A tensor's integers q: value = scale * (mult * q + offset), q in spec's [lo, hi]."""

    spec: QuantSpec
    scale: float
    mult: int = 1
    offset: np.ndarray | float = 0.0
    rounding: str = "ROUND"

    @property
    def exp(self) -> int | None:
        return pot_exponent(self.scale)

    @property
    def plain_pot(self) -> bool:
        """A power-of-two grid without zero point or bipolar mapping."""
        return self.exp is not None and self.mult == 1 and not np.any(np.asarray(self.offset) != 0)

    def accumulator_offset(self, w_int: np.ndarray) -> np.ndarray:
        """Per output channel, what the offset adds to the accumulator: W @ offset (float64)."""
        return w_int.astype(np.float64) @ np.broadcast_to(np.asarray(self.offset, np.float64), w_int.shape[1])

    def integers(self, values: np.ndarray) -> np.ndarray:
        return np.round((np.asarray(values, np.float64) / self.scale - np.asarray(self.offset)) / self.mult
                        ).astype(np.int64)


def pot_exponent(scale: float) -> int | None:
    mantissa, exponent = math.frexp(float(scale))
    return exponent - 1 if mantissa == 0.5 else None


def parse_fixed_type(text: str) -> QuantSpec:
    """fixed<W,I> / ufixed<W,I> / ap_fixed<W,I> -> a power-of-two QuantSpec."""
    m = re.fullmatch(r"\s*(u?)(?:ap_)?(u?)fixed<\s*(\d+)\s*,\s*(-?\d+)\s*>\s*", text)
    if not m or not 1 <= int(m.group(3)) <= 32:
        raise NotBitExact(f"--input-type {text!r}: expected fixed<W,I> or ufixed<W,I> with 1 <= W <= 32")
    width, integer = int(m.group(3)), int(m.group(4))
    return QuantSpec(width, integer - width, not (m.group(1) or m.group(2)), False)


def multithreshold_grid(model: ModelWrapper, node, what: str) -> Grid:
    """FINN's MultiThreshold: value = out_scale * count + out_bias, count in [0, K] for K thresholds
    a channel; its integers are the counts shifted by out_bias / out_scale where that is a whole
    number (FINN's signed activations), else the counts with the bias as the grid's offset."""
    thresholds = model.get_initializer(node.input[1])
    if thresholds is None or np.ndim(thresholds) != 2:
        raise NotBitExact(f"{what} {describe(node)}: thresholds must be a constant [channels, steps] array")
    scale, bias = float(np.float32(attr(node, "out_scale", 1.0))), float(np.float32(attr(node, "out_bias", 0.0)))
    if not (np.isfinite(scale) and scale > 0 and np.isfinite(bias)):
        raise NotBitExact(f"{what} {describe(node)}: out_scale {scale} and out_bias {bias} must be finite, "
                          "out_scale positive")
    steps = int(np.shape(thresholds)[1])
    shift = bias / scale
    exp = pot_exponent(scale) or 0
    if shift != round(shift):
        return Grid(QuantSpec(max(1, steps.bit_length()), exp, False, False), scale, offset=shift,
                    rounding="THRESHOLDS")
    lo, hi = int(shift), int(shift) + steps  # value = scale * q exactly, q = count + shift
    if lo >= 0:
        return Grid(QuantSpec(max(1, hi.bit_length()), exp, False, False), scale, rounding="THRESHOLDS")
    bits = 1 + max((-lo - 1).bit_length(), hi.bit_length())
    return Grid(QuantSpec(bits, exp, True, False), scale, rounding="THRESHOLDS")


def annotated_grid(dtype) -> Grid:
    """The grid of a qonnx integer DataType (scale 1; BIPOLAR as +-1)."""
    if dtype.name == "BIPOLAR":
        return Grid(QuantSpec(1, 0, False, False), 1.0, mult=2, offset=-1.0, rounding="BIPOLAR")
    return Grid(QuantSpec(int(dtype.bitwidth()), 0, bool(dtype.signed()), False), 1.0)


def quant_grid(model: ModelWrapper, node, what: str) -> Grid:
    if node.op_type == "MultiThreshold":
        return multithreshold_grid(model, node, what)
    p = quant_params(model, node)
    if p["scale"].size != 1:
        raise NotBitExact(f"{what} {describe(node)}: per-channel activation scales are not supported "
                          "(use a per-tensor scale for activations; weights may be per-channel)")
    scale = float(np.float32(p["scale"].reshape(-1)[0]))
    if p["bipolar"]:  # value = scale * (+-1 - zero point): q in {0, 1} is 2q - 1
        offset = -1.0 - float(p["zeropt"].reshape(-1)[0]) if p["zeropt"].size == 1 else -1.0 - p["zeropt"].reshape(-1)
        return Grid(QuantSpec(1, 0, False, False), scale, mult=2, offset=offset, rounding="BIPOLAR")
    bits = int(p["bitwidth"].reshape(-1)[0])
    if p["bitwidth"].reshape(-1)[0] != bits or not 1 <= bits <= 32:
        raise NotBitExact(f"{what} {describe(node)}: bit width {p['bitwidth']} must be a whole number 1-32")
    exp = pot_exponent(scale)
    spec = QuantSpec(bits, exp if exp is not None else 0, p["signed"], p["narrow"])
    zeropt = p["zeropt"].reshape(-1)
    return Grid(spec, scale, 1, -zeropt if zeropt.size > 1 else -float(zeropt[0]), p["rounding_mode"].upper())


def _weight_ints(model: ModelWrapper, stage: Stage) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer weights [out, in], the per-output-channel scale and the bit width."""
    if stage.weight_quant is None:  # constants annotated as integers (FINN-ONNX): scale 1
        dtype = annotated_integer_type(model, stage.dense.input[1])
        ints = np.round(stage.weight)
        if not np.array_equal(ints, stage.weight) or not dtype.allowed(ints).all():
            raise NotBitExact(f"{describe(stage.dense)}: its weights are annotated {dtype.name} but hold "
                              "other values")
        return ints.astype(np.int64), np.ones(stage.weight.shape[0]), max(1, int(dtype.bitwidth()))
    p = quant_params(model, stage.weight_quant)
    if np.any(p["zeropt"] != 0):
        raise NotBitExact(f"{describe(stage.weight_quant)}: weights with a non-zero zero point")
    raw = model.get_initializer(stage.weight_quant.input[0])
    scale = np.broadcast_to(p["scale"].astype(np.float32).astype(np.float64), np.shape(raw))
    if stage.dense.op_type == "MatMul" or attr(stage.dense, "transB", 0) == 0:
        scale = scale.T
    if np.any(scale != scale[:, :1]):
        raise NotBitExact(f"{describe(stage.weight_quant)}: weight scales vary along the input axis; "
                          "qapflow supports per-tensor or per-output-channel weight scales")
    s_w = scale[:, 0].copy()
    ints = stage.weight / s_w[:, None]
    rounded = np.round(ints)
    # the graph's float32 weights are fl32(int * scale): the integer is recovered exactly while
    # the relative rounding (2**-24) is far below half a step
    if np.any(np.abs(ints - rounded) > 0.25) or np.any(np.abs(rounded) >= 2**22):
        raise NotBitExact(f"{describe(stage.weight_quant)}: weights are not integers at their scale")
    bits = int(p["bitwidth"].reshape(-1)[0])
    return rounded.astype(np.int64), s_w, bits


def _constant_bias(model: ModelWrapper, stage: Stage) -> np.ndarray | None:
    """The stage's bias if its tail is only [bias Add] + [Relu]; None if the tail is anything else."""
    ops = [n.op_type for n in stage.tail]
    bias = stage.bias
    tail = list(stage.tail)
    if tail and tail[0].op_type == "Add":
        const = [model.get_initializer(t) for t in tail[0].input if model.get_initializer(t) is not None]
        if bias is not None or len(const) != 1:
            return None
        bias = np.asarray(const[0], np.float64).reshape(-1)
        tail = tail[1:]
    if any(n.op_type not in ("Relu",) for n in tail) or ops.count("Relu") > 1:
        return None
    n_out = stage.weight.shape[0]
    return np.broadcast_to(bias if bias is not None else np.zeros(1), (n_out,)).astype(np.float64)


def _shift_layer(model, stage, w_int, s_w, w_bits, in_grid: Grid, out_grid: Grid | None) -> IntLayer | None:
    """The shift-and-clip layer when it is exact, else None."""
    if not in_grid.plain_pot or len(set(s_w.tolist())) != 1 or pot_exponent(s_w[0]) is None:
        return None
    bias = _constant_bias(model, stage)
    if bias is None:
        return None
    w_exp = pot_exponent(s_w[0])
    acc_exp = in_grid.exp + w_exp
    bias_int = np.ldexp(bias, -acc_exp)
    if not np.array_equal(bias_int, np.round(bias_int)):
        return None
    has_relu = any(n.op_type == "Relu" for n in stage.tail)
    if out_grid is None:
        if has_relu:
            return None
        return IntLayer(w_int, bias_int.astype(np.int64), w_bits, w_exp, acc_exp, None)
    if not (has_relu and out_grid.plain_pot and out_grid.rounding in SHIFT_ROUNDING):
        return None
    if out_grid.spec.narrow and not out_grid.spec.signed:  # saturates below the type's top: thresholds
        return None
    return IntLayer(w_int, bias_int.astype(np.int64), w_bits, w_exp, acc_exp, out_grid.spec)


def accumulator_bounds(in_grid: Grid, w_int: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the least and greatest W @ q over the input grid's integers."""
    lo_in = np.full(w_int.shape[1], in_grid.spec.lo, dtype=object)
    hi_in = np.full(w_int.shape[1], in_grid.spec.hi, dtype=object)
    lo, hi = (np.array(v, dtype=np.int64) for v in interval_matvec(w_int, lo_in, hi_in))
    return lo, hi


def wide_sums(in_grid: Grid, w_int: np.ndarray, s_w: np.ndarray, bias, bounds=None) -> bool:
    """Whether a dense layer's true sums (its input grid's units times the weights, plus its
    bias over the accumulator scale) can reach float32's 2**24: software.dense_output's `wide`.
    bounds: accumulator_bounds, where the caller has them."""
    lo, hi = bounds if bounds is not None else accumulator_bounds(in_grid, w_int)
    top = (in_grid.mult * np.maximum(np.abs(lo), np.abs(hi)).astype(np.float64)
           + np.abs(in_grid.accumulator_offset(w_int)))
    if bias is not None:
        top = top + np.abs(np.asarray(bias, np.float64) / (in_grid.scale * np.asarray(s_w, np.float64)))
    return bool(np.size(top)) and float(np.max(top)) >= FLOAT32_INTEGERS


def _threshold_layer(model, stage, w_int, s_w, w_bits, in_grid: Grid, out_grid: Grid, where: str) -> IntLayer:
    levels = out_grid.spec.hi - out_grid.spec.lo
    if levels * w_int.shape[0] > MAX_THRESHOLDS_PER_LAYER:
        raise NotBitExact(f"{where}: its activation {describe(stage.quant)} has {levels + 1} levels on "
                          f"{w_int.shape[0]} channels, {levels * w_int.shape[0]} thresholds (at most "
                          f"{MAX_THRESHOLDS_PER_LAYER}); use fewer activation bits, or power-of-two scales "
                          "with the bias on the accumulator grid and no batch norm (shift-and-clip form)")
    s_acc = in_grid.scale * s_w  # exact in float64 (two float32 factors)
    offset = in_grid.accumulator_offset(w_int)
    pipeline = subgraph(model, stage.tail + [stage.quant], stage.dense.output[0], stage.quant.output[0])
    bias32 = None if stage.bias is None else np.asarray(stage.bias, np.float32)
    lo, hi = accumulator_bounds(in_grid, w_int)
    wide = wide_sums(in_grid, w_int, s_w, bias32, (lo, hi))

    def transfer(signs):
        def g(acc: np.ndarray) -> np.ndarray:
            true = in_grid.mult * (signs * acc).astype(np.float64) + offset
            return out_grid.integers(run(pipeline, dense_output(true, s_acc, bias32, wide)))
        return g

    signs = channel_directions(transfer(np.ones(len(lo), np.int64)), lo, hi)
    w_hw = w_int * signs[:, None]
    lo_hw, hi_hw = np.where(signs > 0, lo, -hi), np.where(signs > 0, hi, -lo)
    thresholds = derive_thresholds(transfer(signs), lo_hw, hi_hw, out_grid.spec.lo, out_grid.spec.hi, where)
    w_exp = _weight_exp(s_w)
    return IntLayer(w_hw, np.zeros(len(lo), np.int64), w_bits, w_exp, in_grid.spec.exp + w_exp, out_grid.spec,
                    thresholds)


def _weight_exp(s_w: np.ndarray) -> int:
    """The exponent of a per-tensor power-of-two weight scale; 0 (plain integers) otherwise.
    The hardware accumulator is then at 2**(input exp + this)."""
    exp = pot_exponent(s_w[0]) if len(set(s_w.tolist())) == 1 else None
    return exp if exp is not None else 0


def build_int_model(model: ModelWrapper, input_type: str | None = None, force_thresholds: bool = False) -> IntModel:
    """The IntModel of an ingested QONNX graph; UnsupportedGraph/NotBitExact name the node.
    force_thresholds: thresholds even where shift-and-clip is exact (to compare their cost)."""
    chain = read_chain(model)
    graph_input = model.graph.input[0].name
    annotated = annotated_integer_type(model, graph_input)
    if chain.input_quant is not None:
        grid = quant_grid(model, chain.input_quant, "input quantizer")
        assumed = None
    elif annotated is not None and input_type is None:  # FINN-ONNX: the input's datatype annotation
        grid = annotated_grid(annotated)
        assumed = f"{annotated.name} (the graph input's datatype annotation)"
    else:
        assumed = input_type or DEFAULT_INPUT_TYPE
        spec = parse_fixed_type(assumed)
        grid = Grid(spec, 2.0**spec.exp)
    input_shape = list(model.get_tensor_shape(graph_input) or [])[1:]
    head = subgraph(model, chain.head, graph_input, chain.head_output if chain.head else graph_input)
    layers, in_grid, shift_output = [], grid, False
    for i, stage in enumerate(chain.stages):
        where = f"layer {i} ({describe(stage.dense)})"
        w_int, s_w, w_bits = _weight_ints(model, stage)
        out_grid = quant_grid(model, stage.quant, f"layer {i} activation") if stage.quant is not None else None
        layer = None if force_thresholds and out_grid is not None else _shift_layer(
            model, stage, w_int, s_w, w_bits, in_grid, out_grid)
        shift_output = layer is not None
        if layer is None and out_grid is not None:
            layer = _threshold_layer(model, stage, w_int, s_w, w_bits, in_grid, out_grid, where)
        if layer is None:  # the output layer's accumulators; the float affine goes to software
            w_exp = _weight_exp(s_w)
            layer = IntLayer(w_int, np.zeros(len(s_w), np.int64), w_bits, w_exp, in_grid.spec.exp + w_exp, None)
        layers.append(layer)
        if out_grid is None:
            output, tail_nodes = _output_map(chain, stage, layer, w_int, s_w, in_grid, shift_output)
        else:
            in_grid = out_grid
            output = OutputMap([out_grid.scale] * len(s_w), out_grid.mult, _listed(out_grid.offset))
            tail_nodes = list(chain.output_tail)
    out_name = model.graph.output[0].name
    tail_input = (next(t for t in tail_nodes[0].input if model.get_initializer(t) is None) if tail_nodes
                  else out_name)
    tail = subgraph(model, tail_nodes, tail_input, out_name)
    ends = SoftwareEnds(input_shape, InputGrid(grid.scale, grid.mult, _listed(grid.offset),
                                               chain.input_quant is not None, assumed, grid.rounding),
                        output, head, tail, _description(chain, tail_nodes, output, assumed))
    return IntModel(grid.spec, layers, ends)


def _output_map(chain: Chain, stage: Stage, layer: IntLayer, w_int, s_w, in_grid: Grid,
                shift_output: bool) -> tuple[OutputMap, list]:
    """How the output layer's accumulators become the graph's floats (in software)."""
    wide = wide_sums(in_grid, w_int, s_w, stage.bias)
    if shift_output:  # the firmware added the integer bias; the output is acc * 2**acc_exp exactly
        return OutputMap([2.0**layer.acc_exp] * len(s_w), wide=wide), list(chain.output_tail)
    offset = in_grid.accumulator_offset(w_int)
    bias = None if stage.bias is None else np.asarray(stage.bias, np.float32).tolist()
    scales = in_grid.scale * s_w
    exact = (bias is None and not offset.any() and not stage.tail
             and all(pot_exponent(s) is not None for s in scales))
    return (OutputMap(scales.tolist(), in_grid.mult, offset.tolist(), bias, exact, wide),
            list(stage.tail) + list(chain.output_tail))


def _listed(value):
    return np.asarray(value, np.float64).tolist() if np.ndim(value) else float(value)


def _description(chain: Chain, tail_nodes: list, output: OutputMap, assumed: str | None) -> dict:
    return {
        "software_before_firmware": [f"{n.name} ({n.op_type})" for n in chain.head],
        "input_quantized_by": (f"{chain.input_quant.name} ({chain.input_quant.op_type}), in software"
                               if chain.input_quant is not None else None),
        "input_type_assumed": assumed,
        "software_after_firmware": (["integers to float32 (scale" + (", bias" if output.bias else "") + ")"]
                                    + [f"{n.name} ({n.op_type})" for n in tail_nodes]),
    }
