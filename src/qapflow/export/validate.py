"""Check a QONNX file before any graph pass reads it: one DataFormatError naming the file, the
node (name and op) and the field at fault.

Without these checks a broken file fails deep inside qonnx or the integer model with messages
that name neither node nor field (`Python int too large to convert to C long` for a NaN
weight, `Found unspecified tensor shapes` for an old opset), or is accepted (a negative
scale). onnx.checker is not used for this: it stops at its first finding, does not look at
values (NaN, scales, bit widths) or at qonnx's ops, and refuses files every tool here reads
(qonnx's own eltwise_chanlast_testcase.onnx, whose qonnx domain has no opset import; graphs
whose output declares no shape, as the onnx helper API writes them). What onnx and qonnx
do provide is used: the input names of standard ops (onnx.defs), the version converter,
qonnx's rounding-mode reader and integer ranges.

Order: the opset first (an old graph is converted to opset 13, whose checks then apply), then
connectivity, the data input, the quantizers' constants and every other value in the file.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import onnx
from onnx import TensorProto, helper

from qapflow.common.errors import DataFormatError
from qapflow.export.validate_quant import QUANTIZER_INPUTS, check_quantizers, constant_values, describe, field_name

OLDEST_OPSET = 7  # onnxruntime only guarantees opset 7 and newer
CONVERT_TO_OPSET = 13
DATA_INPUT_TYPE = TensorProto.FLOAT  # qonnx executes the graph in float32, the integer model reads float32


def validate_model(proto: onnx.ModelProto, path, input_shape=None) -> onnx.ModelProto:
    """The model checked, its old opset converted and `input_shape` (a list of ints) given to
    its data input; raises DataFormatError(path, ...) at the first problem."""
    if not proto.graph.node:
        return proto  # an empty or foreign file: ingest says "the ONNX graph has no nodes"
    proto = checked_opset(proto, path)
    graph = proto.graph
    check_connectivity(graph, path)
    check_data_input(graph, path, input_shape)
    consts = constant_values(graph, path)
    check_quantizers(graph, consts, path)  # first: "scale is NaN" says more than "a constant is NaN"
    check_finite(graph, consts, path)
    check_batch_norm(graph, consts, path)
    check_shapes(proto, path)
    return proto


@functools.cache
def supported_opset() -> int:
    """The newest default-domain opset both onnx and onnxruntime take. onnxruntime has no API
    for it, so a one-node model stamped with each opset is loaded, newest first."""
    import onnxruntime as ort

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    for opset in range(onnx.defs.onnx_opset_version(), CONVERT_TO_OPSET, -1):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = min(model.ir_version, onnx.IR_VERSION)
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            return opset
        except Exception:  # onnxruntime's Fail: "opset N is under development"
            continue
    return CONVERT_TO_OPSET


def checked_opset(proto: onnx.ModelProto, path) -> onnx.ModelProto:
    if proto.ir_version > onnx.IR_VERSION:
        raise DataFormatError(path, f"IR version {proto.ir_version} is newer than the installed onnx reads "
                                    f"(up to {onnx.IR_VERSION}); save the model with an older onnx")
    default = [o for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    if len(default) != 1:
        raise DataFormatError(path, f"opset_import names the default ONNX domain {len(default)} times; "
                                    "a model declares its opset exactly once")
    opset, newest = int(default[0].version), supported_opset()
    if opset < 1:
        raise DataFormatError(path, f"opset {opset} of the default ONNX domain is no ONNX opset (they start at 1); "
                                    f"export with an opset from {OLDEST_OPSET} to {newest}")
    if opset > newest:
        raise DataFormatError(path, f"opset {opset} of the default ONNX domain is newer than the installed onnx "
                                    f"({onnx.defs.onnx_opset_version()}) and onnxruntime (up to {newest}) "
                                    f"support; export with an opset from {OLDEST_OPSET} to {newest}")
    if opset >= OLDEST_OPSET:
        return proto
    try:  # onnx's own converter rewrites the standard ops; qonnx's nodes keep their domain
        converted = onnx.version_converter.convert_version(with_inferred_shapes(proto), CONVERT_TO_OPSET)
    except Exception as exc:  # the converter raises RuntimeError/ConvertError with its reason
        reason = str(exc).strip().split(" failed: ", 1)[-1]  # without its source file and assertion
        raise DataFormatError(path, f"opset {opset} of the default ONNX domain is older than {OLDEST_OPSET} "
                                    f"(onnxruntime's oldest) and onnx's version converter cannot raise it to "
                                    f"{CONVERT_TO_OPSET}: {reason}") from exc
    return converted


def check_connectivity(graph: onnx.GraphProto, path) -> None:
    """Every node input exists, every tensor is made once, the nodes are in topological order
    (ONNX requires it: qonnx's shape inference reads them in file order) and form no cycle."""
    initializers = {t.name for t in graph.initializer}
    graph_inputs = [i.name for i in graph.input]
    repeated = sorted({n for n in graph_inputs if graph_inputs.count(n) > 1})
    if repeated:
        raise DataFormatError(path, f"graph input {repeated[0]!r} is declared {graph_inputs.count(repeated[0])} times")
    producer: dict[str, tuple[int, onnx.NodeProto]] = {}
    for index, node in enumerate(graph.node):
        for tensor in node.output:
            if not tensor:
                continue
            if tensor in producer:
                raise DataFormatError(path, f"{describe(node, index)} and {describe(*reversed(producer[tensor]))} "
                                            f"both make tensor {tensor!r} (duplicate output name)")
            if tensor in initializers or tensor in graph_inputs:
                what = "an initializer" if tensor in initializers else "a graph input"
                raise DataFormatError(path, f"{describe(node, index)}: its output {tensor!r} is also {what}'s name")
            producer[tensor] = (index, node)
    available = initializers | set(graph_inputs)
    for index, node in enumerate(graph.node):
        for position, tensor in enumerate(node.input):
            if not tensor or tensor in available:
                continue
            field = field_name(node, position)
            if tensor not in producer:
                raise DataFormatError(path, f"{describe(node, index)}: input {position} ({field}) is tensor "
                                            f"{tensor!r}, which is no graph input, initializer or node output "
                                            "(a dangling input)")
            cycle = find_cycle(graph, producer, index)
            if cycle:
                raise DataFormatError(path, "the graph has a cycle: " + " -> ".join(
                    describe(graph.node[i], i) for i in cycle + cycle[:1]))
            later = producer[tensor]
            raise DataFormatError(path, f"{describe(node, index)}: input {position} ({field}) {tensor!r} is made "
                                        f"later, by {describe(later[1], later[0])}; ONNX requires the nodes in "
                                        "topological order")
        available.update(t for t in node.output if t)
    for output in graph.output:
        if output.name not in producer and output.name not in available:
            raise DataFormatError(path, f"graph output {output.name!r} is made by no node")


def find_cycle(graph: onnx.GraphProto, producer: dict, start: int) -> list[int]:
    """Node indices of a cycle through node `start` (each feeds the next), or [] if there is none."""
    def feeders(index):
        return [producer[t][0] for t in graph.node[index].input if t in producer]

    path, seen = [start], set()

    def walk(index) -> bool:
        for feeder in feeders(index):
            if feeder == start:
                return True
            if feeder not in seen:
                seen.add(feeder)
                path.append(feeder)
                if walk(feeder):
                    return True
                path.pop()
        return False

    if not walk(start):
        return []
    cycle = list(reversed(path))  # feeders first: ..., start
    return cycle[-1:] + cycle[:-1]  # from `start`, each node feeding the next


def check_data_input(graph: onnx.GraphProto, path, input_shape=None) -> None:
    """The graph's data inputs (inputs without an initializer): each used, float32, of a
    known shape (the batch dimension may be symbolic); `input_shape` sets the shape first."""
    initializers = {t.name: t for t in graph.initializer}
    used = {t for node in graph.node for t in node.input}
    for declared in graph.input:
        if declared.name in initializers:
            check_declared_initializer(declared, initializers[declared.name], path)
            if declared.name not in used:  # qonnx's cleanup would leave it as a second data input
                raise DataFormatError(path, f"graph input {declared.name!r} (an initializer) is used by no node; "
                                            "the graph declares inputs it does not use")
    data = [i for i in graph.input if i.name not in initializers]
    if not data:
        raise DataFormatError(path, "the graph has no data input (every graph input is an initializer)")
    for value in data:
        if value.name not in used:
            raise DataFormatError(path, f"graph input {value.name!r} is used by no node; the graph declares "
                                        "inputs it does not use")
        if not value.type.HasField("tensor_type"):
            raise DataFormatError(path, f"graph input {value.name!r} is not a tensor")
        elem = value.type.tensor_type.elem_type
        if elem != DATA_INPUT_TYPE:
            raise DataFormatError(path, f"graph input {value.name!r} has type {type_name(elem)}; qapflow takes float32 "
                                        "inputs (FLOAT), as qonnx executes the graph and its input quantizer reads them")
    if input_shape is not None:
        set_input_shape(data[0], list(input_shape), path)
        del graph.value_info[:]  # shapes of the file's other tensors are inferred again from the new one
    for value in data:
        check_shape(value, path)


def type_name(elem_type: int) -> str:
    return TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() else str(elem_type)


def check_declared_initializer(declared: onnx.ValueInfoProto, init: onnx.TensorProto, path) -> None:
    """A graph input that is also an initializer (older exporters declare every weight) must
    declare the initializer's own type and shape; onnx's inference otherwise fails unnamed."""
    tensor_type = declared.type.tensor_type
    if tensor_type.elem_type and tensor_type.elem_type != init.data_type:
        raise DataFormatError(path, f"initializer {init.name!r} is {type_name(init.data_type)} but the graph "
                                    f"input of that name declares {type_name(tensor_type.elem_type)}")
    if tensor_type.HasField("shape"):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        if len(dims) != len(init.dims) or any(d is not None and d != v for d, v in zip(dims, init.dims)):
            raise DataFormatError(path, f"initializer {init.name!r} has shape {list(init.dims)} but the graph "
                                        f"input of that name declares {dims}")


def shape_text(value: onnx.ValueInfoProto) -> str:
    dims = value.type.tensor_type.shape.dim
    return "[" + ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in dims) + "]"


def set_input_shape(value: onnx.ValueInfoProto, shape: list[int], path) -> None:
    """--input-shape: concrete dims for the data input; declared concrete dims must agree."""
    if not shape or any(int(d) < 1 for d in shape):
        raise DataFormatError(path, f"--input-shape {','.join(map(str, shape))}: give positive sizes, e.g. 1,16")
    tensor_type = value.type.tensor_type
    if tensor_type.HasField("shape") and tensor_type.shape.dim:
        declared = list(tensor_type.shape.dim)
        if len(declared) != len(shape):
            raise DataFormatError(path, f"--input-shape {','.join(map(str, shape))} has {len(shape)} dimensions; "
                                        f"graph input {value.name!r} declares {len(declared)} ({shape_text(value)})")
        for axis, (dim, size) in enumerate(zip(declared, shape)):
            if dim.HasField("dim_value") and dim.dim_value != size and axis > 0:
                raise DataFormatError(path, f"--input-shape gives {size} in dimension {axis}; graph input "
                                            f"{value.name!r} declares {dim.dim_value} there ({shape_text(value)})")
    tensor_type.ClearField("shape")
    for size in shape:
        tensor_type.shape.dim.add().dim_value = int(size)


def check_shape(value: onnx.ValueInfoProto, path) -> None:
    """Every dimension but the batch one (the first) a positive number."""
    hint = "give its shape: qapflow compile --input-shape 1,N (the batch size first)"
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape") or not tensor_type.shape.dim:
        raise DataFormatError(path, f"graph input {value.name!r} has no shape; {hint}")
    for axis, dim in enumerate(tensor_type.shape.dim):
        if dim.HasField("dim_value") and dim.dim_value < 1:
            raise DataFormatError(path, f"graph input {value.name!r} has size {dim.dim_value} in dimension "
                                        f"{axis} ({shape_text(value)}); every size must be at least 1")
        if axis > 0 and not dim.HasField("dim_value"):
            what = f"symbolic ({dim.dim_param!r})" if dim.dim_param else "unknown"
            raise DataFormatError(path, f"graph input {value.name!r}: dimension {axis} of {shape_text(value)} is "
                                        f"{what}; only the batch dimension may be; {hint}")


def check_batch_norm(graph: onnx.GraphProto, consts: dict[str, np.ndarray], path) -> None:
    """A batch norm's variance plus epsilon must be positive: its square root divides."""
    for index, node in enumerate(graph.node):
        if node.op_type != "BatchNormalization" or len(node.input) < 5 or node.input[4] not in consts:
            continue
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        var = np.asarray(consts[node.input[4]], np.float64)
        bad = var + eps <= 0
        if bad.any():
            first = np.argwhere(bad)[0] if var.ndim else ()
            raise DataFormatError(path, f"{describe(node, index)}: input_var ({node.input[4]!r}) is "
                                        f"{float(var[tuple(first)]):g} at {list(map(int, first))} with epsilon {eps:g}; "
                                        "a variance plus epsilon must be greater than 0")


def shape_stand_in(proto: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, str]]:
    """A copy whose quantizers are what they are to shapes (qonnx's own shape-compatible op for
    them: Identity), every node named as ingest will name it; and {node name: its real op}."""
    import copy

    model = copy.deepcopy(proto)
    ops = {}
    for index, node in enumerate(model.graph.node):
        node.name = node.name or f"{node.op_type}_n{index}"
        if node.op_type in QUANTIZER_INPUTS and node.input:
            ops[node.name] = node.op_type
            node.CopyFrom(helper.make_node("Identity", [node.input[0]], list(node.output), name=node.name))
    return model, ops


def with_inferred_shapes(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The model with every tensor's inferred shape declared (onnx's version converter needs the
    shapes of the standard ops' inputs, which onnx cannot infer through qonnx's quantizers)."""
    import copy

    stand_in = shape_stand_in(proto)[0]
    for opset in stand_in.opset_import:  # old ops have no shape inference; their shapes are 13's
        if opset.domain in ("", "ai.onnx"):
            opset.version = CONVERT_TO_OPSET
    try:
        inferred = onnx.shape_inference.infer_shapes(stand_in)
    except Exception:  # the converter then says what it is missing
        return proto
    model = copy.deepcopy(proto)
    known = {v.name for v in [*model.graph.input, *model.graph.output, *model.graph.value_info]}
    model.graph.value_info.extend(v for v in inferred.graph.value_info if v.name not in known)
    return model


def check_shapes(proto: onnx.ModelProto, path) -> None:
    """onnx's shape inference in strict mode over the graph, its quantizers read as Identity:
    weights that do not fit their input are named with the node. qonnx's InferShapes, later,
    is not strict: it leaves such a node's output without a shape and the graph fails where
    it is executed."""
    model, ops = shape_stand_in(proto)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except onnx.shape_inference.InferenceError as exc:
        # the first finding is the cause; the ones after it are nodes left without an input type
        text = str(exc).replace("[ShapeInferenceError] Inference error(s): ", "").strip().splitlines()[0]
        text = re.sub(r"\((\d+)\)", lambda m: f"({type_name(int(m.group(1)))})", text) if "elem type" in text else text
        for name, op in ops.items():  # name the quantizers by their own op, not the stand-in
            text = text.replace(f"(op_type:Identity, node name: {name})", f"(op_type:{op}, node name: {name})")
        raise DataFormatError(path, f"shapes or types do not fit: {text}") from None
    check_gemm_bias(inferred.graph, path)


def check_gemm_bias(graph: onnx.GraphProto, path) -> None:
    """A Gemm's C must broadcast to its output [M, N] (onnx's inference does not check it;
    onnxruntime stops with "Invalid bias shape for broadcast" when the graph runs)."""
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes.setdefault(value.name, [d.dim_value for d in dims])
    for index, node in enumerate(graph.node):
        if node.op_type != "Gemm" or len(node.input) < 3 or not node.input[2]:
            continue
        bias, out = shapes.get(node.input[2]), shapes.get(node.output[0])
        if bias is None or out is None:
            continue
        try:
            fits = list(np.broadcast_shapes(tuple(bias), tuple(out))) == out
        except ValueError:
            fits = False
        if not fits:
            raise DataFormatError(path, f"{describe(node, index)}: input 'C' ({node.input[2]!r}) has shape {bias}, "
                                        f"which does not broadcast to the Gemm's output {out}")


def check_finite(graph: onnx.GraphProto, consts: dict[str, np.ndarray], path) -> None:
    """No NaN or inf in any float constant (weights, biases, batch-norm parameters, scales):
    named with the constant and the nodes that read it."""
    users: dict[str, list[str]] = {}
    for index, node in enumerate(graph.node):
        for position, tensor in enumerate(node.input):
            users.setdefault(tensor, []).append(f"{field_name(node, position)} of {describe(node, index)}")
    for name, value in consts.items():
        if not np.issubdtype(value.dtype, np.floating):
            continue
        bad = ~np.isfinite(value)
        if bad.any():
            first = np.argwhere(bad)[0] if value.ndim else ()
            kinds = " and ".join(k for k, m in (("NaN", np.isnan(value)), ("inf", np.isinf(value))) if m.any())
            where = f", first at {list(map(int, first))}" if value.ndim else ""
            used = "; ".join(users.get(name, [])) or "read by no node"
            raise DataFormatError(path, f"constant {name!r} ({used}) holds {int(bad.sum())} {kinds} "
                                        f"value(s){where}; every weight, bias and parameter must be finite")

