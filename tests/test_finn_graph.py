"""Convolutional integer graphs on the FINN backend (backends/finn/graph_build.py): FINN's own passes
lower the convolutions (FMPadding, ConvolutionInputGenerator, MVAU, Thresholding: all RTL), the
IntGraph gives every weight and threshold, and `qapflow csim` (FINN's python mode and Verilator's
run of the stitched RTL chain, channels last on its ports) gives every output equal to the
IntGraph's and to qonnx's exact execution on 1,000 probe inputs that saturate every quantizer.
1D and 2D, stride and padding, power-of-two (shift) and float scales with batch norm (thresholds,
falling ones among them), onnx-helper and Brevitas files. A changed weight in the project is
counted as mismatches. FINN's GlobalAccPool (HLS only in FINN) is built by qapflow's own RTL
(backends/finn/rtl/qapflow_global_acc_pool.v), exact in the 2D chain with a global average pool
(tests/test_finn_pools.py: 1D pools, max pools); what else FINN has only in HLS (windowed average
pooling, branches) or its sliding window cannot feed is refused by node."""

import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from qapflow.backends.finn.build import FinnOptions, compile_finn
from qapflow.cli import main
from qapflow.common.errors import QapflowError
from qapflow.intmodel.graph_probe import graph_probe_inputs
from qapflow.sim.report import load_int_model
from qapflow.testing.graph_cases import ConvCase, build_conv_case
from tests import exactness
from tests.test_intgraph import export_brevitas

N = 1000


class BrevitasConvChain(torch.nn.Module):
    """QuantConv2d (stride 2, padding 1) + BN + QuantReLU, QuantConv2d + QuantReLU, a dense head:
    Brevitas' float-scale defaults."""

    def __init__(self):
        import brevitas.nn as qnn
        super().__init__()
        q = dict(return_quant_tensor=True)
        self.qin = qnn.QuantIdentity(bit_width=4, **q)
        self.c1 = qnn.QuantConv2d(2, 4, 3, stride=2, padding=1, weight_bit_width=4, bias=True)
        self.bn = torch.nn.BatchNorm2d(4)
        self.r1 = qnn.QuantReLU(bit_width=4, **q)
        self.c2 = qnn.QuantConv2d(4, 3, 2, weight_bit_width=4, bias=False)
        self.r2 = qnn.QuantReLU(bit_width=4, **q)
        self.fc = qnn.QuantLinear(3 * 3 * 3, 3, bias=True, weight_bit_width=4)

    def forward(self, x):
        x = self.r2(self.c2(self.r1(self.bn(self.c1(self.qin(x))))))
        return self.fc(x.flatten(1))


CASES = {
    "conv1d-stride-pad-bn": ConvCase(dims=1, channels=3, size=16, blocks=[
        ("conv", dict(out=4, k=3, stride=2, pad=1, bn=True)), ("conv", dict(out=3, k=3, pad=1))]),
    "conv2d-pot-stride-pad-gap": ConvCase(dims=2, channels=2, size=7, pot=True, blocks=[
        ("conv", dict(out=3, k=3, pad=1)), ("conv", dict(out=4, k=3, stride=2, pad=1)), ("gap", {})]),
}
# FINN folding files: several channels a word (the pool's module lanes, the MVAU's PE and SIMD)
FOLDED = {"conv2d-pot-stride-pad-gap": {"GlobalAccPool_hls_0": {"PE": 2}, "MVAU_rtl_0": {"PE": 3, "SIMD": 3}}}
REFUSED = {  # case -> the op FINN has only in HLS (or qapflow's FINN path does not take), by node
    # max pools FINN's sliding window cannot feed (tests/test_finn_pools.py: those it can)
    "maxpool-padded-signed": (ConvCase(dims=1, channels=2, size=8, blocks=[
        ("conv", dict(out=2, k=3, relu=False)), ("maxpool", dict(k=3, stride=2, pad=1))]),
        r"MaxPool_\d+ \(maxpool\): pads \[1, 1\] on a signed input"),
    "maxpool-stride-over-kernel": (ConvCase(dims=2, channels=2, size=8, blocks=[
        ("conv", dict(out=2, k=3)), ("maxpool", dict(k=2, stride=3))]), r"MaxPool_\d+ \(maxpool\): kernel \[2, 2\]"),
    "avgpool": (ConvCase(dims=2, channels=2, size=6, blocks=[("conv", dict(out=2, k=3)), ("avgpool", dict(k=2))]),
                r"AveragePool_\d+ \(sumpool\)"),
    "residual": (ConvCase(dims=2, channels=2, size=5, pot=True, blocks=[("residual", dict(k=3))]),
                 r"\(add\)|feeds 2 ops"),
    "concat": (ConvCase(dims=1, channels=2, size=8, blocks=[("concat", dict(out=2))]), r"\(concat\)|feeds 2 ops"),
    "zero-point": (ConvCase(dims=2, channels=2, size=5, zero_point=2, blocks=[("conv", dict(out=2, k=3))]),
                   r"Conv_\d+ \(conv\) sums units"),
}


def _model(name, path):
    if name == "brevitas-conv2d":
        return export_brevitas(BrevitasConvChain, (2, 8, 8), path)
    onnx.save(build_conv_case(CASES[name]), str(path))
    return path


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """Each case compiled once and simulated once (one Verilator build each): name -> (project,
    probe inputs, report)."""
    out = {}
    for name in [*CASES, "brevitas-conv2d"]:
        tmp = tmp_path_factory.mktemp(name)
        out[name] = compile_and_simulate(tmp, _model(name, tmp / "model.onnx"), FOLDED.get(name))
    return out


def compile_and_simulate(tmp, model, folding: dict | None = None) -> tuple:
    """`qapflow compile --backend finn` of one model (with a FINN folding file from `folding`) and
    one `qapflow csim` on N probe inputs: (project, inputs file, report)."""
    prj = tmp / "prj"
    args = []
    if folding:
        (tmp / "folding.json").write_text(json.dumps({"Defaults": {}, **folding}))
        args = ["--folding", str(tmp / "folding.json")]
    assert main(["compile", str(model), "--backend", "finn", "--out", str(prj), *args]) == 0
    x = tmp / "x.npy"
    np.save(x, graph_probe_inputs(load_int_model(prj).graph, N, 5))
    return prj, x, _csim(prj, x, python=200)


def _csim(prj, x, python=0) -> dict:
    code = main(["csim", str(prj), "--inputs", str(x), "--n", str(N), "--python-samples", str(python)])
    report = json.loads((prj / "csim_report.json").read_text())
    assert (code == 0) == report["passed"]
    return report


@pytest.mark.parametrize("name", [*CASES, "brevitas-conv2d"])
def test_a_conv_chain_on_finn_simulates_exactly(projects, name):
    prj, _, report = projects[name]
    exactness.assert_exact(report, N, float32_graph_agrees=False)
    assert report["finn_python_mode"]["mismatches_vs_int_model"] == 0
    summary = json.loads((prj / "qapflow_project.json").read_text())
    assert summary["integer_graph"] and summary["backend"] == "finn"
    layers = {layer.split(" (")[1][:-1] for layer in summary["finn_layers"]}
    assert {"ConvolutionInputGenerator_rtl", "MVAU_rtl", "Thresholding_rtl"} <= layers
    assert not any(t.endswith("_hls") for t in layers - {"GlobalAccPool_hls"})  # that one: qapflow's RTL
    assert "FMPadding_rtl" in layers  # every case has a padded convolution
    # FINN's own numbers were compared with the IntGraph's, layer by layer (weights in FINN's order)
    comparison = summary["finn_parameters_vs_int_model"]
    assert len(comparison) == 3 + ("gap" in name)
    assert all(row["weights_differing"] == 0 for row in comparison if row["weights"])
    assert all("thresholds_differing" in row for row in comparison[:-1])
    # the ports are channels last: the manifest says where each element goes
    ports = summary["ports"]
    shape = load_int_model(prj).graph.tensors[load_int_model(prj).graph.input].shape
    assert ports["input_order"][:2] == [0, int(np.prod(shape[1:]))]
    assert sorted(ports["input_order"]) == list(range(int(np.prod(shape))))


def test_the_global_pool_is_qapflows_rtl_in_place_of_finns_hls(projects):
    prj, _, report = projects["conv2d-pot-stride-pad-gap"]
    summary = json.loads((prj / "qapflow_project.json").read_text())
    pool = [layer for layer in summary["finn_layers"] if "(GlobalAccPool_hls)" in layer]
    assert len(pool) == 1  # FINN's own conversion of the GlobalAveragePool
    assert "rtl/qapflow_global_acc_pool.v" in summary["rtl"]["sources"]
    assert "qapflow_global_acc_pool" in (prj / "rtl" / f"{pool[0].split(' (')[0]}.v").read_text()
    assert report["finn_python_mode"]["mismatches_vs_int_model"] == 0  # FINN's python GlobalAccPool
    hardware = ModelWrapper(str(prj / "finn" / "intermediate_models" / "hardware.onnx"))
    node = next(n for n in hardware.graph.node if n.op_type == "GlobalAccPool_hls")
    assert getCustomOp(node).get_nodeattr("PE") == 2  # the module's lanes: two channels a word


def test_a_falling_threshold_channel_takes_negated_weights(projects):
    summary = json.loads((projects["conv1d-stride-pad-bn"][0] / "qapflow_project.json").read_text())
    assert summary["finn_parameters_vs_int_model"][0]["columns_sign_flipped_by_int_graph"] > 0


def test_a_changed_weight_is_counted_as_mismatches(projects, tmp_path):
    prj, x, _ = projects["conv1d-stride-pad-bn"]
    copy = tmp_path / "prj"
    shutil.copytree(prj, copy)
    target = sorted((copy / "rtl").glob("MVAU_rtl_0_memblock.dat"))[0]
    lines = target.read_text().splitlines()
    last = lines[0][-1]
    lines[0] = lines[0][:-1] + ("0" if last != "0" else "1")  # one weight of the first conv changed
    target.write_text("\n".join(lines) + "\n")
    report = _csim(copy, x)
    assert report["binary_reused"]  # the same RTL: the simulator reads the changed file
    assert report["mismatches_vs_int_model"] > 0 and not report["passed"]


def test_a_changed_port_order_is_counted_as_mismatches(projects, tmp_path):
    prj, x, _ = projects["conv2d-pot-stride-pad-gap"]
    copy = tmp_path / "prj"
    shutil.copytree(prj, copy)
    manifest = copy / "qapflow_project.json"
    summary = json.loads(manifest.read_text())
    order = summary["ports"]["input_order"]
    summary["ports"]["input_order"] = sorted(order)  # channels first: what FINN's stream does not take
    manifest.write_text(json.dumps(summary))
    report = _csim(copy, x)
    assert report["mismatches_vs_int_model"] > 0 and not report["passed"]


@pytest.mark.parametrize("name", REFUSED)
def test_what_finn_cannot_build_here_is_refused_by_node(name, tmp_path):
    case, pattern = REFUSED[name]
    onnx.save(build_conv_case(case), str(tmp_path / "model.onnx"))
    with pytest.raises(QapflowError, match=pattern) as info:
        compile_finn(tmp_path / "model.onnx", tmp_path / "prj", FinnOptions())
    assert "hls4ml and rtl backends" in str(info.value)
    assert not (tmp_path / "prj").exists()
