"""The integer graph's requantization as an hls4ml layer, in parallel and stream form.

hls4ml has no layer for the IntGraph's two requantization maps (intmodel/ops/requant.py), so
qapflow registers one through hls4ml's extension API, as it does the dense chain's threshold
layer: `QapflowRequant`, its function-call and (empty) config templates, and its kernel,
rendered from hls_templates/requant_kernel.h.tmpl into the project's generated code. The kernel
works on integers: shift = ReLU, round half to even by 2**s, clip; thresholds = base[c] +
#{k : sign[c] * a >= T[c, k]}. Channel c of element i is i % channels (channels last), and the
tables are in the hls4ml tensor's channel order (`channel_map`).
"""

from __future__ import annotations

import numpy as np
from hls4ml.model.layers import Layer

from qapflow.backends.hls4ml.kernel_layer import register_kernel_layer
from qapflow.backends.identifiers import sanitize
from qapflow.backends.templates import render


class QapflowRequant(Layer):
    def initialize(self):
        inp = self.get_input_variable()
        self.add_output_variable(inp.shape)
        self.set_attr("n_in", inp.size())


def _array(name: str, ctype: str, values) -> str:
    return f"static const {ctype} {name}[{len(values)}] = {{{', '.join(str(int(v)) for v in values)}}};"


def _shift_body(op, width: int) -> tuple[str, str, str]:
    s = op.out_exp - op.in_exp
    lines = ["    if (y < 0) y = 0;"] if op.relu else []
    if s > 0:  # floor, then up where the remainder passes half or ties with an odd quotient
        lines += [f"    q = y >> {s};",
                  f"    ap_int<{width}> rem = y - (q << {s});",
                  f"    if (rem > {1 << (s - 1)} || (rem == {1 << (s - 1)} && q[0])) q = q + 1;"]
    elif s < 0:
        lines.append(f"    q = y << {-s};")
    else:
        lines.append("    q = y;")
    lines += [f"    if (q < {int(op.lo)}) q = {int(op.lo)};", f"    if (q > {int(op.hi)}) q = {int(op.hi)};"]
    what = f"clip(round_half_even({'relu(a)' if op.relu else 'a'} * 2^{-s}), {op.lo}, {op.hi})"
    return "\n".join(lines), "", what


def _threshold_body(op, index: int, width: int, channel_map: np.ndarray) -> tuple[str, str, str]:
    t = op.thresholds
    rows = [int(c) for c in channel_map]
    k = t.values.shape[1]
    table = ",\n".join("    {" + ", ".join(str(int(v)) for v in t.values[c]) + "}" for c in rows)
    tables = "\n".join([
        f"static const ap_int<{width}> thresholds_{index}[{len(rows)}][{k}] = {{\n{table}\n}};",
        _array(f"count_{index}", "int", t.count[rows]),
        _array(f"base_{index}", "int", t.base[rows]),
        _array(f"sign_{index}", "int", np.asarray(op.signs)[rows]),
    ])
    body = "\n".join([
        f"    ap_int<{width}> v = sign_{index}[c] < 0 ? ap_int<{width}>(-y) : y;",
        f"    q = base_{index}[c];",
        f"    for (int k = 0; k < {k}; k++) {{",
        "        #pragma HLS UNROLL",
        f"        if (k < count_{index}[c] && v >= thresholds_{index}[c][k]) q = q + 1;",
        "    }",
    ])
    return body, tables, f"base[c] + #(thresholds of channel c that sign[c] * a reaches), {t.comparators} comparators"


def kernel_source(node) -> str:
    op, width, channel_map = node.get_attr("int_op"), node.get_attr("int_width"), node.get_attr("channel_map")
    if op.kind == "shift":
        body, tables, what = _shift_body(op, width)
    else:
        body, tables, what = _threshold_body(op, node.index, width, channel_map)
    return render("requant_kernel.h.tmpl", index=node.index, name=sanitize(node.name), kind=op.kind, what=what,
                  tables=tables, width=width, body=body, n=node.get_attr("n_in"), channels=len(channel_map))


def register() -> None:
    register_kernel_layer("QapflowRequant", QapflowRequant, "qapflow_requant", kernel_source)


def requant_layer(name: str, inputs: list[str], op, width: int, channel_map) -> dict:
    """The layer_list entry of an IntGraph shift or thresholds op."""
    return {"class_name": "QapflowRequant", "name": name, "inputs": inputs, "int_op": op, "int_width": int(width),
            "channel_map": np.asarray(channel_map, np.int64)}
