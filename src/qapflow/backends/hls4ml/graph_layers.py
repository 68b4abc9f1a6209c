"""IntGraph -> hls4ml layer list: convolutions, pooling, residual adds and concatenation with
hls4ml's own layers, every tensor holding the IntGraph's integers exactly.

hls4ml works channels last; the IntGraph channels first. Each hls4ml tensor is recorded with
`order`: element i of its flat (channels-last) data is element order[i] of the IntGraph
tensor's flat (channels-first) data. Reshape and Transpose are wiring: they change `order`,
not the data (an hls4ml Reshape where the shape changes). Convolution and pooling take their
input channels last; a Dense after a flatten takes its weight columns in the tensor's order.
What is mapped how, all exact on integers (no fraction bits anywhere):
- conv: hls4ml Conv1D/Conv2D. Groups and dilation, which hls4ml's conv lacks, become a dense
  kernel with zeros (block diagonal across groups, spaced by the dilation); padding is u = 0.
- units u = mult * q + offset and an Add's coefficients: an hls4ml BatchNormalization with
  integer scale and bias in front of the consumer, where they are not 1 and 0.
- maxpool: hls4ml Pooling1D/2D (its padding never wins, as ONNX's); sumpool: a conv with a
  one-per-channel kernel of ones (hls4ml's average pooling divides; the IntGraph keeps the
  division in the next requantization, so the sum must stay an integer).
- add: hls4ml Merge (add); concat: hls4ml Concatenate along channels, pairwise.
- shift / thresholds: qapflow's requantization layer (requant.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qapflow.backends.hls4ml.requant import requant_layer
from qapflow.common.errors import QapflowError
from qapflow.intmodel.graph import IntGraph


@dataclass
class HlsTensor:
    name: str  # the hls4ml layer whose output it is
    shape: list[int]  # hls4ml's per-sample shape
    order: np.ndarray  # hls flat index -> IntGraph flat index
    lo: int
    hi: int


def canonical_order(shape) -> np.ndarray:
    """The order of an IntGraph tensor [C, *S] laid out channels last [*S, C]."""
    shape = list(shape)
    idx = np.arange(int(np.prod(shape))).reshape(shape)
    return np.moveaxis(idx, 0, -1).reshape(-1) if len(shape) > 1 else idx.reshape(-1)


def channels_last(shape) -> list[int]:
    return [*shape[1:], shape[0]] if len(shape) > 1 else list(shape)


def bits_for(lo: int, hi: int) -> int:
    """Width of a signed integer type holding [lo, hi]."""
    return max(2, max(int(hi).bit_length(), (-int(lo) - 1).bit_length() if lo < 0 else 0) + 1)


def int_type(lo: int, hi: int) -> str:
    if lo >= 0:
        width = max(1, int(hi).bit_length())
        return f"ufixed<{width},{width}>"
    width = bits_for(lo, hi)
    return f"fixed<{width},{width}>"


class GraphLayers:
    """Builds the layer list op by op; `layers` and `precision` are hls4ml's inputs."""

    def __init__(self, graph: IntGraph, stream: bool = False):
        self.graph = graph
        self.stream = stream
        self.bounds = graph.bounds()
        self.layers: list[dict] = []
        self.precision: dict[str, dict] = {}
        self.tensors: dict[str, HlsTensor] = {}
        self._count = 0

    # -- helpers -------------------------------------------------------------------
    def _name(self, kind: str) -> str:
        self._count += 1
        return f"{kind}_{self._count}"

    def _add(self, layer: dict, result: str, **types) -> str:
        self.layers.append(layer)
        self.precision[layer["name"]] = {"result": result, **types}
        return layer["name"]

    def _int_bounds(self, tensor: str) -> tuple[int, int]:
        lo, hi = self.bounds[tensor]
        return int(min(lo)), int(max(hi))

    def _channel_map(self, t: HlsTensor, ig_shape) -> np.ndarray:
        """IntGraph channel of each hls channel (channels last), checked for every element."""
        per_channel = int(np.prod(ig_shape[1:])) if len(ig_shape) > 1 else 1
        chan = t.order // per_channel
        c = t.shape[-1]
        mapping = chan[:c]
        if not np.array_equal(chan, np.tile(mapping, len(chan) // c)):
            raise QapflowError(f"{t.name}: the hls4ml backend needs this tensor's channels on its last axis")
        return mapping

    def _reshaped(self, t: HlsTensor, shape: list[int]) -> HlsTensor:
        if list(t.shape) == list(shape):
            return t
        name = self._name("reshape")
        self._add({"class_name": "Reshape", "name": name, "inputs": [t.name], "target_shape": list(shape)},
                  int_type(t.lo, t.hi))
        return HlsTensor(name, list(shape), t.order, t.lo, t.hi)

    def _wired(self, t: HlsTensor, order: np.ndarray, ig_shape) -> HlsTensor:
        """t's data with a new order: channels last where it is the canonical order, else flat."""
        moved = HlsTensor(t.name, t.shape, order, t.lo, t.hi)
        if np.array_equal(order, canonical_order(ig_shape)):
            return self._reshaped(moved, channels_last(ig_shape))
        return self._reshaped(moved, [len(order)])

    def _spatial(self, op, t: HlsTensor) -> HlsTensor:
        shape = self.graph.tensors[op.inputs[0]].shape
        if not np.array_equal(t.order, canonical_order(shape)):
            raise QapflowError(f"{op.name} ({op.kind}): its input is not channels first in the integer graph; "
                               "the hls4ml backend takes convolutions and pooling on such tensors only")
        return self._reshaped(t, channels_last(shape))

    def _units(self, t: HlsTensor, units, coeff, ig_shape) -> HlsTensor:
        """coeff * (mult * q + offset) per channel, as an hls4ml BatchNormalization."""
        c = t.shape[-1]
        cmap = self._channel_map(t, ig_shape)
        offset = np.broadcast_to(np.asarray(units.offset, np.int64), (ig_shape[0],))[cmap]
        coeff = np.broadcast_to(np.asarray(coeff, np.int64), (ig_shape[0],))[cmap]
        scale, bias = coeff * int(units.mult), coeff * offset
        if np.all(scale == 1) and not bias.any():
            return t
        ends = [int(s) * v + int(b) for s, b in zip(scale, bias) for v in (t.lo, t.hi)]
        lo, hi = min(ends + [0]), max(ends + [0])
        name = self._name("units")
        self._add({"class_name": "BatchNormalization", "name": name, "inputs": [t.name], "n_in": int(np.prod(t.shape)),
                   "n_filt": c, "scale_data": scale.astype(np.float64), "bias_data": bias.astype(np.float64)},
                  int_type(lo, hi), scale=int_type(int(scale.min()), int(scale.max())),
                  bias=int_type(min(0, int(bias.min())), max(0, int(bias.max()))))
        return HlsTensor(name, t.shape, t.order, lo, hi)

    @staticmethod
    def _padded_shape(ig_shape, pads) -> list[int]:
        n = len(ig_shape) - 1
        return [ig_shape[0]] + [ig_shape[1 + i] + pads[i] + pads[i + n] for i in range(n)]

    def _zero_padded(self, t: HlsTensor, ig_shape, pads) -> HlsTensor:
        """An explicit hls4ml ZeroPadding layer. In io_stream, hls4ml inserts its own in front
        of a padded conv but, after a branch (its Clone), leaves the conv reading the unpadded
        stream (hls4ml 1.3); a padding layer of ours is wired like any other."""
        out_shape = self._padded_shape(ig_shape, pads)
        name = self._name("pad")
        layer = {"class_name": f"ZeroPadding{len(ig_shape) - 1}D", "name": name, "inputs": [t.name],
                 "data_format": "channels_last", "n_chan": ig_shape[0]}
        if len(ig_shape) == 2:
            layer.update(in_width=ig_shape[1], out_width=out_shape[1], pad_left=pads[0], pad_right=pads[1])
        else:
            layer.update(in_height=ig_shape[1], in_width=ig_shape[2], out_height=out_shape[1],
                         out_width=out_shape[2], pad_top=pads[0], pad_left=pads[1], pad_bottom=pads[2],
                         pad_right=pads[3])
        lo, hi = min(t.lo, 0), max(t.hi, 0)
        self._add(layer, int_type(lo, hi))
        return HlsTensor(name, channels_last(out_shape), canonical_order(out_shape), lo, hi)

    def _accum(self, weight_abs_rows: np.ndarray, t: HlsTensor, bias: np.ndarray, out: str) -> str:
        """A type for every partial sum: sum |w| * max |u| + |b| per output, and the result."""
        reach = max(abs(t.lo), abs(t.hi))
        worst = max(int(r) * reach + abs(int(b)) for r, b in zip(weight_abs_rows, bias))
        lo, hi = self._int_bounds(out)
        return f"fixed<{bits_for(min(lo, -worst), max(hi, worst))},{bits_for(min(lo, -worst), max(hi, worst))}>"

    # -- ops -------------------------------------------------------------------------
    def input_layer(self) -> None:
        g = self.graph
        shape = g.tensors[g.input].shape
        order = canonical_order(shape)
        consumers = [op for op in g.ops if g.input in op.inputs]
        if consumers and all(op.kind == "transpose" for op in consumers):
            # a channels-last model: the input port holds the transposed tensor's channels-last order
            op = consumers[0]
            out_shape = g.tensors[op.output].shape
            moved = np.arange(int(np.prod(shape))).reshape(shape).transpose(op.perm).reshape(-1)
            order = moved[canonical_order(out_shape)]
        spec = g.tensors[g.input].grid.spec
        hls_shape = channels_last(shape) if np.array_equal(order, canonical_order(shape)) else [len(order)]
        self._add({"class_name": "InputLayer", "name": "x_in", "input_shape": hls_shape}, int_type(spec.lo, spec.hi))
        self.tensors[g.input] = HlsTensor("x_in", hls_shape, order, spec.lo, spec.hi)

    def conv(self, op, t: HlsTensor, kernel: np.ndarray, bias: np.ndarray, pads, strides, ig_out=None) -> HlsTensor:
        """kernel [out, in, *k] dense (groups and dilation already expanded); ig_out: the
        output's IntGraph shape [C, *S] (the op's own by default)."""
        ig_in = self.graph.tensors[op.inputs[0]].shape
        ig_out = list(ig_out or self.graph.tensors[op.output].shape)
        t = self._spatial(op, self._units(t, op.units, 1, ig_in))
        dims = len(ig_in) - 1
        if self.stream and any(pads):
            t, ig_in, pads = self._zero_padded(t, ig_in, pads), self._padded_shape(ig_in, pads), [0] * len(pads)
        name = self._name("conv")
        layer = {"class_name": f"Conv{dims}D", "name": name, "inputs": [t.name], "data_format": "channels_last",
                 "n_chan": ig_in[0], "n_filt": ig_out[0], "bias_data": bias.astype(np.float64),
                 "weight_data": np.moveaxis(kernel, (0, 1), (-1, -2)).astype(np.float64)}  # [*k, in, out]
        if dims == 1:
            layer.update(in_width=ig_in[1], out_width=ig_out[1], filt_width=kernel.shape[2],
                         stride_width=strides[0], pad_left=pads[0], pad_right=pads[1])
        else:
            layer.update(in_height=ig_in[1], in_width=ig_in[2], out_height=ig_out[1], out_width=ig_out[2],
                         filt_height=kernel.shape[2], filt_width=kernel.shape[3], stride_height=strides[0],
                         stride_width=strides[1], pad_top=pads[0], pad_left=pads[1], pad_bottom=pads[2],
                         pad_right=pads[3])
        acc = self._accum(np.abs(kernel).reshape(len(kernel), -1).sum(axis=1), t, bias, op.output)
        lo, hi = self._int_bounds(op.output)
        self._add(layer, acc, accum=acc, weight=int_type(min(0, int(kernel.min())), max(0, int(kernel.max()))),
                  bias=int_type(min(0, int(bias.min())), max(0, int(bias.max()))))
        return HlsTensor(name, channels_last(ig_out), canonical_order(ig_out), lo, hi)

    def dense(self, op, t: HlsTensor) -> HlsTensor:
        ig_in = self.graph.tensors[op.inputs[0]].shape
        t = self._units(t, op.units, 1, ig_in)
        t = self._reshaped(t, [len(t.order)])
        weight = op.weight[:, t.order]  # the columns in the order the hls4ml tensor holds them
        name = self._name("dense")
        layer = {"class_name": "Dense", "name": name, "inputs": [t.name], "n_in": weight.shape[1],
                 "n_out": weight.shape[0], "weight_data": weight.T.astype(np.float64),
                 "bias_data": op.bias.astype(np.float64)}
        acc = self._accum(np.abs(weight).sum(axis=1), t, op.bias, op.output)
        lo, hi = self._int_bounds(op.output)
        self._add(layer, acc, accum=acc, weight=int_type(min(0, int(weight.min())), max(0, int(weight.max()))),
                  bias=int_type(min(0, int(op.bias.min())), max(0, int(op.bias.max()))))
        return HlsTensor(name, [weight.shape[0]], np.arange(weight.shape[0]), lo, hi)

    def maxpool(self, op, t: HlsTensor) -> HlsTensor:
        ig_in, ig_out = self.graph.tensors[op.inputs[0]].shape, self.graph.tensors[op.output].shape
        if any(d != 1 for d in op.dilations):
            raise QapflowError(f"{op.name} (MaxPool): dilations {op.dilations}; hls4ml's pooling has none")
        t = self._spatial(op, t)
        dims = len(ig_in) - 1
        _, extra = _geometry(ig_in[1:], op.kernel, op.strides, op.pads, op.dilations, op.ceil_mode)
        pads = list(op.pads[:dims]) + [op.pads[dims + i] + extra[i] for i in range(dims)]  # ceil mode: more end pad
        if self.stream:
            if list(op.kernel) != list(op.strides):
                raise QapflowError(f"{op.name} (MaxPool): kernel {op.kernel}, strides {op.strides}; hls4ml's "
                                   "streaming pooling takes strides equal to the kernel (use io parallel)")
            if any(pads):
                if t.lo < 0:  # a zero pad would win over negative values; ONNX pads with -inf
                    raise QapflowError(f"{op.name} (MaxPool): padding {pads} on values that can be negative; "
                                       "hls4ml's streaming pooling has no padding (use io parallel)")
                t, ig_in, pads = self._zero_padded(t, ig_in, pads), self._padded_shape(ig_in, pads), [0] * len(pads)
        name = self._name("maxpool")
        layer = {"class_name": f"MaxPooling{dims}D", "name": name, "inputs": [t.name], "data_format": "channels_last",
                 "n_filt": ig_in[0], "count_pad": False}
        if dims == 1:
            layer.update(n_in=ig_in[1], n_out=ig_out[1], pool_width=op.kernel[0], stride_width=op.strides[0],
                         pad_left=pads[0], pad_right=pads[1])
        else:
            layer.update(in_height=ig_in[1], in_width=ig_in[2], out_height=ig_out[1], out_width=ig_out[2],
                         pool_height=op.kernel[0], pool_width=op.kernel[1], stride_height=op.strides[0],
                         stride_width=op.strides[1], pad_top=pads[0], pad_left=pads[1], pad_bottom=pads[2],
                         pad_right=pads[3])
        kind = int_type(t.lo, t.hi)
        self._add(layer, kind, accum=kind)
        return HlsTensor(name, channels_last(ig_out), canonical_order(ig_out), t.lo, t.hi)

    def sumpool(self, op, t: HlsTensor) -> HlsTensor:
        ig_in = self.graph.tensors[op.inputs[0]].shape
        c, dims = ig_in[0], len(ig_in) - 1
        kernel_size = list(op.kernel) if op.kernel is not None else list(ig_in[1:])
        strides = list(op.strides) if op.strides is not None else [1] * dims
        pads = list(op.pads) if op.pads is not None else [0] * (2 * dims)
        ones = np.zeros((c, c, *kernel_size), np.int64)
        ones[np.arange(c), np.arange(c)] = 1
        if op.kernel is None:  # global: one window over the whole extent, then the graph's own shape
            out = self.conv(op, t, ones, np.zeros(c, np.int64), pads, strides, [c] + [1] * dims)
            return self._wired(out, out.order, self.graph.tensors[op.output].shape)
        return self.conv(op, t, ones, np.zeros(c, np.int64), pads, strides)

    def add(self, op, a: HlsTensor, b: HlsTensor) -> HlsTensor:
        ig = self.graph.tensors[op.inputs[0]].shape
        if not np.array_equal(a.order, b.order):
            raise QapflowError(f"{op.name} (Add): its two inputs are laid out differently in hls4ml")
        a = self._units(a, op.units[0], op.coeff_a, ig)
        b = self._units(b, op.units[1], op.coeff_b, self.graph.tensors[op.inputs[1]].shape)
        if a.name == b.name:
            raise QapflowError(f"{op.name} (Add): a tensor added to itself; hls4ml's Merge takes two layers")
        lo, hi = self._int_bounds(op.output)
        reach = bits_for(min(lo, a.lo + b.lo), max(hi, a.hi + b.hi))
        name = self._name("add")
        self._add({"class_name": "Merge", "op": "add", "name": name, "inputs": [a.name, b.name]},
                  f"fixed<{reach},{reach}>")
        return HlsTensor(name, a.shape, a.order, lo, hi)

    def concat(self, op, parts: list[HlsTensor]) -> HlsTensor:
        shapes = [self.graph.tensors[n].shape for n in op.inputs]
        parts = [self._spatial(op, p) if len(s) > 1 else self._reshaped(p, [len(p.order)])
                 for p, s in zip(parts, shapes)]
        if op.units:  # inputs on different grids: aligned on one unit (ops/merge.py)
            parts = [self._units(p, u, c, s) for p, u, c, s in zip(parts, op.units, op.coeffs, shapes)]
        if any(not np.array_equal(p.order, canonical_order(s)) for p, s in zip(parts, shapes)):
            raise QapflowError(f"{op.name} (Concat): an input is not in channel order for hls4ml")
        out_shape = self.graph.tensors[op.output].shape
        merged, sizes = parts[0], [shapes[0][0]]
        for part, shape in zip(parts[1:], shapes[1:]):
            sizes.append(shape[0])
            name = self._name("concat")
            lo, hi = min(merged.lo, part.lo), max(merged.hi, part.hi)
            rank = len(merged.shape)
            self._add({"class_name": "Concatenate", "op": f"concatenate{rank}d", "axis": -1, "name": name,
                       "inputs": [merged.name, part.name]}, int_type(lo, hi))
            merged = HlsTensor(name, [*merged.shape[:-1], sum(sizes)], None, lo, hi)
        merged.order = canonical_order(out_shape)
        return merged

    def requant(self, op, t: HlsTensor) -> HlsTensor:
        ig = self.graph.tensors[op.inputs[0]].shape
        cmap = self._channel_map(t, ig)
        lo, hi = self._int_bounds(op.output)
        values = [t.lo, t.hi, lo, hi]
        if op.kind == "thresholds":
            values += [int(op.thresholds.values.min()), int(op.thresholds.values.max())]
        width = bits_for(min(values), max(values)) + 2 + max(0, op.in_exp - op.out_exp if op.kind == "shift" else 0)
        name = self._name(op.kind)
        self._add(requant_layer(name, [t.name], op, width, cmap), int_type(lo, hi))
        return HlsTensor(name, t.shape, t.order, lo, hi)

    def wiring(self, op, t: HlsTensor) -> HlsTensor:
        ig_in, ig_out = self.graph.tensors[op.inputs[0]].shape, self.graph.tensors[op.output].shape
        if op.kind == "reshape":
            return self._wired(t, t.order, ig_out)
        # IntGraph flat index k of the input is index inverse[k] of the output
        moved = np.arange(int(np.prod(ig_in))).reshape(ig_in).transpose(op.perm).reshape(-1)
        inverse = np.empty_like(moved)
        inverse[moved] = np.arange(len(moved))
        return self._wired(t, inverse[t.order], ig_out)

    # -- the whole graph -----------------------------------------------------------
    def build(self) -> "GraphLayers":
        self.input_layer()
        for op in self.graph.ops:
            ins = [self.tensors[n] for n in op.inputs]
            self.tensors[op.output] = self._apply(op, ins)
        return self

    def _apply(self, op, ins: list[HlsTensor]) -> HlsTensor:
        kind = op.kind
        if kind == "conv":
            kernel = expanded_kernel(op)
            return self.conv(op, ins[0], kernel, op.bias, op.pads, op.strides)
        if kind == "dense":
            return self.dense(op, ins[0])
        if kind == "maxpool":
            return self.maxpool(op, ins[0])
        if kind == "sumpool":
            return self.sumpool(op, ins[0])
        if kind == "add":
            return self.add(op, *ins)
        if kind == "concat":
            return self.concat(op, ins)
        if kind in ("reshape", "transpose"):
            return self.wiring(op, ins[0])
        if kind in ("shift", "thresholds"):
            return self.requant(op, ins[0])
        raise QapflowError(f"{op.name} ({kind}): the hls4ml backend has no layer for it")

    @property
    def output(self) -> HlsTensor:
        return self.tensors[self.graph.output]


def _geometry(*args):
    from qapflow.intmodel.ops.base import window_geometry

    return window_geometry(*args)


def expanded_kernel(op) -> np.ndarray:
    """A conv's weight [out, in/groups, *k] as one dense kernel [out, in, *k']: zeros between
    the groups' blocks and between dilated taps (hls4ml's Conv has neither groups nor dilation)."""
    c_out, g_in = op.weight.shape[:2]
    groups, dil = op.groups, list(op.dilations)
    k = list(op.weight.shape[2:])
    span = [d * (n - 1) + 1 for d, n in zip(dil, k)]
    out = np.zeros((c_out, g_in * groups, *span), np.int64)
    g_out = c_out // groups
    taps = tuple(slice(None, None, d) for d in dil)
    for g in range(groups):
        out[(slice(g * g_out, (g + 1) * g_out), slice(g * g_in, (g + 1) * g_in)) + taps] = \
            op.weight[g * g_out:(g + 1) * g_out]
    return out
