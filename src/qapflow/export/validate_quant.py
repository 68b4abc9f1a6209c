"""The constants and attributes of qonnx's quantizers (Quant, BipolarQuant, Trunc, in any of the
domains tools write them in), checked before anything computes with them.

QONNX's meaning, as qonnx executes it: value = scale * (clip(round(x / scale + zero point),
min_int, max_int) - zero point), the integer range from the bit width, `signed` and `narrow`.
So a scale must be finite and positive (a negative one flips the grid: it would be accepted and
compiled into another function), the zero point an integer within that range, the bit width
an integer from 1 to 32 (qapflow's integer model, like FINN, works on integers up to 32 bits),
and the rounding mode one qonnx's own reader resolves.
"""

from __future__ import annotations

import functools

import numpy as np
import onnx
from onnx import numpy_helper
from qonnx.custom_op.general.quant import max_int, min_int, resolve_rounding_mode

from qapflow.common.errors import DataFormatError

MAX_BITS = 32
# the fields of each quantizer's inputs, in order (qonnx's op definitions); Trunc's second
# version adds an output scale
QUANTIZER_INPUTS = {
    "Quant": [("input", "scale", "zero point", "bit width")],
    "BipolarQuant": [("input", "scale")],
    "Trunc": [("input", "scale", "zero point", "input bit width", "output bit width"),
              ("input", "scale", "zero point", "input bit width", "output scale", "output bit width")],
    "MultiThreshold": [("input", "thresholds")],
}
# every name tools give a rounding mode, in qonnx's spelling; the ones installed qonnx reads are kept
ROUNDING_CANDIDATES = ("ROUND", "HALF_EVEN", "CEIL", "FLOOR", "ROUND_TO_ZERO", "UP", "DOWN", "HALF_UP", "HALF_DOWN")


def describe(node: onnx.NodeProto, index: int) -> str:
    """A node as an error names it: its name in the file (or the one ingest gives it) and op."""
    if node.name:
        return f"node {node.name} ({node.op_type})"
    return f"node {node.op_type}_n{index} ({node.op_type}, unnamed: node {index} of the graph)"


def field_name(node: onnx.NodeProto, position: int) -> str:
    """What a node's input is called: qonnx's field for its quantizers, the ONNX schema's name
    for standard ops (onnx.defs), else its position."""
    if node.op_type in QUANTIZER_INPUTS:
        forms = QUANTIZER_INPUTS[node.op_type]
        fields = next((f for f in forms if len(f) == len(node.input)), forms[-1])
        return fields[position] if position < len(fields) else f"input {position}"
    try:
        inputs = onnx.defs.get_schema(node.op_type, domain=node.domain if node.domain != "ai.onnx" else "").inputs
    except onnx.defs.SchemaError:
        return f"input {position}"
    if not inputs:
        return f"input {position}"
    return f"input '{inputs[min(position, len(inputs) - 1)].name}'"


def constant_values(graph: onnx.GraphProto, path) -> dict[str, np.ndarray]:
    """Every initializer and Constant node's value as an array; one that cannot be read (its
    bytes do not fit its shape and type) is named."""
    values: dict[str, np.ndarray] = {}
    tensors = [(t.name, t, f"initializer {t.name!r}") for t in graph.initializer]
    for index, node in enumerate(graph.node):
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for a in node.attribute:
                if a.name == "value" and a.type == a.TENSOR:
                    tensors.append((node.output[0], a.t, f"the value of {describe(node, index)}"))
                elif a.name in ("value_float", "value_floats"):
                    values[node.output[0]] = np.asarray(onnx.helper.get_attribute_value(a), np.float32)
    for name, tensor, what in tensors:
        try:
            values[name] = numpy_helper.to_array(tensor)
        except Exception as exc:  # ValueError (bytes vs shape), TypeError (unknown type), ...
            raise DataFormatError(path, f"{what} cannot be read ({list(tensor.dims)}, data type "
                                        f"{tensor.data_type}): {exc}") from exc
    return values


@functools.cache
def rounding_modes() -> tuple[str, ...]:
    modes = []
    for mode in ROUNDING_CANDIDATES:
        try:
            resolve_rounding_mode(mode)
            modes.append(mode)
        except ValueError:
            pass
    return tuple(modes)


def _attribute(node, name):
    return next((a for a in node.attribute if a.name == name), None)


def check_attributes(node: onnx.NodeProto, where: str, path) -> dict:
    """signed and narrow 0 or 1, rounding_mode a name qonnx resolves; returns them (qonnx's
    defaults where absent)."""
    found = {"signed": 1, "narrow": 0}
    for name in ("signed", "narrow"):
        a = _attribute(node, name)
        if a is None:
            continue
        if a.type != a.INT or a.i not in (0, 1):
            shown = onnx.helper.get_attribute_value(a)
            raise DataFormatError(path, f"{where}: attribute {name} is {shown!r}; it must be 0 or 1")
        found[name] = a.i
    a = _attribute(node, "rounding_mode")
    if a is not None:
        accepted = ", ".join(rounding_modes()) + " (or lower case)"
        mode = a.s.decode("utf-8", "replace") if a.type == a.STRING else None
        try:
            if mode is None:
                raise ValueError(mode)
            resolve_rounding_mode(mode)
        except ValueError:
            shown = mode if mode is not None else onnx.helper.get_attribute_value(a)
            raise DataFormatError(path, f"{where}: attribute rounding_mode is {shown!r}, which qonnx does not "
                                        f"know; use one of {accepted}") from None
    return found


def _at(mask: np.ndarray) -> str:
    """' at [i, j]' for the first True of a mask over a non-scalar array."""
    if mask.size <= 1:
        return ""
    return f" at {[int(i) for i in np.argwhere(mask)[0]]}"


def _number(value: np.ndarray, mask: np.ndarray) -> str:
    return f"{float(value[mask].flat[0]):g}"


def check_bit_width(value: np.ndarray) -> str | None:
    """The problem with a bit width, or None."""
    if value.size != 1:
        return f"has {value.size} values (shape {list(value.shape)}); a bit width is one number"
    bits = float(value.reshape(-1)[0])
    if not np.isfinite(bits):
        return f"is {bits:g}; a bit width must be an integer from 1 to {MAX_BITS}"
    if bits != round(bits) or not 1 <= bits <= MAX_BITS:
        return f"is {bits:g}; a bit width must be an integer from 1 to {MAX_BITS}"
    return None


def check_scale(value: np.ndarray, x: np.ndarray | None) -> str | None:
    value = np.asarray(value, np.float64)
    for mask, word in ((np.isnan(value), "NaN"), (np.isinf(value), "infinite"), (value == 0, "zero"),
                       (value < 0, "negative")):
        if mask.any():
            shown = "" if word in ("NaN", "zero") else f" ({_number(value, mask)})"
            return f"is {word}{shown}{_at(mask)}; a scale must be finite and greater than 0"
    return _broadcast_problem(value, x)


def _broadcast_problem(value: np.ndarray, x: np.ndarray | None) -> str | None:
    """A parameter of a quantizer of constants (weights) must broadcast to their shape."""
    if x is None:
        return None
    try:
        fits = np.broadcast_shapes(value.shape, x.shape) == x.shape
    except ValueError:
        fits = False
    return None if fits else (f"has shape {list(value.shape)}, which does not broadcast to the shape "
                              f"{list(x.shape)} of the values it quantizes")


def check_zero_point(value: np.ndarray, x, bits, signed: int, narrow: int) -> str | None:
    value = np.asarray(value, np.float64)
    for mask, word in ((np.isnan(value), "NaN"), (np.isinf(value), "infinite"), (value != np.round(value), "not an integer")):
        if mask.any():
            shown = "" if word == "NaN" else f" ({_number(value, mask)})"
            return f"is {word}{shown}{_at(mask)}; a zero point must be an integer"
    if bits is not None:
        lo, hi = float(min_int(signed, narrow, bits)), float(max_int(signed, narrow, bits))
        outside = (value < lo) | (value > hi)
        if outside.any():
            kind = "signed" if signed else "unsigned"
            return (f"is {_number(value, outside)}{_at(outside)}, outside the {bits}-bit {kind} range "
                    f"[{lo:g}, {hi:g}] of the integers it offsets")
    return _broadcast_problem(value, x)


def check_quantizers(graph: onnx.GraphProto, consts: dict[str, np.ndarray], path) -> None:
    """Each Quant, BipolarQuant and Trunc node: its input count, attributes and, where they are
    constants, its scales, zero point and bit widths."""
    for index, node in enumerate(graph.node):
        if node.op_type not in QUANTIZER_INPUTS or node.op_type == "MultiThreshold":
            continue
        where = describe(node, index)
        forms = QUANTIZER_INPUTS[node.op_type]
        fields = next((f for f in forms if len(f) == len(node.input)), None)
        if fields is None or not all(node.input):
            wanted = " or ".join(str(len(f)) for f in forms)
            raise DataFormatError(path, f"{where}: has {len(node.input)} inputs ({list(node.input)}); {node.op_type} "
                                        f"takes {wanted}: {'; '.join(', '.join(f) for f in forms)}")
        attrs = check_attributes(node, where, path) if node.op_type != "BipolarQuant" else {"signed": 1, "narrow": 0}
        named = dict(zip(fields, node.input))
        x = consts.get(named["input"])
        bits = {}
        for field in ("bit width", "input bit width", "output bit width"):
            value = consts.get(named.get(field, ""))
            if value is None:
                continue
            problem = check_bit_width(np.asarray(value, np.float64))
            if problem:
                raise DataFormatError(path, f"{where}: {field} ({named[field]!r}) {problem}")
            bits[field] = int(np.asarray(value).reshape(-1)[0])
        for field in ("scale", "output scale"):
            value = consts.get(named.get(field, ""))
            problem = check_scale(value, x if field == "scale" else None) if value is not None else None
            if problem:
                raise DataFormatError(path, f"{where}: {field} ({named[field]!r}) {problem}")
        value = consts.get(named.get("zero point", ""))
        if value is not None:
            width = bits.get("bit width", bits.get("input bit width"))
            problem = check_zero_point(value, x, width, attrs["signed"], attrs["narrow"])
            if problem:
                raise DataFormatError(path, f"{where}: zero point ({named['zero point']!r}) {problem}")
