"""A thresholding activation layer for hls4ml, through its extension API.

hls4ml has no multi-threshold layer, so qapflow registers one: `QapflowThreshold` (layer),
its function-call and config templates, and its kernel rendered from
hls_templates/threshold_kernel.h.tmpl into the project's generated code (as the sparse dense
kernel is). The thresholds are the IntModel's integers, scaled into the accumulator's type.
"""

from __future__ import annotations

from hls4ml.model.layers import Layer

from qapflow.backends.hls4ml.kernel_layer import register_kernel_layer
from qapflow.backends.identifiers import sanitize
from qapflow.backends.templates import render


class QapflowThreshold(Layer):
    def initialize(self):
        inp = self.get_input_variable()
        self.add_output_variable(inp.shape)
        self.set_attr("n_in", inp.size())


def _table(name: str, ctype: str, rows) -> str:
    body = ",\n".join("        {" + ", ".join(str(v) for v in row) + "}" for row in rows)
    return f"    static const {ctype} {name}[][{len(rows[0])}] = {{\n{body}\n    }};"


def kernel_source(node) -> str:
    t = node.get_attr("thresholds")
    unit = 2.0 ** node.get_attr("acc_exp")
    acc_t = node.get_input_variable().type.name
    n, width = len(t.base), t.values.shape[1]
    values = [[repr(float(v) * unit) for v in row] for row in t.values]
    tables = "\n".join([
        _table(f"thresholds_{node.index}", acc_t, values),
        f"    static const int count_{node.index}[{n}] = {{{', '.join(map(str, t.count.tolist()))}}};",
        f"    static const long long base_{node.index}[{n}] = {{{', '.join(map(str, t.base.tolist()))}}};",
    ])
    span = int(max(abs(int(t.base.min())), abs(int(t.base.max())) + int(t.count.max()) + 1))
    return render("threshold_kernel.h.tmpl", index=node.index, name=sanitize(node.name), n=n, width=width,
                  comparators=int(t.count.sum()), tables=tables, count_bits=span.bit_length() + 2)


def register() -> None:
    register_kernel_layer("QapflowThreshold", QapflowThreshold, "qapflow_threshold", kernel_source)


def thresholds_layer(name: str, inputs: list[str], layer) -> dict:
    """The layer_list entry of an IntLayer's thresholds."""
    return {"class_name": "QapflowThreshold", "name": name, "inputs": inputs,
            "thresholds": layer.thresholds, "acc_exp": layer.acc_exp}
