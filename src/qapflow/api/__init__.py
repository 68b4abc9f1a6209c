"""qapflow's public Python API (issue 21): the same functions the CLI calls, returning dicts.

    prj = qapflow.convert("model.onnx", backend="hls4ml", output_dir="prj")
    prj.compile(); y = prj.predict(x); report = prj.verify(x)
    qapflow.reference_predict("model.onnx", x)  # the exact qonnx reference

Errors are the QapflowError subclasses the CLI prints.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from qapflow.api.options import check_backend, compile_project
from qapflow.api.project import Project, float_inputs
from qapflow.common.atomic import atomic_path
from qapflow.common.errors import QapflowError

__all__ = ["Project", "convert", "load_project", "reference_predict"]


def _save_wrapper(model, path: Path) -> Path:
    with atomic_path(path) as tmp:
        model.save(str(tmp))
    return path


def _as_wrapper(model):
    """A qonnx ModelWrapper or onnx ModelProto given in memory, else None (a path)."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper

    if isinstance(model, onnx.ModelProto):
        return ModelWrapper(model)
    return model if isinstance(model, ModelWrapper) else None


def convert(model, backend: str = "hls4ml", output_dir=None, **options) -> Project:
    """Compile `model` (a QONNX file path, a qonnx ModelWrapper or an onnx ModelProto) into a
    project folder `output_dir`, with the CLI's compile options (input_type, scaler_file,
    activations, input_shape, part, clock_ns; hls4ml: io, strategy, reuse, vendor; rtl:
    pipeline_stages; finn: target_fps, folding_file, mem_mode). A model in memory is saved
    beside the project first (OUTPUT_DIR.source.onnx), so the project's manifest names a file
    that stays."""
    check_backend(backend)
    if output_dir is None:
        raise QapflowError("convert(): output_dir is needed (the project folder)")
    out = Path(output_dir)
    wrapper = _as_wrapper(model)
    if wrapper is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        model_path = _save_wrapper(wrapper, out.parent / f"{out.name}.source.onnx")
    else:
        model_path = Path(model)
        if not model_path.is_file():
            raise QapflowError(f"{model_path}: no such model file")
    compile_project(backend, model_path, out, options)
    return Project(out)


def load_project(path) -> Project:
    """A project folder written by convert() or `qapflow compile`."""
    return Project(path)


def reference_predict(model, x, input_type: str | None = None, input_shape=None, scaler_file=None) -> np.ndarray:
    """The exact reference outputs of `model` for float inputs `x`: qonnx's execute_onnx of the
    graph (dense sums exact), which the integer model must equal bit for bit; a difference is
    an error, not a result."""
    from qapflow.backends.frontend import prepare
    from qapflow.intmodel.reference import compare_with_qonnx

    wrapper = _as_wrapper(model)
    with tempfile.TemporaryDirectory(prefix="qapflow_reference_") as tmp:
        path = _save_wrapper(wrapper, Path(tmp) / "model.onnx") if wrapper is not None else Path(model)
        front = prepare(path, input_type, scaler_file, probe=0, input_shape=input_shape)
    shape = front.im.software.input_shape if front.im.software else [front.im.layers[0].weight.shape[1]]
    x32 = float_inputs(x, shape, "reference_predict(x)")
    check, ours, exact = compare_with_qonnx(front.im, front.model, x32)
    if check["quantizer_mismatches"] or check["output_mismatching_samples"]:
        raise QapflowError(f"{path.name if wrapper is not None else path}: the integer model differs from qonnx's "
                           f"execution (quantizers {check['layers']}, outputs {check['output_mismatching_samples']} "
                           "samples); please report this model")
    return exact
