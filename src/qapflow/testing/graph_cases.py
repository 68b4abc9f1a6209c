"""Quantized convolutional and branching networks written with the onnx helper API (QONNX).

For the IntGraph's tests (and, later, the graph benchmark): 1D or 2D convolutions with stride,
padding, dilation, groups and depthwise, batch norm left unfolded, power-of-two or float
scales, an input with a zero point or bipolar, a channels-last input with a Transpose, max,
average and global average pooling (AveragePool / GlobalAveragePool / ReduceMean), residual
adds of two grids, a Concat of two branches on one shared grid or on two, then Flatten and a dense head.
Built in the style of mlp_cases (its _Graph writes the nodes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from onnx import TensorProto, helper

from qapflow.testing.mlp_cases import _Graph


@dataclass
class ConvCase:
    dims: int = 2  # 1: Conv1d over [C, L]; 2: Conv2d over [C, H, W]
    channels: int = 2
    size: int = 6
    input_bits: int = 4
    pot: bool = False
    zero_point: int = 0  # > 0: an unsigned input quantizer with this zero point
    bipolar_input: bool = False
    channels_last: bool = False  # the input is [.., C] last; a Transpose after the input quantizer
    blocks: list = field(default_factory=list)  # (kind, {params}); kinds in BLOCKS
    outputs: int = 3
    softmax: bool = False
    seed: int = 0


BLOCKS = ("conv", "maxpool", "avgpool", "gap", "reducemean", "residual", "concat")


class _ConvGraph(_Graph):
    """mlp_cases' graph writer (its .case: the default quantizer formats) and the conv case."""

    def __init__(self, case: ConvCase):
        super().__init__(np.random.default_rng(case.seed))
        self.conv = case

    def act(self, x: str, bits: int, relu: bool, scale=None) -> tuple[str, float]:
        scale = float(self.scale(self.conv.pot, 4.0 / 2**bits)) if scale is None else scale
        if relu:
            x = self.node("Relu", [x])
        return self.quant(x, bits, scale, not relu), scale

    def conv_layer(self, x: str, c_in: int, out: int, k: int, stride=1, pad=0, dilation=1, groups=1, w_bits=4,
                   bias=True, bn=False) -> str:
        d = self.conv.dims
        w = self.rng.normal(size=(out, c_in // groups) + (k,) * d) / np.sqrt(k**d * c_in / groups)
        s_shape = (out,) + (1,) * (d + 1) if not self.conv.pot else ()
        ws = self.scale(self.conv.pot, 2.0 / 2 ** max(w_bits - 1, 1), s_shape)
        wq = self.quant(self.const(w), w_bits, ws, True, narrow=w_bits > 1)
        inputs = [x, wq]
        if bias:
            b = self.rng.normal(size=out) * 0.3
            if self.conv.pot:  # on a coarse power-of-two grid: folded into the integers where exact
                b = np.round(b * 8) / 8
            inputs.append(self.const(b))
        y = self.node("Conv", inputs, kernel_shape=[k] * d, strides=[stride] * d, pads=[pad] * 2 * d,
                      dilations=[dilation] * d, group=groups)
        if bn:
            y = self.node("BatchNormalization", [y, self.const(self.rng.uniform(-1.5, 1.5, out)),
                                                 self.const(self.rng.normal(size=out) * 0.2),
                                                 self.const(self.rng.normal(size=out) * 0.3),
                                                 self.const(self.rng.uniform(0.5, 2.0, out))], epsilon=1e-3)
        return y


def build_conv_case(case: ConvCase):
    g = _ConvGraph(case)
    d = case.dims
    size = [case.size] * d
    in_shape = [1, *size, case.channels] if case.channels_last else [1, case.channels, *size]
    scale = float(g.scale(case.pot, 4.0 / 2 ** max(case.input_bits - 1, 1)))
    if case.bipolar_input:
        x = g.quant("x", 1, scale, True)
    else:
        x = g.quant("x", case.input_bits, scale, not case.zero_point, zero_point=float(case.zero_point))
    if case.channels_last:
        x = g.node("Transpose", [x], perm=[0, d + 1, *range(1, d + 1)])
    c = case.channels
    for kind, p in case.blocks:
        if kind == "conv":
            y = g.conv_layer(x, c, p.get("out", 4), p.get("k", 3), p.get("stride", 1), p.get("pad", 0),
                             p.get("dilation", 1), p.get("groups", 1), p.get("w_bits", 4), p.get("bias", True),
                             p.get("bn", False))
            x, _ = g.act(y, p.get("bits", 4), p.get("relu", True))
            c = p.get("out", 4)
            size = [(s + 2 * p.get("pad", 0) - p.get("dilation", 1) * (p.get("k", 3) - 1) - 1) // p.get("stride", 1) + 1
                    for s in size]
        elif kind == "maxpool":
            k = p.get("k", 2)
            x = g.node("MaxPool", [x], kernel_shape=[k] * d, strides=[p.get("stride", k)] * d,
                       pads=[p.get("pad", 0)] * 2 * d)
            size = [(s + 2 * p.get("pad", 0) - k) // p.get("stride", k) + 1 for s in size]
        elif kind == "avgpool":
            k = p.get("k", 2)
            y = g.node("AveragePool", [x], kernel_shape=[k] * d, strides=[p.get("stride", k)] * d,
                       pads=[p.get("pad", 0)] * 2 * d, count_include_pad=1)
            x, _ = g.act(y, p.get("bits", 5), False)
            size = [(s + 2 * p.get("pad", 0) - k) // p.get("stride", k) + 1 for s in size]
        elif kind in ("gap", "reducemean"):
            y = (g.node("GlobalAveragePool", [x]) if kind == "gap" else
                 g.node("ReduceMean", [x], axes=list(range(2, d + 2)), keepdims=1))
            x, _ = g.act(y, p.get("bits", 5), False)
            size = [1] * d
        elif kind == "residual":  # conv (same size) + the block's input, then a quantizer
            k = p.get("k", 3)
            y = g.conv_layer(x, c, c, k, pad=k // 2, bn=p.get("bn", False))
            y, _ = g.act(y, p.get("bits", 4), True)
            x, _ = g.act(g.node("Add", [y, x]), p.get("out_bits", 5), p.get("relu", False))
        elif kind == "concat":  # two branches on one shared grid, or (scale_b != 1) on two grids
            out, bits = p.get("out", 2), p.get("bits", 4)
            shared = float(g.scale(case.pot, 4.0 / 2**bits))
            a, _ = g.act(g.conv_layer(x, c, out, 1), bits, True, shared)
            b, _ = g.act(g.conv_layer(x, c, out, 3, pad=1), p.get("bits_b", bits), True,
                         float(np.float32(shared * p.get("scale_b", 1.0))))
            x = g.node("Concat", [a, b], axis=1)
            c = 2 * out
        else:
            raise ValueError(f"unknown block {kind!r}; known: {BLOCKS}")
    x = g.node("Flatten", [x], axis=1)
    n_flat = c * int(np.prod(size))
    w = g.rng.normal(size=(case.outputs, n_flat)) / np.sqrt(n_flat)
    wq = g.quant(g.const(w), 4, g.scale(case.pot, 0.25, (case.outputs, 1) if not case.pot else ()), True, narrow=True)
    x = g.node("Gemm", [x, wq, g.const(g.rng.normal(size=case.outputs) * 0.1)], transB=1)
    if case.softmax:
        x = g.node("Softmax", [x], axis=-1)
    graph = helper.make_graph(g.nodes, "conv_case", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], initializer=g.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                   helper.make_opsetid("qonnx.custom_op.general", 1)])


def random_conv_case(seed: int) -> ConvCase:
    """A random small conv net: 1D or 2D, 1-3 blocks of every kind, both scale kinds."""
    rng = np.random.default_rng(seed)
    dims = int(rng.integers(1, 3))
    case = ConvCase(dims=dims, channels=int(rng.integers(1, 4)), size=int(rng.integers(6, 10 if dims == 2 else 17)),
                    input_bits=int(rng.integers(2, 7)), pot=bool(rng.random() < 0.5),
                    zero_point=int(rng.integers(1, 3)) if rng.random() < 0.2 else 0,
                    bipolar_input=bool(rng.random() < 0.1), channels_last=bool(rng.random() < 0.2),
                    softmax=bool(rng.random() < 0.2), seed=seed)
    c, size = case.channels, case.size
    for _ in range(int(rng.integers(1, 4))):
        kind = str(rng.choice(["conv", "conv", "maxpool", "avgpool", "residual", "concat"]))
        if kind in ("conv", "maxpool", "avgpool") and size < 4:
            continue  # keep at least a few positions
        if kind == "conv":
            groups = int(rng.choice([1, c])) if c > 1 else 1
            out = groups * int(rng.integers(1, 3)) if groups > 1 else int(rng.integers(1, 5))
            p = dict(out=out, k=int(rng.integers(1, 4)), stride=int(rng.integers(1, 3)), pad=int(rng.integers(0, 2)),
                     dilation=int(rng.integers(1, 3)), groups=groups, bn=bool(rng.random() < 0.4),
                     bits=int(rng.integers(2, 6)), w_bits=int(rng.integers(2, 6)))
            if p["dilation"] * (p["k"] - 1) + 1 > size + 2 * p["pad"]:
                continue  # the kernel would not fit: no output position
            case.blocks.append(("conv", p))
            c = out
            size = (size + 2 * p["pad"] - p["dilation"] * (p["k"] - 1) - 1) // p["stride"] + 1
        elif kind in ("maxpool", "avgpool"):
            case.blocks.append((kind, dict(k=2, stride=int(rng.integers(1, 3)))))
            size = (size - 2) // case.blocks[-1][1]["stride"] + 1
        elif kind == "residual":
            case.blocks.append(("residual", dict(k=int(rng.choice([1, 3])), bits=int(rng.integers(2, 6)),
                                                 out_bits=int(rng.integers(3, 7)), bn=bool(rng.random() < 0.3))))
        else:
            p = dict(out=int(rng.integers(1, 3)), bits=int(rng.integers(2, 6)))
            if rng.random() < 0.5:  # the second branch on another grid: aligned on one unit
                p.update(bits_b=int(rng.integers(2, 6)),
                         scale_b=float(rng.choice([0.5, 2.0] if case.pot else [0.75, 3.0])))
            case.blocks.append(("concat", p))
            c = 2 * case.blocks[-1][1]["out"]
    if rng.random() < 0.5:
        case.blocks.append((str(rng.choice(["gap", "reducemean"])), dict(bits=int(rng.integers(3, 7)))))
    return case
