"""A qapflow layer of hls4ml whose kernel is generated code, registered through hls4ml's
extension API: the layer class, a function-call template that renders the kernel into the
project's generated code (firmware/nnet_utils/nnet_code_gen.h, as hls4ml's own unrolled
kernels are) and calls it, and an empty config template (the kernel carries its parameters).
The thresholding layer (threshold.py) and the integer graph's requantization (requant.py) are two.
"""

from __future__ import annotations

from typing import Callable

from hls4ml.backends import get_backend
from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
from hls4ml.model.layers import Layer, register_layer
from hls4ml.model.types import Source

_registered: set[str] = set()


def register_kernel_layer(name: str, layer: type[Layer], function: str, kernel_source: Callable) -> None:
    """Register `layer` as hls4ml layer `name` (once per process); its node calls
    `{function}_{index}<input_t, output_t>(input, output)` from `kernel_source(node)`."""
    if name in _registered:
        return

    class FunctionTemplate(FunctionCallTemplate):
        def __init__(self):
            super().__init__(layer, include_header=[])

        def format(self, node):
            node.set_attr(f"{function}_codegen", Source(kernel_source(node)))
            p = self._default_function_params(node)
            namespace = node.model.config.get_writer_config().get("Namespace", None) or "nnet"
            return f"{namespace}::{function}_{node.index}<{p['input_t']}, {p['output_t']}>({p['input']}, {p['output']});"

    class ConfigTemplate(LayerConfigTemplate):
        def __init__(self):
            super().__init__(layer)

        def format(self, node):
            return ""

    register_layer(name, layer)
    backend = get_backend("vivado")  # the Vitis backend runs the Vivado templates too
    backend.register_template(FunctionTemplate)
    backend.register_template(ConfigTemplate)
    _registered.add(name)
