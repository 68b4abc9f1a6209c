"""Zero folding of an exported QONNX model: dead neurons out, shapes re-inferred."""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.cleanup import cleanup_model

from qapflow.export.transforms.remove_dead_neurons import RemoveDeadNeurons


def fold_zeros(model: ModelWrapper) -> ModelWrapper:
    # shapes change: drop the stale value_info so cleanup infers them again
    model = model.transform(RemoveDeadNeurons())
    while len(model.graph.value_info):
        model.graph.value_info.pop()
    return cleanup_model(model)

