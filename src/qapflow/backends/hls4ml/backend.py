"""IntModel -> hls4ml HLS project: every layer and type comes from the integer model.

The hls4ml model is built from the IntModel as a layer list (hls4ml's own ModelGraph API),
not re-parsed from the ONNX graph, so the project is what the integer model says and nothing
else: Dense layers with the integer weights (our sparse kernel: one multiplication per
non-zero weight), then ReLU into a round-half-even, saturating type (shift-and-clip) or
the thresholding activation (threshold.py). Types are the narrowest exact ones: the input
grid, weights and biases from their values, each accumulator from its worst-case range.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from qapflow.backends.hls4ml import sparse as hls4ml_sparse, threshold as hls4ml_threshold
from qapflow.backends.graph_frontend import GraphFrontend, prepare_chain_or_graph
from qapflow.backends.identifiers import sanitize
from qapflow.backends.project import PROJECT_MANIFEST, build_into
from qapflow.common.atomic import write_json
from qapflow.common.errors import QapflowError
from qapflow.common.values import check_clock, check_part
from qapflow.intmodel.model import IntModel, QuantSpec

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


def fixed_type(lo: int, hi: int, exp: int) -> str:
    """The narrowest signed fixed<W,I> holding every integer in [lo, hi] at scale 2**exp."""
    width = max(2, max(int(hi).bit_length(), int(-lo - 1).bit_length() if lo < 0 else 0) + 1)
    return f"fixed<{width},{width + exp}>"


def grid_type(spec: QuantSpec, rounding: str = "") -> str:
    prefix = "fixed" if spec.signed else "ufixed"
    return f"{prefix}<{spec.bits},{spec.bits + spec.exp}{rounding}>"


def accumulator_types(im: IntModel) -> list[str]:
    """Per layer: covers the biased sums and the bias-free products (hls4ml's mult array)."""
    with_bias, without_bias = im.accumulator_ranges(), im.accumulator_ranges(with_bias=False)
    return [fixed_type(min(a[0], b[0]), max(a[1], b[1]), layer.acc_exp)
            for a, b, layer in zip(with_bias, without_bias, im.layers)]


def layer_list(im: IntModel) -> tuple[list[dict], dict]:
    """hls4ml layer dictionaries and their precisions (hls4ml's LayerName config)."""
    n_in = im.layers[0].weight.shape[1]
    layers = [{"class_name": "InputLayer", "name": "x_in", "input_shape": [n_in]}]
    precision = {"x_in": {"result": grid_type(im.input)}}
    prev = "x_in"
    for i, (layer, acc_t) in enumerate(zip(im.layers, accumulator_types(im))):
        name = f"dense_{i}"
        w, b = layer.weight, layer.bias
        layers.append({"class_name": "Dense", "name": name, "inputs": [prev], "n_in": w.shape[1],
                       "n_out": w.shape[0], "weight_data": np.ldexp(w.T.astype(np.float64), layer.weight_exp),
                       "bias_data": np.ldexp(b.astype(np.float64), layer.acc_exp)})
        precision[name] = {"weight": fixed_type(int(w.min()), int(w.max()), layer.weight_exp),
                           "bias": fixed_type(int(b.min()), int(b.max()), layer.acc_exp),
                           "accum": acc_t, "result": acc_t}
        prev = name
        if layer.thresholds is not None:
            prev = f"threshold_{i}"
            layers.append(hls4ml_threshold.thresholds_layer(prev, [name], layer))
            precision[prev] = {"result": grid_type(layer.act)}
        elif layer.act is not None:
            prev = f"relu_{i}"
            layers.append({"class_name": "Activation", "name": prev, "inputs": [name], "activation": "relu",
                           "n_in": w.shape[0]})
            precision[prev] = {"result": grid_type(layer.act, ",RND_CONV,SAT")}
    return layers, precision


def hls_model_of(im: IntModel, out: Path, project: str, opts: CompileOptions):
    import hls4ml
    from hls4ml.model import ModelGraph

    layers, precision = layer_list(im)
    config = hls4ml.utils.config.create_config(
        output_dir=str(out), project_name=project, backend=opts.vendor.capitalize(), part=opts.part,
        clock_period=opts.clock_ns, io_type=f"io_{opts.io}")
    config["HLSConfig"] = {
        "Model": {"Precision": "fixed<32,16>", "ReuseFactor": opts.reuse, "Strategy": opts.strategy.capitalize()},
        "LayerName": {name: {"Precision": p, "ReuseFactor": opts.reuse} for name, p in precision.items()},
    }
    return ModelGraph.from_layer_list(config, layers)


def narrow_dense_results(hls_model, im: IntModel) -> None:
    """Give each hls4ml Dense output the accumulator's exact type (hls4ml widens it)."""
    dense = [layer for layer in hls_model.get_layers() if layer.class_name == "Dense"]
    for layer, acc in zip(dense, accumulator_types(im)):
        width, integer = (int(v) for v in acc[len("fixed<"):-1].split(","))
        precision = layer.get_output_variable().type.precision  # the backend's own type object
        precision.width, precision.integer = width, integer


def compile_hls4ml(model_path, out, opts: CompileOptions | None = None, input_type: str | None = None,
                   scaler_file=None, probe: int = 2000, activations: str = "auto", input_shape=None) -> dict:
    """Write an hls4ml project into `out`; return the compile summary (also saved there)."""
    opts = opts or CompileOptions()
    out = Path(out)
    check_part(opts.part)  # it reaches the project's Tcl scripts
    check_clock(opts.clock_ns)
    if opts.io not in ("parallel", "stream") or opts.strategy not in ("latency", "resource") or opts.reuse < 1:
        raise QapflowError(f"compile options {opts}: io parallel|stream, strategy latency|resource, reuse >= 1")
    front = prepare_chain_or_graph(model_path, input_type, scaler_file, probe, activations, input_shape=input_shape)
    im = front.im
    project = sanitize(opts.project_name, "qapflow_net")
    hls4ml_sparse.register()
    hls4ml_threshold.register()
    graph_fields = {}
    with build_into(out) as build:
        if isinstance(front, GraphFrontend):  # convolutions, pooling, branches: the integer graph
            from qapflow.backends.hls4ml.graph import build_graph_model, graph_summary_fields

            hls_model, built = build_graph_model(im.graph, build, project, opts)
            graph_fields = graph_summary_fields(hls_model, built)
        else:
            hls_model = hls_model_of(im, build, project, opts)
            narrow_dense_results(hls_model, im)
        hls_model.write()
        front.write(build)
    code_gen = (out / "firmware" / "nnet_utils" / "nnet_code_gen.h").read_text()
    summary = {
        "stage": "compile",
        "backend": "hls4ml",
        "hls4ml_version": version("hls4ml"),
        "project_name": project,
        "options": opts.__dict__,
        **front.summary_fields(),
        "multiplications_in_code": hls4ml_sparse.count_multiplications(code_gen) if opts.sparse_kernel else None,
        "accumulator_types": accumulator_types(im) if not graph_fields else None,
        **graph_fields,
    }
    write_json(out / PROJECT_MANIFEST, summary)
    return summary
