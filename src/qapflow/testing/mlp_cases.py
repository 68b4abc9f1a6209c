"""Quantized MLPs that qapflow did not train, written as other tools write them.

Used by the tests and by benchmarks/bench_any_mlp.py: QONNX graphs built with the onnx helper
API (Gemm or MatMul+Add, float or power-of-two scales, per-tensor or per-channel weight scales,
batch norm left unfolded, zero points, bipolar 1-bit tensors, weights as graph inputs, a
Flatten in front, a Softmax behind), and a random case generator over all of these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QONNX_DOMAIN = "qonnx.custom_op.general"
# thresholds grow with 2**bits per channel: float-scale activations are kept to 4,096 comparators
# a layer here so a sweep builds in minutes (qapflow itself takes up to
# intmodel.build.MAX_THRESHOLDS_PER_LAYER)
MAX_LEVELS_X_CHANNELS = 1 << 12


@dataclass
class LayerCase:
    width: int
    weight_bits: int
    act_bits: int  # ignored for the output layer unless output_quant
    per_channel: bool = False
    batch_norm: bool = False
    sparsity: float = 0.0


@dataclass
class MlpCase:
    n_in: int
    input_bits: int
    layers: list[LayerCase]
    pot_scales: bool = True
    matmul: bool = False  # MatMul + Add instead of Gemm
    output_quant: bool = False
    softmax: bool = False
    argmax: bool = False
    flatten_input: bool = False
    weights_as_inputs: bool = False
    zero_point: bool = False
    input_quant: bool = True  # False: a float input (the firmware's grid comes from --input-type)
    # formats other tools write (issue 22): QKeras' quantized biases (a Quant on each bias
    # constant), old Brevitas/FINN 1-bit weights and activations as Quant(bits=1, signed, narrow),
    # FINN's MultiThreshold activations, a Relu in front of the input quantizer (an unsigned
    # input), Quant nodes in an old or empty domain, bit widths computed by a constant subgraph
    quantized_bias: bool = False
    one_bit_as_quant: bool = False
    multithreshold: bool = False
    input_relu: bool = False
    quant_domain: str = "qonnx.custom_op.general"
    computed_bit_widths: bool = False
    seed: int = 0
    notes: list[str] = field(default_factory=list)


class _Graph:
    def __init__(self, rng, case: "MlpCase | None" = None):
        self.nodes, self.inits, self.rng, self.count = [], [], rng, 0
        self.case = case or MlpCase(1, 1, [])

    def const(self, value, name=None) -> str:
        self.count += 1
        name = name or f"c{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op, inputs, domain="", **attrs) -> str:
        self.count += 1
        out = f"t{self.count}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{self.count}", domain=domain, **attrs))
        return out

    def scale(self, pot: bool, magnitude: float, shape=()) -> np.ndarray:
        if pot:
            return np.full(shape, 2.0 ** np.round(np.log2(magnitude)), np.float32)
        return (magnitude * self.rng.uniform(0.6, 1.4, size=shape)).astype(np.float32)

    def bit_width(self, bits: int) -> str:
        if not self.case.computed_bit_widths:
            return self.const(float(bits))
        # as Brevitas writes accumulator-derived widths: a small constant subgraph
        return self.node("Add", [self.const(float(bits - 1)), self.const(1.0)])

    def quant(self, x: str, bits: int, scale, signed: bool, zero_point: float = 0.0, narrow=False) -> str:
        domain = self.case.quant_domain
        if bits == 1 and self.case.one_bit_as_quant:  # old Brevitas/FINN: bipolar as a 1-bit signed Quant
            return self.node("Quant", [x, self.const(np.mean(scale) if np.ndim(scale) else scale), self.const(0.0),
                                       self.bit_width(1)], domain=domain, signed=1, narrow=1, rounding_mode="ROUND")
        if bits == 1:
            return self.node("BipolarQuant", [x, self.const(np.mean(scale) if np.ndim(scale) else scale)],
                             domain=domain)
        return self.node("Quant", [x, self.const(scale), self.const(zero_point), self.bit_width(bits)],
                         domain=domain, signed=int(signed), narrow=int(narrow), rounding_mode="ROUND")

    def multithreshold(self, x: str, bits: int, width: int, signed: bool, scale: float, spread: float) -> str:
        """FINN's MultiThreshold: per channel 2**bits - 1 sorted float thresholds over +-spread, the
        count scaled by out_scale and shifted by out_bias (-2**(bits-1) steps when signed)."""
        levels = 2**bits - 1
        thresholds = np.sort(self.rng.uniform(-spread, spread, size=(width, levels)), axis=1)
        bias = -(2 ** (bits - 1)) * scale if signed else 0.0
        out_dtype = (f"INT{bits}" if bits > 1 else "BIPOLAR") if signed else f"UINT{bits}"
        return self.node("MultiThreshold", [x, self.const(thresholds)], domain=self.case.quant_domain,
                         out_dtype=out_dtype, out_scale=float(scale), out_bias=float(bias))


def build_case(case: MlpCase) -> onnx.ModelProto:
    rng = np.random.default_rng(case.seed)
    g = _Graph(rng, case)
    in_shape = [1, 1, case.n_in] if case.flatten_input else [1, case.n_in]
    x = "x"
    if case.flatten_input:
        x = g.node("Flatten", [x], axis=1)
    in_scale = float(g.scale(case.pot_scales, 4.0 / 2 ** max(case.input_bits - 1, 1)))
    if case.input_relu:  # an unsigned input: a Relu in front of the input quantizer
        x = g.node("Relu", [x])
    if case.input_quant:
        x = g.quant(x, case.input_bits, in_scale, not case.input_relu)
    n_in = case.n_in
    for i, layer in enumerate(case.layers):
        last = i == len(case.layers) - 1
        w = rng.normal(size=(layer.width, n_in)) / np.sqrt(n_in)
        w[rng.random(w.shape) < layer.sparsity] = 0.0
        w_scale_shape = (layer.width, 1) if layer.per_channel else ()
        w_scale = g.scale(case.pot_scales, 2.0 / 2 ** max(layer.weight_bits - 1, 1), w_scale_shape)
        if case.matmul:
            w, w_scale = w.T, (np.reshape(w_scale, (1, layer.width)) if layer.per_channel else w_scale)
        w_name = g.const(w, f"w{i}")
        wq = g.quant(w_name, layer.weight_bits, w_scale, True, narrow=layer.weight_bits > 1)
        bias = rng.normal(size=layer.width) * 0.3
        if case.pot_scales and not layer.per_channel:  # on the accumulator grid: shift-and-clip
            step = float(np.mean(w_scale)) * in_scale
            bias = np.round(bias / step) * step
        if case.quantized_bias:  # QKeras quantized_bits on the bias: a Quant on the constant
            on_grid = case.pot_scales and not layer.per_channel  # its own step is the accumulator's
            b_scale = float(np.mean(w_scale)) * in_scale if on_grid else float(g.scale(True, 2.0**-6))
            bias_in = g.quant(g.const(bias if on_grid else np.clip(bias, -2.0, 2.0)), 24 if on_grid else 8,
                              b_scale, True)
        else:
            bias_in = g.const(bias)
        if case.matmul:
            y = g.node("Add", [g.node("MatMul", [x, wq]), bias_in])
        else:
            y = g.node("Gemm", [x, wq, bias_in], transB=1)
        if layer.batch_norm:
            y = g.node("BatchNormalization", [y, g.const(rng.uniform(-1.5, 1.5, layer.width)),
                                              g.const(rng.normal(size=layer.width) * 0.2),
                                              g.const(rng.normal(size=layer.width) * 0.3),
                                              g.const(rng.uniform(0.5, 2.0, layer.width))], epsilon=1e-3)
        if not last or case.output_quant:
            bits = layer.act_bits
            signed = bits == 1 or (layer.batch_norm and not last and rng.random() < 0.3)
            if not signed:
                y = g.node("Relu", [y])
            zp = float(rng.integers(0, 3)) if case.zero_point and bits > 2 and not signed else 0.0
            in_scale = float(g.scale(case.pot_scales, 4.0 / 2**bits))
            if case.multithreshold:
                y = g.multithreshold(y, bits, layer.width, signed, in_scale, spread=2.0)
            else:
                y = g.quant(y, bits, in_scale, signed, zero_point=zp)
        x, n_in = y, layer.width
    if case.softmax:
        x = g.node("Softmax", [x], axis=-1)
    if case.argmax:
        x = g.node("ArgMax", [x], axis=-1, keepdims=1)
    graph = helper.make_graph(g.nodes, "mlp_case", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info(x, TensorProto.INT64 if case.argmax else TensorProto.FLOAT,
                                                             None)], initializer=g.inits)
    if case.weights_as_inputs:
        graph.input.extend(helper.make_tensor_value_info(i.name, TensorProto.FLOAT, list(i.dims))
                           for i in g.inits if i.name.startswith("w"))
    opsets = [helper.make_opsetid("", 13)] + ([helper.make_opsetid(case.quant_domain, 1)] if case.quant_domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    return model


def random_case(seed: int, max_width: int = 64) -> MlpCase:
    """A random MLP: depth 1-4, widths 1-max_width, bits 1-16 per tensor, sparsity 0-99%,
    power-of-two or float scales, with and without BN. Where a layer needs thresholds, its
    activation width is capped so that levels x channels stays within MAX_LEVELS_X_CHANNELS."""
    rng = np.random.default_rng(seed)
    pot = bool(rng.random() < 0.5)
    zero_point = bool(rng.random() < 0.2)
    depth = int(rng.integers(1, 5))
    prev_bits = int(rng.integers(1, 17))
    case = MlpCase(n_in=int(rng.integers(1, 17)), input_bits=prev_bits, layers=[], pot_scales=pot,
                   matmul=bool(rng.random() < 0.5), output_quant=bool(rng.random() < 0.3),
                   softmax=bool(rng.random() < 0.2), argmax=bool(rng.random() < 0.1),
                   flatten_input=bool(rng.random() < 0.2), weights_as_inputs=bool(rng.random() < 0.2), zero_point=zero_point, seed=seed)
    # the formats of other tools, drawn apart so that every seed keeps the network it had
    formats = np.random.default_rng([seed, 22])
    case.quantized_bias = bool(formats.random() < 0.2)
    case.one_bit_as_quant = bool(formats.random() < 0.3)
    case.multithreshold = bool(formats.random() < 0.15)
    case.input_relu = bool(formats.random() < 0.1)
    case.computed_bit_widths = bool(formats.random() < 0.1)
    case.quant_domain = str(formats.choice(["qonnx.custom_op.general", "", "qonnx", "finn.custom_op.general"],
                                           p=[0.7, 0.1, 0.1, 0.1]))
    for i in range(depth):
        last = i == depth - 1
        width = int(rng.integers(1, 6)) if last else int(rng.integers(1, max_width + 1))
        layer = LayerCase(width, int(rng.integers(1, 17)), int(rng.integers(1, 17)),
                          per_channel=bool(rng.random() < 0.5), batch_norm=bool(rng.random() < 0.4),
                          sparsity=float(rng.choice([0.0, 0.5, 0.9, 0.99])))
        shift_form = (pot and not case.multithreshold and not layer.batch_norm and not layer.per_channel and not zero_point
                      and layer.weight_bits > 1 and prev_bits > 1 and layer.act_bits > 1)
        if not shift_form:
            while layer.act_bits > 1 and (2**layer.act_bits) * width > MAX_LEVELS_X_CHANNELS:
                layer.act_bits -= 1
        case.layers.append(layer)
        prev_bits = layer.act_bits
    return case
