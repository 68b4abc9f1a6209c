"""The IntModel checked against qonnx's `execute_onnx` of the original graph.

Two executions of the original file, on a copy whose batch size is the number of samples:
- exact sums: qonnx executes every node of the graph (quantizers, batch norm, activations,
  the tail) in float32 as written, except that each dense layer's sum of products is exact
  (the QONNX meaning of Quant: value = scale * (q - zero point), summed without rounding, then
  rounded once to float32; where a layer's sums can pass float32's 2**24, in float64 with the
  nodes after it up to its quantizer: software.dense_output). The IntModel and every firmware
  must equal it bit for bit.
- float32: the graph as onnxruntime runs it, whose MatMul/Gemm sums float32 products in its
  own order; with float scales (or wide power-of-two products) that rounding can move a value
  across a quantizer's rounding boundary. Its differences are counted and reported, not hidden.
At every quantizer the integers are recovered exactly from the float output and compared.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes

from qapflow.intmodel.build import Grid, _weight_ints, quant_grid, wide_sums
from qapflow.intmodel.chain import Chain, read_chain
from qapflow.intmodel.model import IntModel
from qapflow.intmodel.software import dense_output
from qapflow.intmodel.subgraph import as_double


def batched(model: ModelWrapper, n: int) -> ModelWrapper:
    """A copy of `model` taking `n` samples at once (constant Reshape targets follow)."""
    copy = ModelWrapper(model.model.__deepcopy__())
    inp = copy.graph.input[0].name
    shape = list(copy.get_tensor_shape(inp))
    copy.set_tensor_shape(inp, [n, *shape[1:]])
    # integer annotations (FINN-ONNX) make qonnx refuse any tensor fed to it off their grid (inputs
    # not yet rounded, float32 sums); they carry no meaning for execution, and the integer model
    # reads them from the original graph
    copy.graph.ClearField("quantization_annotation")
    for node in copy.graph.node:
        if node.op_type == "Reshape":
            target = copy.get_initializer(node.input[1])
            if target is not None and len(target) and target[0] == shape[0]:
                target = np.array(target, copy=True)
                target[0] = n
                copy.set_initializer(node.input[1], target)
    while len(copy.graph.value_info):
        copy.graph.value_info.pop()
    for out in copy.graph.output:
        out.type.tensor_type.ClearField("shape")
    return copy.transform(InferShapes())


def input_grid(im: IntModel) -> Grid:
    """The grid of the firmware's input integers, as the IntModel was built with it (its input
    quantizer's, or --input-type's for a float input)."""
    g = im.software.grid
    return Grid(im.input, g.scale, g.mult, np.asarray(g.offset, np.float64), g.rounding)


def execute_exact_sums(model: ModelWrapper, runnable: ModelWrapper, chain: Chain, plain: dict,
                       q_in: np.ndarray, first_grid: Grid) -> tuple[list[np.ndarray], np.ndarray]:
    """(integers at every stage's quantizer, graph output), qonnx running every node but the
    dense sums. plain: the float32 execution's tensors (the head's and the constants' values
    are the same in both); q_in: the input integers on `first_grid`."""
    context = {k: v for k, v in plain.items() if v is not None}
    n = len(q_in)
    ints, q, grid = [], q_in, first_grid
    nodes = list(runnable.graph.node)
    double = None  # the float64 twin, for layers whose sums float32 cannot hold
    for i, stage in enumerate(chain.stages):
        w_int, s_w, _ = _weight_ints(model, stage)
        acc_true = grid.mult * (q.astype(np.float64) @ w_int.T.astype(np.float64)) + grid.accumulator_offset(w_int)
        wide = wide_sums(grid, w_int, s_w, stage.bias)
        context[stage.dense.output[0]] = dense_output(acc_true, grid.scale * s_w, stage.bias, wide)
        after = stage.tail + ([stage.quant] if stage.quant is not None else [])
        if i == len(chain.stages) - 1:
            after = after + chain.output_tail
        if after:
            start, end = (next(n for n in nodes if n.name == after[k].name) for k in (0, -1))
            if wide:
                if double is None:
                    double = ModelWrapper(as_double(runnable.model))
                wide_in = {k: np.asarray(v, np.float64) if np.asarray(v).dtype == np.float32 else v
                           for k, v in context.items()}
                done = execute_onnx(double, wide_in, return_full_exec_context=True, start_node=start, end_node=end)
                context.update({t: done[t] for node in after for t in node.output})
            else:
                context = execute_onnx(runnable, {k: v for k, v in context.items() if v is not None},
                                       return_full_exec_context=True, start_node=start, end_node=end)
        if stage.quant is not None:
            grid = quant_grid(model, stage.quant, f"layer {i} activation")
            q = grid.integers(context[stage.quant.output[0]]).reshape(n, -1)
            ints.append(q)
    out = (chain.output_tail or chain.stages[-1].tail or [None])[-1]
    if chain.stages[-1].quant is not None and not chain.output_tail:
        out = chain.stages[-1].quant
    name = out.output[0] if out is not None else chain.stages[-1].dense.output[0]
    return ints, np.asarray(context[name])


def _on_input_grid(runnable: ModelWrapper, chain: Chain, plain: dict, q_in: np.ndarray, scale: float) -> dict:
    """A model without an input quantizer, run again from its first dense layer on the input
    grid the firmware takes (--input-type), so both sides see the same inputs."""
    context = {k: v for k, v in plain.items() if v is not None}
    name = chain.head_output
    context[name] = (q_in * scale).astype(np.float32).reshape(context[name].shape)
    first = next(n for n in runnable.graph.node if n.name == chain.stages[0].dense.name)
    return execute_onnx(runnable, context, return_full_exec_context=True, start_node=first,
                        end_node=runnable.graph.node[-1])


def _layer_rows(chain: Chain, graph_ints: list[np.ndarray], ours: list[np.ndarray]) -> list[dict]:
    rows = []
    quantized = [(i, s) for i, s in enumerate(chain.stages) if s.quant is not None]
    for (i, stage), got in zip(quantized, graph_ints):
        bad = int(np.count_nonzero((got != ours[i]).any(axis=1)))
        rows.append({"layer": i, "quantizer": stage.quant.name, "mismatching_samples": bad})
    return rows


def compare_with_qonnx(im: IntModel, model: ModelWrapper, x: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    """Layer-by-layer exact comparison of the IntModel with qonnx's execution on `x`:
    (the report, the IntModel's outputs, the reference's outputs)."""
    chain = read_chain(model)
    runnable = batched(model, len(x))
    inp = runnable.graph.input[0].name
    plain = execute_onnx(runnable, {inp: np.asarray(x, np.float32).reshape(runnable.get_tensor_shape(inp))},
                         return_full_exec_context=True)
    q_in, rounded = im.input_integers(x)
    if not im.software.grid.quantized_by_model:
        plain = _on_input_grid(runnable, chain, plain, q_in, im.software.grid.scale)
    layers = im.forward_layers(q_in)
    exact_ints, exact_out = execute_exact_sums(model, runnable, chain, plain, q_in, input_grid(im))
    ours = im.outputs(layers[-1]).reshape(exact_out.shape)
    plain_out = np.asarray(plain[model.graph.output[0].name])
    plain_ints = [quant_grid(model, s.quant, "activation").integers(plain[s.quant.output[0]]).reshape(len(x), -1)
                  for s in chain.stages if s.quant is not None]
    exact_rows = _layer_rows(chain, exact_ints, layers)
    plain_rows = _layer_rows(chain, plain_ints, layers)
    samples = len(x)
    return {
        "samples": int(samples),
        "reference": ("qonnx execute_onnx of the original graph, every node in float32, dense sums exact "
                      "(float64 after a layer whose sums can pass 2**24)"),
        "layers": exact_rows,
        "quantizer_mismatches": sum(r["mismatching_samples"] for r in exact_rows),
        "output_mismatching_samples": int(np.count_nonzero(~(ours == exact_out).reshape(samples, -1).all(axis=1))),
        "float32_graph": {
            "note": "the graph as onnxruntime runs it: float32 products summed in its own order",
            "layers": plain_rows,
            "quantizer_mismatching_samples": sum(r["mismatching_samples"] for r in plain_rows),
            "output_mismatching_samples": int(np.count_nonzero(
                ~(ours.reshape(plain_out.shape) == plain_out).reshape(samples, -1).all(axis=1))),
            "output_max_abs_difference": float(np.max(np.abs(ours.reshape(plain_out.shape).astype(np.float64)
                                                             - plain_out))) if samples else 0.0,
        },
        "input_values_rounded": rounded,
    }, ours, exact_out
