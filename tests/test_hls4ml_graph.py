"""Convolutional and branching integer graphs on the hls4ml backend (backends/hls4ml/graph.py):
`qapflow compile --backend hls4ml` (io_parallel and io_stream) + `qapflow csim` (g++ against the
project's firmware) give every output equal to the IntGraph's and to qonnx's exact execution on
1,000 probe inputs that saturate every quantizer; the Python API's in-process library agrees.
A changed weight is counted as mismatches; what hls4ml cannot build is refused by node."""

import json
import re

import numpy as np
import onnx
import pytest

from qapflow import api
from qapflow.cli import main
from qapflow.common.errors import QapflowError
from qapflow.intmodel.graph_probe import graph_probe_inputs
from qapflow.sim.report import load_int_model
from qapflow.testing.graph_cases import ConvCase, build_conv_case, random_conv_case
from tests import exactness
from tests.test_intgraph import HELPER_CASES, BrevitasCnn, BrevitasPot1d, export_brevitas

N = 1000
CASES = {**HELPER_CASES, "random-0": random_conv_case(0), "random-1": random_conv_case(1)}
# io_stream: the cases whose structure stresses the streams (padding after a branch, a concat,
# units in front of a conv, a channels-last input, residual adds); hls4ml's streaming pooling
# takes no strides other than the kernel, so pot-residual-shift's 2x2/1 max pool is refused there
STREAM = ["conv2d-groups-depthwise", "zero-point-padding", "channels-last", "float-residual-concat", "random-1"]


def _model(name, tmp_path):
    path = tmp_path / "model.onnx"
    if name == "brevitas-cnn":
        return export_brevitas(BrevitasCnn, (2, 8, 8), path)
    if name == "brevitas-pot-1d":
        return export_brevitas(BrevitasPot1d, (3, 16), path)
    onnx.save(build_conv_case(CASES[name]), str(path))
    return path


def _project(name, tmp_path, io="parallel"):
    model = _model(name, tmp_path)
    prj = tmp_path / f"hls_{io}"
    assert main(["compile", str(model), "--backend", "hls4ml", "--io", io, "--out", str(prj)]) == 0
    np.save(tmp_path / "x.npy", graph_probe_inputs(load_int_model(prj).graph, N, 5))
    return prj, tmp_path / "x.npy"


def _csim(prj, x) -> dict:
    code = main(["csim", str(prj), "--inputs", str(x), "--n", str(N)])
    report = json.loads((prj / "csim_report.json").read_text())
    return code, report


@pytest.mark.parametrize("io,name", [("parallel", n) for n in [*CASES, "brevitas-cnn", "brevitas-pot-1d"]]
                         + [("stream", n) for n in STREAM])
def test_a_conv_graph_on_hls4ml_simulates_exactly(io, name, tmp_path):
    prj, x = _project(name, tmp_path, io)
    summary = json.loads((prj / "qapflow_project.json").read_text())
    assert summary["integer_graph"] and summary["options"]["io"] == io
    classes = " ".join(summary["hls4ml_layers"])
    assert re.search(r"\((Conv1D|Conv2D|PointwiseConv1D|PointwiseConv2D)\)", classes)  # hls4ml's own conv
    code, report = _csim(prj, x)
    assert code == 0
    exactness.assert_exact(report, N, float32_graph_agrees=False)


def test_the_hls4ml_layers_are_the_graphs_ops(tmp_path):
    prj, _ = _project("float-residual-concat", tmp_path)
    classes = [layer.split(" (")[1][:-1] for layer in json.loads((prj / "qapflow_project.json").read_text())["hls4ml_layers"]]
    assert {"Merge", "Concatenate", "QapflowRequant", "Dense"} <= set(classes), classes


def test_a_changed_conv_weight_is_counted_as_mismatches(tmp_path):
    prj, x = _project("zero-point-padding", tmp_path)
    assert _csim(prj, x)[0] == 0
    conv = next(p for p in (prj / "firmware" / "weights").glob("w*.txt"))
    txt, header = conv.read_text(), conv.with_suffix(".h").read_text()
    values = txt.split(", ")
    first = next(i for i, v in enumerate(values) if float(v) != 0)
    changed = str(int(float(values[first])) + (1 if float(values[first]) < 0 else -1))
    conv.write_text(", ".join(values[:first] + [changed] + values[first + 1:]))
    body = header[header.index("#else"):]
    start = header.index("#else") + body.index("{") + 1
    header_values = header[start:header.index("}", start)].split(", ")
    assert header_values[first].strip() == values[first].strip()
    header_values[first] = changed
    conv.with_suffix(".h").write_text(header[:start] + ", ".join(header_values) + header[header.index("}", start):])
    code, report = _csim(prj, x)
    assert code == 1 and report["mismatches_vs_int_model"] > 0 and not report["passed"]


def test_the_api_library_equals_qapflow_csim_on_a_stream_graph(tmp_path):
    prj, x = _project("channels-last", tmp_path, "stream")
    assert _csim(prj, x)[0] == 0
    project = api.load_project(prj)
    out = project.predict(np.load(x), integers=True)
    assert np.array_equal(out, np.load(prj / "outputs_int.npy"))
    assert np.array_equal(project.predict(np.load(x)), np.load(prj / "outputs.npy"))
    trace = project.trace(np.load(x)[:50])
    graph = project.int_model.graph
    assert [r["layer"] for r in trace["layers"]] == [op.name for op in graph.ops]
    assert trace["layers"][-1]["mismatching_samples"] == 0
    values = graph.evaluate(trace["input_integers"].reshape(50, *graph.tensors[graph.input].shape))
    assert all(np.array_equal(r["int_model"], values[op.output].reshape(50, -1))
               for r, op in zip(trace["layers"], graph.ops))


def test_a_streaming_max_pool_with_a_stride_is_refused_by_node(tmp_path):
    model = _model("pot-residual-shift", tmp_path)
    with pytest.raises(QapflowError, match=r"MaxPool_\d+ \(MaxPool\): kernel \[2, 2\], strides \[1, 1\].*io parallel"):
        from qapflow.backends.hls4ml.backend import CompileOptions, compile_hls4ml

        compile_hls4ml(model, tmp_path / "hls", CompileOptions(io="stream"))


def test_a_maxpool_padding_negative_values_is_refused_in_stream_and_exact_in_parallel(tmp_path):
    case = ConvCase(dims=1, channels=2, size=8, blocks=[("maxpool", dict(k=2, stride=2, pad=1))])
    onnx.save(build_conv_case(case), str(tmp_path / "model.onnx"))
    from qapflow.backends.hls4ml.backend import CompileOptions, compile_hls4ml

    with pytest.raises(QapflowError, match=r"MaxPool_\d+ \(MaxPool\): padding .* negative"):
        compile_hls4ml(tmp_path / "model.onnx", tmp_path / "hls", CompileOptions(io="stream"))
    compile_hls4ml(tmp_path / "model.onnx", tmp_path / "par")
    np.save(tmp_path / "x.npy", graph_probe_inputs(load_int_model(tmp_path / "par").graph, N, 5))
    code, report = _csim(tmp_path / "par", tmp_path / "x.npy")
    assert code == 0
    exactness.assert_exact(report, N, float32_graph_agrees=False)
