"""The IntModel checked against qonnx's `execute_onnx` of the original graph.

The original file is executed as it is (float32, node by node, qonnx's own quantizers), on a
copy whose batch size is the number of samples. At every quantizer the graph's integers are
recovered exactly from its float output and compared with the IntModel's, and the final
outputs are compared: exactly where the output is on a quantizer's grid or a power-of-two
scale; otherwise the largest difference is reported, since the original graph sums float
products in float32 (order-dependent rounding) where the firmware sums integers exactly.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes

from qapflow.intmodel.build import quant_grid
from qapflow.intmodel.chain import read_chain
from qapflow.intmodel.model import IntModel


def batched(model: ModelWrapper, n: int) -> ModelWrapper:
    """A copy of `model` taking `n` samples at once (constant Reshape targets follow)."""
    copy = ModelWrapper(model.model.__deepcopy__())
    inp = copy.graph.input[0].name
    shape = list(copy.get_tensor_shape(inp))
    copy.set_tensor_shape(inp, [n, *shape[1:]])
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


def execute_original(model: ModelWrapper, x: np.ndarray) -> dict:
    x = np.asarray(x, np.float32)
    runnable = batched(model, len(x))
    inp = runnable.graph.input[0].name
    shape = runnable.get_tensor_shape(inp)
    return execute_onnx(runnable, {inp: x.reshape(shape)}, return_full_exec_context=True)


def compare_with_qonnx(im: IntModel, model: ModelWrapper, x: np.ndarray) -> dict:
    """Exact comparison, layer by layer, of the IntModel with the original graph on `x`."""
    chain = read_chain(model)
    context = execute_original(model, x)
    q_in, rounded = im.input_integers(x)
    layers = im.forward_layers(q_in)
    report = {"samples": int(len(x)), "layers": []}
    for i, stage in enumerate(chain.stages):
        if stage.quant is None:
            continue
        grid = quant_grid(model, stage.quant, f"layer {i} activation")
        graph_ints = grid.integers(context[stage.quant.output[0]]).reshape(len(x), -1)
        bad = int(np.count_nonzero((graph_ints != layers[i]).any(axis=1)))
        report["layers"].append({"layer": i, "quantizer": stage.quant.name, "mismatching_samples": bad})
    graph_out = np.asarray(context[model.graph.output[0].name])
    ours = im.outputs(layers[-1]).reshape(graph_out.shape)
    report["output_exact"] = im.software is None or im.software.output.exact
    equal = (ours == graph_out).reshape(len(x), -1).all(axis=1)
    report["output_mismatching_samples"] = int(np.count_nonzero(~equal))
    report["output_max_abs_difference"] = float(np.max(np.abs(ours.astype(np.float64) - graph_out))) if len(x) else 0.0
    report["quantizer_mismatches"] = sum(l["mismatching_samples"] for l in report["layers"])
    if not report["output_exact"]:
        report["output_outside_float32_error_bound"] = _outside_float32_bound(
            model, chain, layers[-2] if len(layers) > 1 else q_in, graph_out.reshape(len(x), -1),
            ours.reshape(len(x), -1))
    report["input_values_rounded"] = rounded
    report["outputs"] = ours
    report["graph_outputs"] = graph_out
    return report


def _outside_float32_bound(model, chain, last_in: np.ndarray, graph: np.ndarray, ours: np.ndarray) -> int | None:
    """Samples whose float output differs from the graph's by more than float32 summation can
    explain: |fl(sum) - sum| <= gamma_(n+2) * (sum |x_i w_i| + |b|) (Higham, 2002, eq. 3.5) on
    both sides. None where float ops follow the layer (the bound is not carried through them)."""
    from qapflow.intmodel.build import DEFAULT_INPUT_TYPE, Grid, parse_fixed_type

    last = chain.stages[-1]
    if last.quant is not None or last.tail and any(n.op_type != "Add" for n in last.tail) or chain.output_tail:
        return None
    if len(chain.stages) > 1:
        grid = quant_grid(model, chain.stages[-2].quant, "last hidden activation")
    elif chain.input_quant is not None:
        grid = quant_grid(model, chain.input_quant, "input quantizer")
    else:
        spec = parse_fixed_type(DEFAULT_INPUT_TYPE)
        grid = Grid(spec, 2.0**spec.exp)
    x = np.abs(grid.scale * (grid.mult * last_in.astype(np.float64) + np.asarray(grid.offset, np.float64)))
    bias = np.abs(last.bias) if last.bias is not None else 0.0
    for node in last.tail:
        const = [model.get_initializer(t) for t in node.input if model.get_initializer(t) is not None]
        bias = bias + np.abs(np.asarray(const[0], np.float64).reshape(-1))
    n = last.weight.shape[1] + 2
    u = 2.0**-24
    gamma = n * u / (1 - n * u)
    bound = 2 * gamma * (x @ np.abs(last.weight).T + bias) + 2 * u * np.abs(graph)
    return int(np.count_nonzero((np.abs(graph.astype(np.float64) - ours) > bound).any(axis=1)))
