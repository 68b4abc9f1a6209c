"""Models qapflow did not train, to exact firmware on both backends.

Built here with Brevitas (default float-scale quantizers, per-channel weights, batch norm left
unfolded, 2 to 8 bits, a bipolar 1-bit net) and with the onnx helper API (MatMul+Add, Softmax
output, Flatten input, weights as graph inputs). Each is compiled for hls4ml and RTL and
simulated on 2,000 inputs that saturate every quantizer and land on rounding ties; every output
is compared exactly with the integer model and with qonnx's execution of the original file.
"""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from qapflow.backends.hls4ml.backend import compile_hls4ml
from qapflow.backends.rtl.backend import compile_rtl
from qapflow.common.errors import DataFormatError
from qapflow.intmodel.probe import probe_inputs
from qapflow.sim.csim import run_csim
from qapflow.sim.report import load_int_model
from qapflow.sim.verilator import run_verilator
from qapflow.testing.mlp_cases import LayerCase, MlpCase, build_case
from tests import exactness

N = 2000


def brevitas_mlp(path, bits: int, bipolar: bool = False, seed: int = 0):
    """Brevitas with its defaults: float scales, per-channel weights, BN not folded."""
    import brevitas.nn as qnn
    from brevitas.export import export_qonnx
    from brevitas.quant import Int8WeightPerChannelFloat, SignedBinaryActPerTensorConst
    from brevitas.quant import SignedBinaryWeightPerTensorConst

    torch.manual_seed(seed)
    if bipolar:
        act = dict(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
        weight = dict(weight_quant=SignedBinaryWeightPerTensorConst, bias=False)
        layers = [qnn.QuantIdentity(**act), qnn.QuantLinear(16, 12, **weight), torch.nn.BatchNorm1d(12),
                  qnn.QuantIdentity(**act), qnn.QuantLinear(12, 5, **weight)]
    else:
        weight = dict(weight_quant=Int8WeightPerChannelFloat, weight_bit_width=bits, bias=True)
        layers = [qnn.QuantIdentity(bit_width=bits, return_quant_tensor=True),
                  qnn.QuantLinear(16, 12, **weight), torch.nn.BatchNorm1d(12),
                  qnn.QuantReLU(bit_width=bits, return_quant_tensor=True),
                  qnn.QuantLinear(12, 8, **weight), torch.nn.BatchNorm1d(8),
                  qnn.QuantReLU(bit_width=bits, return_quant_tensor=True),
                  qnn.QuantLinear(8, 5, **weight)]
    net = torch.nn.Sequential(*layers)
    with torch.no_grad():  # batch norm with statistics, as after training
        net(torch.randn(512, 16) * 2)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(-1.5, 1.5)
                m.bias.normal_(0, 0.3)
    net.eval()
    export_qonnx(net, torch.randn(1, 16), export_path=str(path))
    return path


def helper_mlp(path, argmax=False):
    """onnx helper API: Flatten input, MatMul+Add, weights as graph inputs, Softmax output."""
    case = MlpCase(n_in=16, input_bits=6, layers=[LayerCase(10, 4, 5, per_channel=True, sparsity=0.5),
                                                  LayerCase(5, 6, 6)],
                   pot_scales=False, matmul=True, softmax=True, argmax=argmax, flatten_input=True,
                   weights_as_inputs=True, seed=3)
    onnx.save(build_case(case), str(path))
    return path


def assert_exact(report):
    # onnxruntime's own float32 run of the graph agrees at every quantizer on these models too
    exactness.assert_exact(report, N, float32_graph_agrees=True)


MODELS = {
    "brevitas-2bit": lambda p: brevitas_mlp(p, 2),
    "brevitas-4bit": lambda p: brevitas_mlp(p, 4),
    "brevitas-8bit": lambda p: brevitas_mlp(p, 8),
    "brevitas-bipolar": lambda p: brevitas_mlp(p, 1, bipolar=True),
    "onnx-helper": helper_mlp,
    "onnx-helper-argmax": lambda p: helper_mlp(p, argmax=True),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {name: make(root / f"{name}.onnx") for name, make in MODELS.items()}


@pytest.mark.parametrize("name", list(MODELS))
def test_model_from_another_tool_is_exact_on_both_backends(models, name, tmp_path):
    path = models[name]
    hls = compile_hls4ml(path, tmp_path / "hls")
    assert hls["int_model_vs_qonnx"]["quantizer_mismatches"] == 0 and not hls["qapflow_manifest"]
    im = load_int_model(tmp_path / "hls")
    x = probe_inputs(im, N, seed=11)
    np.save(tmp_path / "inputs.npy", x)
    report = run_csim(tmp_path / "hls", inputs_file=tmp_path / "inputs.npy", n=N)
    assert_exact(report)
    assert "not compared" in report["pytorch"]  # no PyTorch model behind a foreign file; no crash
    rtl = compile_rtl(path, tmp_path / "rtl")
    assert rtl["activations"] == hls["activations"]
    report = run_verilator(tmp_path / "rtl", inputs_file=tmp_path / "inputs.npy", n=N)
    assert_exact(report)
    assert report["latency_cycles_measured"] == report["latency_cycles_out_valid"]
    firmware = np.load(tmp_path / "rtl" / "outputs_int.npy")
    assert np.array_equal(firmware, np.load(tmp_path / "hls" / "outputs_int.npy"))
    outputs = np.load(tmp_path / "rtl" / "outputs.npy")  # as the graph defines them
    assert outputs.dtype == (np.int64 if name.endswith("argmax") else np.float32) and len(outputs) == N


def test_probe_inputs_saturate_and_tie(models):
    from qapflow.backends.frontend import prepare

    im = prepare(models["brevitas-4bit"], probe=0).im
    x = probe_inputs(im, N)
    q, _ = im.input_integers(x)
    assert (q == im.input.lo).any() and (q == im.input.hi).any()
    step = im.software.grid.scale
    units = x.reshape(N, -1) / step
    assert np.any(units - np.floor(units) == 0.5)  # exact ties of the input quantizer


def test_thresholds_and_softmax_are_named_in_the_report(models, tmp_path):
    summary = compile_hls4ml(models["onnx-helper"], tmp_path / "hls")
    assert summary["activations"] == ["thresholds", "none"]
    after = " ".join(summary["software"]["software_after_firmware"])
    assert "Softmax" in after and "scale" in after
    assert summary["input_shape"] == [1, 16]


def test_corrupted_threshold_makes_csim_fail(models, tmp_path):
    compile_hls4ml(models["brevitas-4bit"], tmp_path / "hls")
    code = tmp_path / "hls" / "firmware" / "nnet_utils" / "nnet_code_gen.h"
    text = code.read_text()
    table = text.index("thresholds_")
    row = text.index("{", text.index("= {", table) + 3)
    first = text[row + 1 : text.index(",", row)]
    code.write_text(text[: row + 1] + repr(float(first) + 1.0) + text[text.index(",", row):])
    im = load_int_model(tmp_path / "hls")
    np.save(tmp_path / "x.npy", probe_inputs(im, N))
    result = subprocess.run([sys.executable, "-m", "qapflow.cli", "csim", str(tmp_path / "hls"), "--inputs",
                             str(tmp_path / "x.npy"), "--n", str(N)], capture_output=True, text=True)
    report = json.loads((tmp_path / "hls" / "csim_report.json").read_text())
    assert result.returncode == 1 and report["mismatches_vs_int_model"] > 0 and not report["passed"]


def test_input_of_the_wrong_width_is_refused(models, tmp_path):
    compile_hls4ml(models["brevitas-4bit"], tmp_path / "hls")
    np.save(tmp_path / "x.npy", np.zeros((10, 15), np.float32))
    with pytest.raises(DataFormatError, match=r"the model takes \[16\]"):
        run_csim(tmp_path / "hls", inputs_file=tmp_path / "x.npy", n=10)


@pytest.mark.parametrize("mutate, message", [
    (lambda m: m.graph.node.append(onnx.helper.make_node("Sin", [m.graph.output[0].name], ["y2"], name="sin")),
     r"sin \(Sin\)"),
])
def test_unsupported_op_is_named(models, tmp_path, mutate, message):
    model = onnx.load(str(models["brevitas-4bit"]))
    mutate(model)
    model.graph.output[0].name = "y2"
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(DataFormatError, match=message):
        compile_hls4ml(tmp_path / "m.onnx", tmp_path / "prj")


def test_custom_domains_of_other_tools_are_read(models, tmp_path):
    model = onnx.load(str(models["brevitas-4bit"]))
    for node in model.graph.node:
        if node.op_type == "Quant":
            node.domain = "finn.custom_op.general"
    onnx.save(model, str(tmp_path / "finn.onnx"))
    summary = compile_rtl(tmp_path / "finn.onnx", tmp_path / "prj")
    assert summary["int_model_vs_qonnx"]["quantizer_mismatches"] == 0


def test_a_float_input_takes_the_input_type_given(tmp_path):
    """The grid of --input-type, not the default one, on the firmware and in the reference."""
    case = MlpCase(n_in=8, input_bits=8, layers=[LayerCase(6, 5, 4, batch_norm=True), LayerCase(3, 5, 4)],
                   pot_scales=False, input_quant=False, seed=4)
    onnx.save(build_case(case), str(tmp_path / "m.onnx"))
    summary = compile_hls4ml(tmp_path / "m.onnx", tmp_path / "hls", input_type="fixed<12,4>")
    assert summary["software"]["input_type_assumed"] == "fixed<12,4>" and summary["input"]["exp"] == -8
    assert summary["int_model_vs_qonnx"]["quantizer_mismatches"] == 0
    im = load_int_model(tmp_path / "hls")
    np.save(tmp_path / "x.npy", probe_inputs(im, N))
    report = run_csim(tmp_path / "hls", inputs_file=tmp_path / "x.npy", n=N)
    assert_exact(report)
    assert report["input_values_rounded_to_grid"] > 0
