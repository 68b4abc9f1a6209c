"""Derive one requantization of the IntGraph exactly: an integer tensor, the graph's per-channel
float ops after it, and the quantizer they end in -> a shift-and-clip or a thresholds op.

The transfer g_c(a) is the graph's own nodes (intmodel.subgraph, run by qonnx in float32) on
the tensor's float values (graph.tensor_values: the exact sum rounded once, the float bias, an
average's division), shaped [M, C, 1, 1] (or [M, C]) so that per-channel constants broadcast.
Thresholds come from derive_thresholds (bisection over the reachable integers, checked at every
boundary), exactly as build._threshold_layer derives a dense layer's.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from qapflow.intmodel.build import MAX_THRESHOLDS_PER_LAYER, SHIFT_ROUNDING, Grid, pot_exponent, quant_grid
from qapflow.intmodel.chain import UnsupportedGraph, describe
from qapflow.intmodel.graph import Accumulator, Tensor, grid_integers, tensor_values
from qapflow.intmodel.model import NotBitExact
from qapflow.intmodel.ops import ShiftRequant, ThresholdRequant
from qapflow.intmodel.subgraph import run, subgraph
from qapflow.intmodel.thresholds import channel_directions, derive_thresholds

PASS_THROUGH = ("Identity",)
FLOAT32_EXACT = 1 << 24


def check_per_channel(model: ModelWrapper, nodes: list, rank: int) -> None:
    """The pipeline's constants vary at most along the channel axis (axis 1), so the graph's ops
    can be evaluated on one value per channel."""
    for node in nodes:
        if node.op_type in ("BatchNormalization", "MultiThreshold"):
            continue  # per channel by definition
        for name in node.input[1:] if node.op_type in ("Quant", "BipolarQuant") else node.input:
            value = model.get_initializer(name) if name else None
            if value is None or np.ndim(value) == 0:
                continue
            shape = [1] * (rank - np.ndim(value)) + list(np.shape(value))
            if any(d != 1 for i, d in enumerate(shape) if i != 1) or len(shape) > rank:
                raise UnsupportedGraph(f"{describe(node)}: its constant {name} of shape {list(np.shape(value))} "
                                       "varies within a channel; qapflow takes per-tensor or per-channel "
                                       "constants between a linear op and its quantizer")


def transfer_of(model: ModelWrapper, source: Tensor, pipeline: list, quant, out_grid: Grid):
    """g(a [M, C]) -> the quantizer's integers [M, C], through the graph's own nodes."""
    rank = len(model.get_tensor_shape(source.name) or [0, 0])
    check_per_channel(model, pipeline + [quant], rank)
    proto = subgraph(model, pipeline + [quant], source.name, quant.output[0])

    def g(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, np.int64)
        shaped = a.reshape(a.shape + (1,) * (rank - 2))
        return grid_integers(out_grid, run(proto, tensor_values(source.grid, shaped))).reshape(a.shape)
    return g


def _exponent_of(source: Tensor, lo, hi) -> int | None:
    """e where the tensor's float value is exactly int * 2**e for every reachable integer."""
    grid = source.grid
    if isinstance(grid, Accumulator):
        exps = {pot_exponent(s) for s in grid.scale}
        if grid.divisor != 1 or grid.bias is not None or len(exps) != 1 or None in exps:
            return None
        if max(max(abs(int(v)) for v in lo), max(abs(int(v)) for v in hi)) >= FLOAT32_EXACT:
            return None
        return exps.pop()
    return grid.exp if grid.plain_pot else None


def _shift_form(source: Tensor, bounds, pipeline: list, quant, out_grid: Grid, name: str) -> ShiftRequant | None:
    ops = [n.op_type for n in pipeline if n.op_type not in PASS_THROUGH]
    if quant.op_type != "Quant" or any(op != "Relu" for op in ops) or len(ops) > 1:
        return None
    if not (out_grid.plain_pot and out_grid.rounding in SHIFT_ROUNDING):
        return None
    exp = _exponent_of(source, *bounds)
    if exp is None:
        return None
    return ShiftRequant(name, [source.name], quant.output[0], exp, out_grid.exp, bool(ops), out_grid.spec.lo,
                        out_grid.spec.hi)


def _agrees(op, g, lo: np.ndarray, hi: np.ndarray, points: int = 4096) -> bool:
    """The shift form equals the graph's ops on the ends, evenly spaced and random integers
    of the range (every integer where the range is small)."""
    rng = np.random.default_rng(0)
    span = hi - lo
    steps = np.linspace(0.0, 1.0, points)[:, None]
    a = np.concatenate([np.round(lo + steps * span), lo + np.floor(rng.random((points, len(lo))) * (span + 1))])
    a = np.clip(a, lo, hi).astype(np.int64)
    return bool(np.array_equal(op.evaluate(a), g(a)))


def requantize(model: ModelWrapper, source: Tensor, bounds, pipeline: list, quant, where: str,
               force_thresholds: bool = False):
    """(the requantization op, its output grid) from `source` through `pipeline` to `quant`."""
    out_grid = quant_grid(model, quant, where)
    name = "+".join([n.name for n in pipeline] + [quant.name])
    g = transfer_of(model, source, pipeline, quant, out_grid)
    lo, hi = (np.array([int(v) for v in b], dtype=np.int64) for b in bounds)
    shift = None if force_thresholds else _shift_form(source, bounds, pipeline, quant, out_grid, name)
    if shift is not None and _agrees(shift, g, lo, hi):
        return shift, out_grid
    levels = out_grid.spec.hi - out_grid.spec.lo
    if levels * len(lo) > MAX_THRESHOLDS_PER_LAYER:
        raise NotBitExact(f"{where}: {describe(quant)} has {levels + 1} levels on {len(lo)} channels, "
                          f"{levels * len(lo)} thresholds (at most {MAX_THRESHOLDS_PER_LAYER}); use fewer "
                          "activation bits or power-of-two scales (shift-and-clip form)")
    signs = channel_directions(g, lo, hi)
    lo_hw, hi_hw = np.where(signs > 0, lo, -hi), np.where(signs > 0, hi, -lo)
    thresholds = derive_thresholds(lambda a: g(a * signs), lo_hw, hi_hw, out_grid.spec.lo, out_grid.spec.hi, where)
    return ThresholdRequant(name, [source.name], quant.output[0], signs, thresholds), out_grid
