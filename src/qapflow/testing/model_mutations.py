"""Mutations of a valid QONNX file, one part of it each: quantizer constants and attributes,
values, shapes, types, connectivity, opsets and the bytes themselves.

Each says what a correct compiler does with its result: `invalid` (refuse it with one clear
error), `valid` (still a valid model: compile it exactly, or refuse it clearly where qapflow does
not support it) or `either` (an old opset onnx's converter may or may not raise). A mutation
takes a copy of the model and a random generator (which node, which element) and returns the
mutated model, raw bytes, or None where the model has nothing it could act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QUANTIZERS = ("Quant", "BipolarQuant", "Trunc")


# --- where a mutation acts ------------------------------------------------------------------

def _init(model: onnx.ModelProto, name: str):
    return next((t for t in model.graph.initializer if t.name == name), None)


def _array(model, name) -> np.ndarray | None:
    t = _init(model, name)
    return None if t is None else numpy_helper.to_array(t)


def _own_param(model, node, position: int, value) -> None:
    """Give one node's input `position` a new initializer of its own holding `value` (Brevitas
    shares zero points and bit widths between quantizers; the mutation is of this node only)."""
    old_name = node.input[position]
    name = f"{old_name}__mutated"
    old = _init(model, old_name)
    dtype = numpy_helper.to_array(old).dtype if old is not None else np.float32
    model.graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype), name))
    node.input[position] = name
    if not any(old_name in n.input for n in model.graph.node):  # no longer read: gone, as an exporter leaves it
        model.graph.initializer.remove(old)
        for declared in [i for i in model.graph.input if i.name == old_name]:
            model.graph.input.remove(declared)


def _set_init(model, name: str, value: np.ndarray) -> None:
    t = _init(model, name)
    t.CopyFrom(numpy_helper.from_array(np.asarray(value), name))
    for declared in model.graph.input:  # older exporters declare initializers as inputs too
        if declared.name == name:
            declared.CopyFrom(helper.make_tensor_value_info(name, t.data_type, list(t.dims)))


def _quantizers(model, ops=("Quant",), constant_input=None) -> list:
    out = []
    for node in model.graph.node:
        if node.op_type not in ops:
            continue
        if constant_input is not None and (_init(model, node.input[0]) is not None) != constant_input:
            continue
        out.append(node)
    return out


def _pick(rng, items):
    return items[int(rng.integers(len(items)))] if items else None


def _data_input(model):
    inits = {t.name for t in model.graph.initializer}
    return next(i for i in model.graph.input if i.name not in inits)


def _float_inits(model, exclude_quant_params=True):
    params = set()
    if exclude_quant_params:
        for node in model.graph.node:
            if node.op_type in QUANTIZERS:
                params.update(node.input[1:])
    return [t for t in model.graph.initializer if t.data_type == TensorProto.FLOAT and t.name not in params
            and numpy_helper.to_array(t).size > 1]


@dataclass
class Mutation:
    name: str
    family: str
    expect: str  # "invalid", "valid" or "either"
    apply: Callable  # (model proto copy, rng) -> proto, bytes, or None where it does not apply


MUTATIONS: list[Mutation] = []


def _param(position: int, value_of, ops=("Quant",)):
    """A mutation of one quantizer's constant input: value_of(old value, node, rng) -> new."""
    def apply(model, rng):
        node = _pick(rng, [n for n in _quantizers(model, ops) if len(n.input) > position
                           and _init(model, n.input[position]) is not None])
        if node is None:
            return None
        old = _array(model, node.input[position])
        _own_param(model, node, position, value_of(np.asarray(old, np.float64), node, rng))
        return model
    return apply


def _attr(name: str, value_of, ops=("Quant",)):
    def apply(model, rng):
        node = _pick(rng, _quantizers(model, ops))
        if node is None:
            return None
        kept = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend(kept)
        old = {a.name: helper.get_attribute_value(a) for a in kept}
        value = value_of(node, old, rng)
        node.attribute.append(helper.make_attribute(name, value))
        return model
    return apply


def _register_params() -> None:
    scales = {
        "scale_zero": ("invalid", lambda v, n, r: np.zeros_like(v)),
        "scale_negative": ("invalid", lambda v, n, r: -v),
        "scale_nan": ("invalid", lambda v, n, r: np.full_like(v, np.nan)),
        "scale_inf": ("invalid", lambda v, n, r: np.full_like(v, np.inf)),
        "scale_huge": ("valid", lambda v, n, r: np.full_like(v, 1e30)),
        "scale_tiny": ("valid", lambda v, n, r: np.full_like(v, 1e-30)),
        "scale_other_positive": ("valid", lambda v, n, r: v * r.uniform(0.5, 2.0)),
    }
    for name, (expect, value_of) in scales.items():
        MUTATIONS.append(Mutation(name, "scale", expect, _param(1, value_of, ("Quant", "BipolarQuant"))))
    zero_points = {
        "zero_point_fraction": ("invalid", lambda v, n, r: v + 0.5),
        "zero_point_nan": ("invalid", lambda v, n, r: np.full_like(v, np.nan)),
        "zero_point_out_of_range": ("invalid", lambda v, n, r: np.full_like(v, 2.0 ** 33)),
        "zero_point_huge": ("invalid", lambda v, n, r: np.full_like(v, 1e30)),
    }
    for name, (expect, value_of) in zero_points.items():
        MUTATIONS.append(Mutation(name, "zero point", expect, _param(2, value_of)))
    bits = {
        "bits_zero": ("invalid", lambda v, n, r: np.zeros_like(v)),
        "bits_33": ("invalid", lambda v, n, r: np.full_like(v, 33)),
        "bits_fraction": ("invalid", lambda v, n, r: np.full_like(v, 2.5)),
        "bits_nan": ("invalid", lambda v, n, r: np.full_like(v, np.nan)),
        "bits_negative": ("invalid", lambda v, n, r: np.full_like(v, -4)),
        "bits_vector": ("invalid", lambda v, n, r: np.full(3, float(v.reshape(-1)[0]))),
        "bits_other": ("valid", lambda v, n, r: np.full_like(v, int(r.integers(2, 7)))),
    }
    for name, (expect, value_of) in bits.items():
        MUTATIONS.append(Mutation(name, "bit width", expect, _param(3, value_of)))
    modes = ["ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN", "floor", "half_up"]
    attrs = {
        "signed_2": ("invalid", "signed", lambda n, o, r: 2),
        "narrow_2": ("invalid", "narrow", lambda n, o, r: 2),
        "narrow_negative": ("invalid", "narrow", lambda n, o, r: -1),
        "signed_as_float": ("invalid", "signed", lambda n, o, r: 1.0),
        "rounding_unknown": ("invalid", "rounding_mode", lambda n, o, r: "STOCHASTIC"),
        "rounding_as_int": ("invalid", "rounding_mode", lambda n, o, r: 3),
        "rounding_round_to_zero": ("invalid", "rounding_mode", lambda n, o, r: "ROUND_TO_ZERO"),
        "rounding_other_valid": ("valid", "rounding_mode", lambda n, o, r: modes[int(r.integers(len(modes)))]),
        "narrow_flip": ("valid", "narrow", lambda n, o, r: 1 - int(o.get("narrow", 0))),
        "signed_flip": ("valid", "signed", lambda n, o, r: 1 - int(o.get("signed", 1))),
    }
    for name, (expect, attr, value_of) in attrs.items():
        MUTATIONS.append(Mutation(name, "attribute", expect, _attr(attr, value_of)))


_register_params()


# --- values, shapes and types ---------------------------------------------------------------

def _weight(model, rng):
    """A random quantized weight initializer (a Quant/BipolarQuant of a constant)."""
    node = _pick(rng, _quantizers(model, ("Quant", "BipolarQuant"), constant_input=True))
    return None if node is None else node.input[0]


def _values(value_of, target=_weight):
    def apply(model, rng):
        name = target(model, rng)
        if name is None:
            return None
        _set_init(model, name, value_of(_array(model, name).astype(np.float32), rng))
        return model
    return apply


def _poke(value, rng, new):
    value = value.copy()
    value.reshape(-1)[int(rng.integers(value.size))] = new
    return value


def _any_float(model, rng):
    t = _pick(rng, _float_inits(model))
    return None if t is None else t.name


def _bn_var(model, rng):
    node = _pick(rng, [n for n in model.graph.node if n.op_type == "BatchNormalization"])
    return None if node is None else node.input[4]


for _name, _expect, _apply in [
    ("weight_nan", "invalid", _values(lambda v, r: _poke(v, r, np.nan))),
    ("weight_inf", "invalid", _values(lambda v, r: _poke(v, r, -np.inf))),
    ("constant_nan", "invalid", _values(lambda v, r: _poke(v, r, np.nan), _any_float)),
    ("constant_inf", "invalid", _values(lambda v, r: _poke(v, r, np.inf), _any_float)),
    ("bn_variance_nan", "invalid", _values(lambda v, r: _poke(v, r, np.nan), _bn_var)),
    ("bn_variance_negative", "invalid", _values(lambda v, r: _poke(v, r, -1.0), _bn_var)),
    ("weight_huge", "valid", _values(lambda v, r: _poke(v, r, 1e30))),
    ("weight_perturbed", "valid", _values(lambda v, r: v * r.uniform(0.8, 1.2, v.shape).astype(np.float32))),
    ("weight_extra_column", "invalid", _values(lambda v, r: np.concatenate([v, v[..., :1]], axis=-1))),
    ("weight_extra_row", "invalid", _values(lambda v, r: np.concatenate([v, v[:1]], axis=0))),
    ("weight_double", "invalid", _values(lambda v, r: v.astype(np.float64))),
    ("constant_double", "invalid", _values(lambda v, r: v.astype(np.float64), _any_float)),
]:
    MUTATIONS.append(Mutation(_name, "values" if "double" not in _name and "extra" not in _name else
                              ("dtype" if "double" in _name else "shape"), _expect, _apply))


def _per_channel_scale_shape(model, rng):
    node = _pick(rng, [n for n in _quantizers(model, constant_input=True) if _array(model, n.input[1]).size > 1])
    if node is None:
        return None
    scale = _array(model, node.input[1])
    _own_param(model, node, 1, np.concatenate([scale, scale[:1]], axis=0))
    return model


def _input_dim(edit):
    def apply(model, rng):
        dims = _data_input(model).type.tensor_type.shape.dim
        edit(dims, rng)
        return model
    return apply


def _symbolic_feature(dims, rng):
    dims[len(dims) - 1].Clear()
    dims[len(dims) - 1].dim_param = "features"


def _symbolic_batch(dims, rng):
    dims[0].Clear()
    dims[0].dim_param = "batch"


def _size_zero(dims, rng):
    dims[len(dims) - 1].dim_value = 0


def _no_shape(model, rng):
    _data_input(model).type.tensor_type.ClearField("shape")
    return model


def _input_type(elem_type):
    def apply(model, rng):
        _data_input(model).type.tensor_type.elem_type = elem_type
        return model
    return apply


for _name, _family, _expect, _apply in [
    ("scale_wrong_shape", "shape", "invalid", _per_channel_scale_shape),
    ("input_symbolic_features", "shape", "invalid", _input_dim(_symbolic_feature)),
    ("input_symbolic_batch", "shape", "valid", _input_dim(_symbolic_batch)),
    ("input_size_zero", "shape", "invalid", _input_dim(_size_zero)),
    ("input_no_shape", "shape", "invalid", _no_shape),
    ("input_int64", "dtype", "invalid", _input_type(TensorProto.INT64)),
    ("input_int8", "dtype", "invalid", _input_type(TensorProto.INT8)),
    ("input_bool", "dtype", "invalid", _input_type(TensorProto.BOOL)),
    ("input_double", "dtype", "invalid", _input_type(TensorProto.DOUBLE)),
]:
    MUTATIONS.append(Mutation(_name, _family, _expect, _apply))


# --- connectivity ---------------------------------------------------------------------------

def _dangling(model, rng):
    node = _pick(rng, [n for n in model.graph.node if n.input])
    node.input[int(rng.integers(len(node.input)))] = "no_such_tensor"
    return model


def _remove_node(model, rng):
    index = int(rng.integers(len(model.graph.node)))
    del model.graph.node[index]
    return model


def _duplicate_output(model, rng):
    nodes = list(model.graph.node)
    if len(nodes) < 2:
        return None
    i, j = sorted(rng.choice(len(nodes), 2, replace=False))
    nodes[j].output[0] = nodes[i].output[0]
    return model


def _cycle(model, rng):
    """An early node reads the output of a later one that depends on it."""
    nodes = list(model.graph.node)
    if len(nodes) < 3:
        return None
    j = int(rng.integers(2, len(nodes)))
    data = [n for n in nodes[:j] if n.input and _init(model, n.input[0]) is None]
    if not data:
        return None
    _pick(rng, data).input[0] = nodes[j].output[0]
    return model


def _reversed_order(model, rng):
    nodes = list(model.graph.node)[::-1]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def _unused_input(model, rng):
    model.graph.input.append(helper.make_tensor_value_info("unused_input", TensorProto.FLOAT, [1, 3]))
    return model


def _output_renamed(model, rng):
    model.graph.output[0].name = "not_made_by_any_node"
    return model


def _no_data_input(model, rng):
    inp = _data_input(model)
    shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(shape, np.float32), inp.name))
    return model


for _name, _apply in [("dangling_input", _dangling), ("removed_node", _remove_node),
                      ("duplicate_output", _duplicate_output), ("cycle", _cycle), ("reversed_order", _reversed_order),
                      ("unused_graph_input", _unused_input), ("output_made_by_no_node", _output_renamed),
                      ("input_made_constant", _no_data_input)]:
    MUTATIONS.append(Mutation(_name, "connectivity", "invalid", _apply))


# --- opsets and bytes -----------------------------------------------------------------------

def _opset(version):
    def apply(model, rng):
        for o in model.opset_import:
            if o.domain in ("", "ai.onnx"):
                o.version = version
        return model
    return apply


def _ir_version(model, rng):
    model.ir_version = onnx.IR_VERSION + 5
    return model


for _name, _expect, _apply in [("opset_0", "invalid", _opset(0)), ("opset_1", "either", _opset(1)),
                               ("opset_5", "either", _opset(5)), ("opset_11", "either", _opset(11)),
                               ("opset_99", "invalid", _opset(99)),
                               ("opset_next", "invalid", _opset(onnx.defs.onnx_opset_version() + 1)),
                               ("ir_version_future", "invalid", _ir_version)]:
    MUTATIONS.append(Mutation(_name, "opset", _expect, _apply))

PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def _truncated(model, rng):
    data = model.SerializeToString()
    return data[: int(len(data) * rng.uniform(0.05, 0.95))]


for _name, _apply in [("truncated_bytes", _truncated),
                      ("random_bytes", lambda m, r: r.bytes(int(r.integers(1, 4096)))),
                      ("png_header", lambda m, r: PNG_HEADER + r.bytes(64)),
                      ("empty_file", lambda m, r: b""),
                      ("text_file", lambda m, r: b"ir_version: 8\ngraph { node { op_type: 'Relu' } }\n")]:
    MUTATIONS.append(Mutation(_name, "bytes", "invalid", _apply))
