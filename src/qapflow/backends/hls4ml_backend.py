"""QONNX model -> hls4ml HLS project, with precisions derived from the integer model.

Layer types are the narrowest that are still exact for every input: the input type is
the input quantizer's grid, weights/biases/activations come from their quantizers (hls4ml
reads them from the Quant nodes), and each accumulator is sized from the integer model's
worst-case range. A model that is not fixed point (float scales) still compiles, with
hls4ml's defaults, and is marked `bit_exact: false`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import onnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
from qonnx.transformation.gemm_to_matmul import GemmToMatMul
from qonnx.util.cleanup import cleanup_model

from qapflow.backends import hls4ml_sparse
from qapflow.backends.identifiers import sanitize
from qapflow.backends.project import PROJECT_MANIFEST, build_into
from qapflow.common.atomic import write_json
from qapflow.common.errors import DataFormatError, QapflowError
from qapflow.export.graph import dense_chain
from qapflow.export.int_model import IntModel, NotBitExact, int_model_from_qonnx
from qapflow.export.qonnx_export import read_manifest

DEFAULT_PART = "xcu250-figd2104-2L-e"


@dataclass
class CompileOptions:
    part: str = DEFAULT_PART
    clock_ns: float = 5.0
    io: str = "parallel"
    strategy: str = "latency"
    reuse: int = 1
    vendor: str = "vitis"
    project_name: str = "qapflow_net"
    sparse_kernel: bool = True


def load_qonnx(path) -> ModelWrapper:
    """Load and check a QONNX file; one clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ...
        raise DataFormatError(path, f"not a valid ONNX model: {exc}") from exc
    model = ModelWrapper(proto)
    if not any(n.op_type == "Quant" for n in model.graph.node):
        raise DataFormatError(path, "no Quant nodes: a float model without quantizers is not QONNX "
                                    "and cannot be made into firmware")
    try:
        dense_chain(model)
    except QapflowError as exc:
        raise DataFormatError(path, str(exc)) from exc
    return model


def fixed_type(lo: int, hi: int, exp: int) -> str:
    """The narrowest signed fixed<W,I> holding every integer in [lo, hi] at scale 2**exp."""
    width = max(2, max(int(hi).bit_length(), int(-lo - 1).bit_length() if lo < 0 else 0) + 1)
    return f"fixed<{width},{width + exp}>"


def accumulator_types(im: IntModel) -> list[str]:
    """Per layer: covers the biased sums and the bias-free products (hls4ml's mult array)."""
    with_bias, without_bias = im.accumulator_ranges(), im.accumulator_ranges(with_bias=False)
    return [fixed_type(min(a[0], b[0]), max(a[1], b[1]), layer.acc_exp)
            for a, b, layer in zip(with_bias, without_bias, im.layers)]


def prepare_for_hls4ml(model: ModelWrapper) -> ModelWrapper:
    model = model.transform(ConvertToChannelsLastAndClean())
    model = model.transform(GemmToMatMul())
    return cleanup_model(model)


def hls_config(model: ModelWrapper, im: IntModel | None, opts: CompileOptions) -> dict:
    import hls4ml

    config = hls4ml.utils.config.config_from_onnx_model(
        model, granularity="name", backend=opts.vendor.capitalize(), default_precision="fixed<32,16>",
        default_reuse_factor=opts.reuse)
    config["Model"]["Strategy"] = opts.strategy.capitalize()
    if im is None:
        return config
    names = config["LayerName"]
    input_name = model.graph.input[0].name
    names[input_name]["Precision"]["result"] = (
        f"fixed<{im.input.bits},{im.input.bits + im.input.exp}>")
    # MatMul + Add (bias) become one hls4ml Dense: its accumulator is configured on the
    # MatMul, its result on the Add (a result set on the MatMul would stop the merge)
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul"]
    for node, acc in zip(matmuls, accumulator_types(im)):
        names[node.name]["Precision"]["accum"] = acc
    return config


def narrow_dense_results(hls_model, im: IntModel) -> None:
    """Give each hls4ml Dense output the accumulator's exact type (hls4ml widens it)."""
    dense = [layer for layer in hls_model.get_layers() if layer.class_name == "Dense"]
    for layer, acc in zip(dense, accumulator_types(im)):
        width, integer = (int(v) for v in acc[len("fixed<"):-1].split(","))
        precision = layer.get_output_variable().type.precision  # the backend's own type object
        precision.width, precision.integer = width, integer


def compile_hls4ml(model_path, out, opts: CompileOptions | None = None) -> dict:
    """Write an hls4ml project into `out`; return the compile summary (also saved there)."""
    import hls4ml

    opts = opts or CompileOptions()
    model_path = Path(model_path)
    out = Path(out)
    export_manifest = read_manifest(model_path)
    model = load_qonnx(model_path)
    try:
        im, exact_reason = int_model_from_qonnx(model), None
    except NotBitExact as exc:
        im, exact_reason = None, str(exc)
    project = sanitize(opts.project_name, "qapflow_net")
    prepared = prepare_for_hls4ml(model)
    config = hls_config(prepared, im, opts)
    if opts.sparse_kernel:
        hls4ml_sparse.register()
    with build_into(out) as build:
        hls_model = hls4ml.converters.convert_from_onnx_model(
            prepared, output_dir=str(build), project_name=project, backend=opts.vendor.capitalize(),
            io_type=f"io_{opts.io}", part=opts.part, clock_period=opts.clock_ns, hls_config=config)
        if im is not None:
            narrow_dense_results(hls_model, im)
        hls_model.write()
    code_gen = (out / "firmware" / "nnet_utils" / "nnet_code_gen.h").read_text()
    multiplications = hls4ml_sparse.count_multiplications(code_gen)
    summary = {
        "stage": "compile",
        "backend": "hls4ml",
        "hls4ml_version": version("hls4ml"),
        "project_name": project,
        "options": opts.__dict__,
        "source_model": str(model_path.resolve()),
        "bit_exact": im is not None,
        "not_bit_exact_reason": exact_reason,
        "nonzero_weights": im.nonzero_weights if im else None,
        "multiplications_in_code": multiplications if opts.sparse_kernel else None,
        "layer_widths": [list(l.weight.shape) for l in im.layers] if im else None,
        "input": im.input.__dict__ if im else None,
        "output_exp": im.output_exp() if im else None,
        "accumulator_types": accumulator_types(im) if im else None,
        "scaler": export_manifest["scaler"],
        "data": export_manifest.get("data"),
    }
    if im is not None:
        im.save(out / "int_model.json")
    write_json(out / PROJECT_MANIFEST, summary)
    return summary

