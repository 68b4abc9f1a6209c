"""Remove hidden neurons that pruning left dead, folding their constant output forward.

A hidden neuron j of layer k is removed when
- all its incoming weights are zero: its output is the constant a_j = act(b_k[j]), and
  a_j * W_{k+1}[:, j] is folded into the bias of layer k+1 (exact for power-of-two scales:
  the product lies on the next bias' grid; the bias bit width grows if it must), or
- all its outgoing weights are zero: it feeds nothing.
Row j of W_k, b_k[j] and column j of W_{k+1} are deleted from the float initializers; the
per-tensor quantizer scales are unchanged, so every other value is quantized as before.
The graph's function is unchanged (tested by executing it before and after).
"""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.general.quant import quant
from qonnx.transformation.base import Transformation

from qapflow.export.graph import bias_vector, dense_chain, weight_matrix
from qapflow.intmodel.chain import attr, quant_params


def _act_value(model: ModelWrapper, layer, pre_activation: float) -> float:
    """The hidden layer's output for a constant pre-activation ([activation pruning,] ReLU, then
    its quantizer)."""
    alpha = None if layer.act_prune is None else attr(layer.act_prune, "alpha", 1.0)  # ONNX's default
    if alpha is not None and not pre_activation > alpha:
        pre_activation = 0.0
    value = np.array([max(pre_activation, 0.0)])
    if layer.act_quant is None:
        return float(value[0])
    p = quant_params(model, layer.act_quant)
    return float(quant(value, p["scale"], p["zeropt"], p["bitwidth"], p["signed"], p["narrow"],
                       p["rounding_mode"])[0])


def _bias_fold_is_exact(model: ModelWrapper, layer) -> bool:
    """Folding a constant into this layer's bias is exact only if the bias is quantized."""
    return layer.bias_quant is not None


def _set_bias(model: ModelWrapper, layer, new_bias: np.ndarray) -> None:
    """Write a new (quantized) bias; widen its Quant bit width if the values need it."""
    if layer.bias_quant is None:
        model.set_initializer(layer.gemm.input[2], new_bias.astype(np.float32))
        return
    p = quant_params(model, layer.bias_quant)
    ints = np.abs(np.round(new_bias / p["scale"]))
    needed = int(np.ceil(np.log2(ints.max() + 1))) + 1 if ints.max() > 0 else 2
    if needed > p["bitwidth"].reshape(-1)[0]:
        model.set_initializer(layer.bias_quant.input[3], np.array(float(needed), dtype=np.float32))
    model.set_initializer(layer.bias_quant.input[0], new_bias.astype(np.float32))


def _delete(model: ModelWrapper, tensor: str, index: int, axis: int) -> None:
    model.set_initializer(tensor, np.delete(model.get_initializer(tensor), index, axis=axis))


class RemoveDeadNeurons(Transformation):
    """Remove one dead hidden neuron per call; qonnx repeats apply() until nothing changes."""

    def apply(self, model: ModelWrapper):
        chain = dense_chain(model)
        for layer, nxt in zip(chain.layers, chain.layers[1:]):
            if layer.norm is not None:  # a BN shifts a dead neuron's output: leave it be
                continue
            w_in = weight_matrix(model, layer)  # [out_k, in_k]
            w_out = weight_matrix(model, nxt)  # [out_k+1, out_k]
            if w_in.shape[0] <= 1:
                continue
            dead_in = ~w_in.any(axis=1)
            dead_out = ~w_out.any(axis=0)
            for j in np.flatnonzero(dead_in | dead_out):
                if not dead_out[j]:
                    if not _bias_fold_is_exact(model, nxt):
                        continue
                    constant = _act_value(model, layer, float(bias_vector(model, layer)[j]))
                    _set_bias(model, nxt, bias_vector(model, nxt) + constant * w_out[:, j])
                _delete(model, layer.gemm.input[1] if layer.weight_quant is None
                        else layer.weight_quant.input[0], j, axis=0)
                _delete(model, layer.gemm.input[2] if layer.bias_quant is None
                        else layer.bias_quant.input[0], j, axis=0)
                _delete(model, nxt.gemm.input[1] if nxt.weight_quant is None
                        else nxt.weight_quant.input[0], j, axis=1)
                return model, True
        return model, False
