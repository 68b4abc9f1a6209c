"""Convolutional and branching integer graphs on the RTL backend (backends/rtl/graph_trace.py):
da4ml's own evaluation of the traced logic gives the IntGraph's integers exactly, and `qapflow
compile --backend rtl` + `qapflow csim` simulate the project's Verilog in Verilator with every
output equal to the IntGraph's and to qonnx's exact execution, on 1,000 probe inputs that
saturate the input quantizer. A changed weight or threshold is seen; an input too large to
unroll is refused by name, naming the backend that streams (hls4ml, tests/test_hls4ml_graph.py)."""

import json

import numpy as np
import onnx
import pytest

from qapflow.backends.rtl.graph_trace import MAX_ELEMENTS, comb_logic
from qapflow.cli import main
from qapflow.common.errors import QapflowError
from qapflow.export.ingest import ingest
from qapflow.intmodel.graph_probe import graph_probe_inputs
from qapflow.intmodel.read_graph import read_graph
from qapflow.sim.report import load_int_model
from qapflow.testing.graph_cases import ConvCase, build_conv_case, random_conv_case
from tests import exactness
from tests.test_intgraph import HELPER_CASES

N = 1000


def _graph(case: ConvCase, tmp_path):
    path = tmp_path / "model.onnx"
    onnx.save(build_conv_case(case), str(path))
    ig = read_graph(ingest(path))
    q = ig.input_integers(graph_probe_inputs(ig, N, 0))
    return ig, q.reshape(len(q), -1), ig.forward(q).reshape(len(q), -1)


CASES = {**HELPER_CASES, **{f"random-{s}": random_conv_case(s) for s in range(6)}}


@pytest.mark.parametrize("name", list(CASES))
def test_traced_logic_equals_the_integer_graph(name, tmp_path):
    ig, q, want = _graph(CASES[name], tmp_path)
    got = comb_logic(ig).predict(q.astype(np.float64))
    assert np.array_equal(got, want.astype(np.float64))


def test_a_changed_weight_changes_the_logic(tmp_path):
    ig, q, want = _graph(HELPER_CASES["conv2d-groups-depthwise"], tmp_path)
    conv = next(op for op in ig.ops if op.kind == "conv")
    conv.weight = conv.weight.copy()
    conv.weight.flat[0] += 1
    got = comb_logic(ig).predict(q.astype(np.float64))
    assert not np.array_equal(got, want.astype(np.float64))


def test_an_input_too_large_to_unroll_is_refused(tmp_path):
    side = int(np.sqrt(MAX_ELEMENTS)) + 4
    case = ConvCase(dims=2, channels=1, size=side, blocks=[("conv", dict(out=2, k=3))])
    ig, _, _ = _graph(case, tmp_path)
    with pytest.raises(QapflowError, match=r"at most 4096.*hls4ml backend with --io stream"):
        comb_logic(ig)


SIMULATED = {
    "bipolar-conv-gap": HELPER_CASES["bipolar-input"],
    "pot-residual-1d": ConvCase(dims=1, channels=2, size=8, pot=True, blocks=[("residual", dict(k=3)),
                                                                              ("maxpool", dict(k=2))]),
}


def _project(name, tmp_path):
    onnx.save(build_conv_case(SIMULATED[name]), str(tmp_path / "model.onnx"))
    assert main(["compile", str(tmp_path / "model.onnx"), "--backend", "rtl", "--out", str(tmp_path / "rtl")]) == 0
    gm = load_int_model(tmp_path / "rtl")
    np.save(tmp_path / "x.npy", graph_probe_inputs(gm.graph, N, 3))
    return tmp_path / "rtl", tmp_path / "x.npy"


@pytest.mark.parametrize("name", list(SIMULATED))
def test_qapflow_compile_and_csim_run_a_conv_graph_exactly_in_verilator(name, tmp_path):
    prj, x = _project(name, tmp_path)
    summary = json.loads((prj / "qapflow_project.json").read_text())
    assert summary["integer_graph"] and summary["int_model_vs_qonnx"]["quantizer_mismatches"] == 0
    assert main(["csim", str(prj), "--inputs", str(x), "--n", str(N)]) == 0
    report = json.loads((prj / "csim_report.json").read_text())
    exactness.assert_exact(report, N, float32_graph_agrees=False)
    assert report["latency_cycles_measured"] == report["latency_cycles_out_valid"] >= 1


def test_a_changed_integer_graph_fails_the_simulation(tmp_path):
    prj, x = _project("bipolar-conv-gap", tmp_path)
    path = prj / "int_graph.json"
    data = json.loads(path.read_text())
    row = next(r for o in data["ops"] if o["kind"] == "thresholds" for r in o["thresholds"]["values"] if r)
    row[0] += 1
    path.write_text(json.dumps(data))
    assert main(["csim", str(prj), "--inputs", str(x), "--n", str(N)]) == 1
    report = json.loads((prj / "csim_report.json").read_text())
    assert report["mismatches_vs_int_model"] > 0 and not report["passed"]


def test_a_conv_graph_synthesizes_with_yosys(tmp_path):
    from qapflow.synth.yosys import run_yosys

    prj, _ = _project("bipolar-conv-gap", tmp_path)
    resources = run_yosys(prj, "xc7")
    assert resources["LUT"] > 0 and resources["DSP"] == 0 and "Yosys" in resources["source"]


@pytest.mark.parametrize("name", ["brevitas-float-scale-cnn", "brevitas-pot-1d"])
def test_brevitas_conv_networks_are_exact_on_rtl(name, tmp_path):
    """Brevitas' own exports: float-scale Conv2d + BN + MaxPool + residual + global pooling, and
    power-of-two Conv1d (stride, padding) + AvgPool + a Concat of two branches."""
    from tests.test_intgraph import BrevitasCnn, BrevitasPot1d, export_brevitas

    make, shape = (BrevitasCnn, (2, 8, 8)) if name == "brevitas-float-scale-cnn" else (BrevitasPot1d, (3, 16))
    path = export_brevitas(make, shape, tmp_path / "model.onnx")
    assert main(["compile", str(path), "--backend", "rtl", "--out", str(tmp_path / "rtl")]) == 0
    np.save(tmp_path / "x.npy", graph_probe_inputs(load_int_model(tmp_path / "rtl").graph, N, 3))
    assert main(["csim", str(tmp_path / "rtl"), "--inputs", str(tmp_path / "x.npy"), "--n", str(N)]) == 0
    exactness.assert_exact(json.loads((tmp_path / "rtl" / "csim_report.json").read_text()), N,
                           float32_graph_agrees=False)
