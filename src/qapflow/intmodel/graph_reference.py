"""The IntGraph checked against qonnx's execution of the original graph ("exact sums").

The reference runs the original graph node by node (qonnx execute_node: onnxruntime for standard
ops, qonnx's own Quant/BipolarQuant/MultiThreshold), in float32 as written, except that every
linear op on integer tensors gets its exact value from the integers: Gemm/MatMul/Conv with
quantized weights, AveragePool/GlobalAveragePool/ReduceMean and Add of two integer tensors. A
chain of such ops is summed without rounding and rounded once to float32 where a float op or a
quantizer takes it (software.dense_output), the op's own float bias then added in float32 as
the graph adds it. This is reference.py's meaning of a dense layer, generalised.
The exact sums do not reuse the IntGraph's ops: Conv and the pools run the graph's own node (its
attributes, its padding) in onnxruntime on small signed digits of the integers, where every
float32 sum is exact, and the digits are recombined in int64; wiring and MaxPool run the
graph's node in float64. At every quantizer the integers are recovered from the float output
and compared with the IntGraph's, tensor by tensor; the outputs are compared as equal floats.
onnxruntime's own float32 run of the whole graph is reported beside it (differences counted).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_node, execute_onnx
from qonnx.transformation.general import SortGraph

from qapflow.intmodel.build import quant_grid
from qapflow.intmodel.chain import ACTIVATION_QUANTIZERS, SHAPE_OPS, describe
from qapflow.intmodel.graph import IntGraph, grid_integers
from qapflow.intmodel.model import NotBitExact
from qapflow.intmodel.ops import add_coefficients
from qapflow.intmodel.ops.merge import common_unit
from qapflow.intmodel.read_ops import conv_bias, conv_weight_integers, dense_weight_integers
from qapflow.intmodel.reference import batched
from qapflow.intmodel.software import dense_output

POOLS = ("AveragePool", "GlobalAveragePool", "ReduceMean")
MOVES = SHAPE_OPS + ("Concat", "MaxPool", "Identity")


class Exact:
    """An integer tensor of the reference: real value = scale * units / divisor (+ bias after
    the one rounding); scale per element, shaped [1, *per-sample shape]."""

    def __init__(self, units, scale, divisor=1, bias=None):
        self.units = np.asarray(units, np.int64)
        self.scale = np.broadcast_to(np.asarray(scale, np.float64), (1, *self.units.shape[1:])).copy()
        self.divisor, self.bias = int(divisor), bias

    def rounded(self) -> np.ndarray:
        exact = self.units / self.divisor if self.divisor != 1 else self.units
        return dense_output(exact, self.scale, self.bias)

    def on_one_unit(self) -> "Exact":
        """The same reals with one scale for every element (a Concat of different grids feeds a
        linear op): each element's units times the integer that puts it on the common unit."""
        scales = np.unique(self.scale)
        if len(scales) == 1:
            return self
        coeffs, unit = common_unit(scales)
        factor = np.asarray(coeffs, np.int64)[np.searchsorted(scales, self.scale)]
        return Exact(self.units * factor, unit, self.divisor, self.bias)

    def summable(self, node) -> "Exact":
        """Units a further linear op may sum: the bias on the integer grid, or refused."""
        if self.bias is None:
            return self
        steps = np.asarray(self.bias, np.float64) * self.divisor / self.scale
        if not np.array_equal(steps, np.round(steps)):
            raise NotBitExact(f"{describe(node)}: its input has a float bias off its integer grid")
        return Exact(self.units + np.round(steps).astype(np.int64), self.scale, self.divisor)


def _single_node(node, inputs: dict, elem, opset: int, constants: dict) -> np.ndarray:
    """Run one node (a copy, with its constants) in onnxruntime on `inputs` of type `elem`."""
    copy = onnx.NodeProto.FromString(node.SerializeToString())
    graph = helper.make_graph([copy], "qapflow_node",
                              [helper.make_tensor_value_info(k, elem, None) for k in inputs],
                              [helper.make_tensor_value_info(copy.output[0], elem, None)],
                              initializer=[onnx.numpy_helper.from_array(v, k) for k, v in constants.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run([copy.output[0]], inputs)[0]


def _digits(x: np.ndarray, bits: int) -> list[np.ndarray]:
    """Balanced base-2**bits digits, |d| <= 2**(bits-1): x = sum d_i * 2**(bits*i)."""
    half, mask = 1 << (bits - 1), (1 << bits) - 1
    out, rest = [], np.asarray(x, np.int64).copy()
    while np.any(rest != 0) or not out:
        d = ((rest + half) & mask) - half
        out.append(d)
        rest = (rest - d) >> bits
    return out


def _digit_bits(terms: int, products: bool) -> int:
    """The widest digits (|d| <= 2**(bits-1)) for which a sum of `terms` digits, or of products
    of two digits, stays below 2**23: every float32 partial sum of integers is then exact."""
    per = 2 if products else 1
    bits = 2
    while terms << (per * bits) < 1 << 23:  # one bit wider is still safe
        bits += 1
    if terms << (per * (bits - 1)) >= 1 << 23:
        raise NotBitExact(f"a sum of {terms} terms is too long for the exact reference")
    return bits


class _Reference:
    def __init__(self, model: ModelWrapper, runnable: ModelWrapper):
        self.model, self.runnable = model, runnable
        self.opset = next((o.version for o in runnable.model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.consts = {i.name: onnx.numpy_helper.to_array(i) for i in runnable.graph.initializer}

    def constants(self, node) -> dict:
        return {i: self.consts[i] for i in node.input if i in self.consts}

    def conv(self, node, x: Exact) -> Exact:
        x = x.on_one_unit()
        w_int, s_w, _ = conv_weight_integers(self.model, node)
        groups = next((a.i for a in node.attribute if a.name == "group"), 1)
        s_in = x.scale.reshape(x.scale.shape[1], -1)[:, 0].reshape(groups, -1)[:, 0]
        bits = _digit_bits(int(np.prod(w_int.shape[1:])), True)
        conv = helper.make_node("Conv", [node.input[0], "qapflow_w"], [node.output[0]], name=node.name)
        conv.attribute.extend(node.attribute)
        acc = 0
        for i, du in enumerate(_digits(x.units, bits)):
            for j, dw in enumerate(_digits(w_int, bits)):
                part = _single_node(conv, {node.input[0]: du.astype(np.float32), "qapflow_w": dw.astype(np.float32)},
                                    TensorProto.FLOAT, self.opset, {})
                acc = acc + (np.round(part).astype(np.int64) << (bits * (i + j)))
        s_acc = np.repeat(s_in, len(s_w) // groups) * s_w
        bias = conv_bias(self.model, node)
        shape = (1, -1) + (1,) * (acc.ndim - 2)
        return Exact(acc, s_acc.reshape(shape), x.divisor,
                     None if bias is None else np.asarray(bias, np.float32).reshape(shape))

    def dense(self, node, x: Exact) -> Exact:
        w_int, s_w, _, bias = dense_weight_integers(self.model, node)
        x = x.on_one_unit()
        u = x.units.reshape(len(x.units), -1).astype(np.float64)
        acc = u @ w_int.T.astype(np.float64)  # exact: integers far below 2**53
        s_in = np.unique(x.scale)
        if len(s_in) != 1:
            raise NotBitExact(f"{describe(node)}: its input has more than one scale")
        return Exact(np.round(acc).astype(np.int64), (s_in[0] * s_w)[None], x.divisor,
                     None if bias is None else np.asarray(bias, np.float32))

    def pool(self, node, x: Exact) -> Exact:
        spatial = x.units.shape[2:]
        if node.op_type == "AveragePool":
            k = int(np.prod(next(a.ints for a in node.attribute if a.name == "kernel_shape")))
        else:
            k = int(np.prod(spatial))
        bits = _digit_bits(k, False)
        acc = 0
        for i, d in enumerate(_digits(x.units, bits)):
            mean = _single_node(node, {node.input[0]: d.astype(np.float32)}, TensorProto.FLOAT, self.opset,
                                self.constants(node)).astype(np.float64)
            sums = np.round(mean * k)
            assert np.all(np.abs(mean * k - sums) < 0.25), describe(node)
            acc = acc + (sums.astype(np.int64) << (bits * i))
        per_channel = x.scale.reshape(x.scale.shape[1], -1)
        if np.any(per_channel != per_channel[:, :1]):
            raise NotBitExact(f"{describe(node)}: its input's scale varies within a channel")
        return Exact(acc, per_channel[:, 0].reshape((1, -1) + (1,) * (acc.ndim - 2)), x.divisor * k)

    def add(self, node, a: Exact, b: Exact) -> Exact:
        if a.divisor != 1 or b.divisor != 1:
            raise NotBitExact(f"{describe(node)}: adds an average")
        pairs = {}
        for sa, sb in zip(a.scale.reshape(-1), b.scale.reshape(-1)):
            pairs.setdefault((sa, sb), add_coefficients(sa, sb))
        ca, cb, unit = (np.array([pairs[(sa, sb)][i] for sa, sb in zip(a.scale.reshape(-1), b.scale.reshape(-1))])
                        .reshape(a.scale.shape) for i in range(3))
        return Exact(ca.astype(np.int64) * a.units + cb.astype(np.int64) * b.units, unit)

    def _move(self, node, *arrays) -> np.ndarray:
        """The graph's own node on float64 arrays (integers or scales move as they are)."""
        names = [i for i in node.input if i and i not in self.consts]
        return _single_node(node, dict(zip(names, (np.asarray(a, np.float64) for a in arrays))),
                            TensorProto.DOUBLE, self.opset, self.constants(node))

    def moved(self, node, xs: list[Exact]) -> Exact:
        if len({x.divisor for x in xs}) != 1 or any(x.bias is not None and node.op_type == "Concat" for x in xs):
            raise NotBitExact(f"{describe(node)}: joins tensors with different divisors or float biases")
        units = self._move(node, *(x.units for x in xs))
        # scales (and biases) move as the integers do: the same node on arrays of the batch's shape
        scale = self._move(node, *(np.broadcast_to(x.scale, x.units.shape) for x in xs))[:1]
        bias = None
        if xs[0].bias is not None:
            bias = self._move(node, np.broadcast_to(xs[0].bias, xs[0].units.shape))[:1].astype(np.float32)
        return Exact(np.round(units).astype(np.int64), scale, xs[0].divisor, bias)

    def run(self, x: np.ndarray) -> tuple[dict, dict]:
        """(the exact reference's float context, integers at every quantizer of the data)."""
        graph = self.runnable.graph
        inp = graph.input[0].name
        context = self.runnable.make_empty_exec_context()  # execute_node writes into placeholders
        context[inp] = x
        reached, exact, ints = {inp}, {}, {}
        for node in graph.node:
            data = [i for i in node.input if i in reached]
            if not data:
                execute_node(node, context, graph, self.opset)
                continue
            reached.update(o for o in node.output if o)
            op, out = node.op_type, node.output[0]
            known = [exact[i] for i in data if i in exact]
            if op in ("Gemm", "MatMul", "Conv") and len(known) == 1 and len(data) == 1:
                x_in = known[0].summable(node)
                exact[out] = self.conv(node, x_in) if op == "Conv" else self.dense(node, x_in)
            elif op in POOLS and len(known) == 1:
                exact[out] = self.pool(node, known[0].summable(node))
            elif op == "Add" and len(known) == 2:
                exact[out] = self.add(node, *(k.summable(node) for k in known))
            elif op in MOVES and len(known) == len(data):
                exact[out] = self.moved(node, known)
                execute_node(node, context, graph, self.opset)
                continue
            else:
                execute_node(node, context, graph, self.opset)
                if op in ACTIVATION_QUANTIZERS:
                    grid = quant_grid(self.model, node, describe(node))
                    q = grid_integers(grid, context[out])
                    offset = np.asarray(grid.offset, np.float64)
                    offset = offset.reshape((1, -1) + (1,) * (q.ndim - 2)) if offset.ndim else offset
                    ints[out] = q
                    exact[out] = Exact(grid.mult * q + np.round(offset).astype(np.int64), grid.scale)
                continue
            context[out] = exact[out].rounded().reshape(np.shape(context[out]))
        return context, ints


def _rows(ig: IntGraph, theirs: dict, ours: dict, n: int) -> list[dict]:
    rows = []
    for name, t in ig.tensors.items():
        if name in theirs:
            bad = (theirs[name].reshape(n, -1) != ours[name].reshape(n, -1)).any(axis=1)
            rows.append({"tensor": name, "mismatching_samples": int(np.count_nonzero(bad))})
    return rows


def saturation(ig: IntGraph, values: dict) -> dict:
    """Per quantized tensor, how many samples reach its lowest and its highest reachable
    integer (its grid's ends, or nearer where the bounds say they cannot be reached)."""
    out, bounds = {}, ig.bounds()
    for name, t in ig.tensors.items():
        if t.quantized and name in values:
            v = values[name].reshape(len(values[name]), -1)
            lo, hi = max(t.grid.spec.lo, min(bounds[name][0])), min(t.grid.spec.hi, max(bounds[name][1]))
            out[name] = {"lo": int(lo), "hi": int(hi), "at_lo": int(np.count_nonzero((v == lo).any(axis=1))),
                         "at_hi": int(np.count_nonzero((v == hi).any(axis=1)))}
    return out


def compare_graph(ig: IntGraph, model: ModelWrapper, x: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    """Tensor-by-tensor exact comparison of the IntGraph with the reference on float inputs x:
    (the report, the IntGraph's outputs, the reference's outputs)."""
    n = len(x)
    runnable = batched(model, n).transform(SortGraph())
    inp = runnable.graph.input[0].name
    x = np.asarray(x, np.float32).reshape(runnable.get_tensor_shape(inp))
    context, exact_ints = _Reference(model, runnable).run(x)
    plain = execute_onnx(runnable, {inp: x}, return_full_exec_context=True)
    plain_ints = {k: grid_integers(ig.tensors[k].grid, plain[k]) for k in exact_ints if k in ig.tensors}
    values = ig.evaluate(ig.input_integers(x))
    ours = ig.outputs(values[ig.output])
    out_name = model.graph.output[0].name
    exact_out, plain_out = np.asarray(context[out_name]), np.asarray(plain[out_name])
    ours = ours.reshape(exact_out.shape)
    rows, plain_rows = _rows(ig, exact_ints, values, n), _rows(ig, plain_ints, values, n)
    same = lambda a, b: int(np.count_nonzero(~(a == b).reshape(n, -1).all(axis=1)))  # noqa: E731
    return {
        "samples": n,
        "reference": "qonnx execute_node of the original graph, float32 as written; linear ops on integer "
                     "tensors summed exactly, rounded once",
        "tensors": rows,
        "quantizers_compared": len(rows),
        "quantizer_mismatches": sum(r["mismatching_samples"] for r in rows),
        "output_mismatching_samples": same(ours, exact_out),
        "saturation": saturation(ig, values),
        "float32_graph": {
            "note": "the graph as onnxruntime runs it: float32 sums in its own order",
            "tensors": plain_rows,
            "quantizer_mismatching_samples": sum(r["mismatching_samples"] for r in plain_rows),
            "output_mismatching_samples": same(ours, plain_out.reshape(ours.shape)),
        },
    }, ours, exact_out


__all__ = ["compare_graph", "saturation"]
