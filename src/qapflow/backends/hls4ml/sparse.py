"""An unrolled sparse dense kernel plugged into hls4ml through its extension API.

hls4ml's latency Dense loops over every weight and leaves the removal of multiplications
by constant zero to the HLS compiler; its `resource_unrolled` strategy needs a reuse
factor above 1. For a pruned network we want the generated C++ itself to hold one
multiplication per non-zero weight, so the code shows (and csim exercises) exactly what
pruning removed. Two registered passes do that, and the project stays an hls4ml project:

- `SparseDenseCodegen` (optimizer pass, in the backend's specific_types flow) marks every
  latency/io_parallel Dense layer and attaches its kernel, rendered from
  hls_templates/sparse_dense_kernel.h.tmpl, as generated code (written by hls4ml into
  firmware/nnet_utils/nnet_code_gen.h, like hls4ml's own unrolled kernels);
- `SparseDenseConfigTemplate` (layer template) points the layer's `kernel` at it.
"""

from __future__ import annotations

import numpy as np
from hls4ml.backends import get_backend
from hls4ml.backends.vivado.passes.core_templates import DenseConfigTemplate
from hls4ml.model.layers import Dense
from hls4ml.model.optimizer import OptimizerPass
from hls4ml.model.types import Source

from qapflow.backends.identifiers import sanitize
from qapflow.backends.templates import render

SPARSE_ATTR = "qapflow_sparse"
CODEGEN_ATTR = "qapflow_sparse_dense_codegen"
MULT_MARK = "* weights["


def kernel_body(weights: np.ndarray, n_in: int, n_out: int) -> str:
    """acc[j] = bias[j] + sum over non-zero w[i, j] of data[i] * weights[i * n_out + j]."""
    flat = weights.reshape(n_in, n_out)
    lines = []
    for j in range(n_out):
        lines.append(f"        acc[{j}] = (typename CONFIG_T::accum_t) biases[{j}];")
        for i in np.flatnonzero(flat[:, j]):
            lines.append(f"        acc[{j}] += (typename CONFIG_T::accum_t)(data[{i}] {MULT_MARK}{i * n_out + j}]);")
    return "\n".join(lines)


class SparseDenseCodegen(OptimizerPass):
    def match(self, node):
        return (isinstance(node, Dense) and node.get_attr("strategy", "latency").lower() == "latency"
                and node.model.config.get_config_value("IOType") == "io_parallel"
                and not node.get_attr(SPARSE_ATTR, False))

    def transform(self, model, node):
        n_in, n_out = node.get_attr("n_in"), node.get_attr("n_out")
        weights = node.weights["weight"].data
        code = render("sparse_dense_kernel.h.tmpl", index=node.index, name=sanitize(node.name),
                      nonzeros=int(np.count_nonzero(weights)), total=int(weights.size),
                      body=kernel_body(weights, n_in, n_out))
        node.set_attr(SPARSE_ATTR, True)
        node.set_attr(CODEGEN_ATTR, Source(code))
        return False


class SparseDenseConfigTemplate(DenseConfigTemplate):
    def get_name(self):
        return "qapflow_sparse_dense_config_template"

    def match(self, node):
        return super().match(node) and node.get_attr(SPARSE_ATTR, False)

    def format(self, node):
        text = super().format(node)
        namespace = node.model.config.get_writer_config().get("Namespace", None) or "nnet"
        return text.replace("nnet::DenseLatency<", f"{namespace}::dense_sparse_{node.index}<")


_registered = False


def register() -> None:
    """Register both passes (once per process) with hls4ml's Vivado backend, whose
    specific_types and apply_templates flows the Vitis backend runs too (last), so the
    kernel serves both vendors."""
    global _registered
    if _registered:
        return
    backend = get_backend("vivado")
    backend.register_pass("qapflow_sparse_dense_codegen", SparseDenseCodegen, flow="vivado:specific_types")
    backend.register_template(SparseDenseConfigTemplate)
    _registered = True


def count_multiplications(code_gen_header: str) -> int:
    return code_gen_header.count(MULT_MARK)
