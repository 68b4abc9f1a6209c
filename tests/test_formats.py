"""Every input format other tools write, to exact firmware (issue 22).

Each format is built here with the tool that writes it or as it writes it: QKeras-style quantized
biases (a Quant on each bias constant), old Brevitas/FINN 1-bit Quant nodes (bipolar in qonnx),
FINN's MultiThreshold activations and FINN-ONNX graphs (qonnx -> FINN conversion and
streamlining, by FINN itself), a Relu in front of the input quantizer, Quant nodes in the empty,
`qonnx` or `onnx.brevitas` domain, bit widths computed by a constant subgraph, QCDQ from
Brevitas' `export_onnx_qcdq` and onnxruntime's static quantization. Each format alone is checked
against qonnx's execution at compile time (the frontend); the combined models are compiled on
hls4ml and RTL (three on FINN too) and simulated on 2,000 inputs that saturate every quantizer,
every output compared exactly with the integer model and with qonnx `execute_onnx`.
"""

import numpy as np
import onnx
import pytest
import torch

from qapflow.backends.finn.build import FinnOptions, compile_finn
from qapflow.backends.frontend import prepare
from qapflow.backends.hls4ml.backend import compile_hls4ml
from qapflow.backends.rtl.backend import compile_rtl
from qapflow.common.errors import DataFormatError, QapflowError
from qapflow.intmodel.probe import probe_inputs
from qapflow.sim.csim import run_csim
from qapflow.sim.finn_sim import run_finn_csim
from qapflow.sim.report import load_int_model
from qapflow.sim.verilator import run_verilator
from qapflow.testing.mlp_cases import LayerCase, MlpCase, build_case
from tests import exactness

N = 2000


def _small(**formats) -> MlpCase:
    return MlpCase(n_in=6, input_bits=6, layers=[LayerCase(8, 4, 4, sparsity=0.3), LayerCase(5, 4, 4)], **formats)


# one format each: what the frontend refused (or misread) before
SINGLE_FORMATS = {
    "quantized-bias-gemm": _small(quantized_bias=True),
    "quantized-bias-add": _small(quantized_bias=True, matmul=True),
    "quantized-bias-float-scales": _small(quantized_bias=True, matmul=True, pot_scales=False),
    "one-bit-quant-as-bipolar": MlpCase(6, 1, [LayerCase(8, 1, 1), LayerCase(5, 1, 1)], one_bit_as_quant=True),
    "multithreshold": _small(multithreshold=True, pot_scales=False),
    "multithreshold-pot": _small(multithreshold=True),
    "relu-before-input-quantizer": _small(input_relu=True),
    "empty-domain": _small(quant_domain=""),
    "qonnx-domain": _small(quant_domain="qonnx"),
    "computed-bit-widths": _small(computed_bit_widths=True),
}


@pytest.mark.parametrize("name", list(SINGLE_FORMATS))
def test_each_format_reads_exactly(name, tmp_path):
    path = tmp_path / f"{name}.onnx"
    onnx.save(build_case(SINGLE_FORMATS[name]), str(path))
    front = prepare(path, probe=N)
    assert front.check["quantizer_mismatches"] == 0 and front.check["output_mismatching_samples"] == 0


def test_a_falling_multithreshold_scale_is_refused(tmp_path):
    """The negative of the MultiThreshold reading: a negative out_scale is named, not guessed."""
    model = build_case(_small(multithreshold=True))
    for node in model.graph.node:
        if node.op_type == "MultiThreshold":
            for a in node.attribute:
                if a.name == "out_scale":
                    a.f = -a.f
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(DataFormatError, match=r"MultiThreshold.*out_scale"):
        prepare(tmp_path / "m.onnx", probe=100)


def test_an_unsigned_narrow_activation_saturates_where_qonnx_does(tmp_path):
    """qonnx's unsigned narrow Quant stops at 2**b - 2: the integer model's grid does too, and the
    shift-and-clip form (which saturates at the type's top) is not used for it."""
    model = build_case(_small())
    for node in model.graph.node:
        if node.op_type == "Quant" and any(a.name == "signed" and a.i == 0 for a in node.attribute):
            next(a for a in node.attribute if a.name == "narrow").i = 1
    onnx.save(model, str(tmp_path / "m.onnx"))
    front = prepare(tmp_path / "m.onnx", probe=N)
    assert front.check["quantizer_mismatches"] == 0 and front.check["output_mismatching_samples"] == 0
    assert front.im.layers[0].activation == "thresholds" and front.im.layers[0].act.hi == 14


def brevitas_qcdq(path, bits=4):
    """Brevitas' QCDQ export (QuantizeLinear / Clip / DequantizeLinear, weights as Clip on int8)."""
    import brevitas.nn as qnn
    from brevitas.export import export_onnx_qcdq
    from brevitas.quant import Int8WeightPerChannelFloat

    torch.manual_seed(1)
    weight = dict(weight_quant=Int8WeightPerChannelFloat, weight_bit_width=bits, bias=True)
    net = torch.nn.Sequential(qnn.QuantIdentity(bit_width=bits, return_quant_tensor=True),
                              qnn.QuantLinear(10, 12, **weight), qnn.QuantReLU(bit_width=bits, return_quant_tensor=True),
                              qnn.QuantLinear(12, 5, **weight))
    with torch.no_grad():
        net(torch.randn(256, 10) * 2)
    net.eval()
    export_onnx_qcdq(net, torch.randn(1, 10), export_path=str(path), dynamo=False)
    return path


def onnxruntime_qdq(path):
    """onnxruntime's static quantization (QDQ format, int8 weights and activations)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    torch.manual_seed(2)
    net = torch.nn.Sequential(torch.nn.Linear(10, 12), torch.nn.ReLU(), torch.nn.Linear(12, 5)).eval()
    float_path = path.with_suffix(".float.onnx")
    torch.onnx.export(net, torch.randn(1, 10), str(float_path), dynamo=False, input_names=["x"], output_names=["y"])

    class Calibration(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.batches = iter([{"x": rng.normal(size=(1, 10)).astype(np.float32)} for _ in range(32)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(float_path), str(path), Calibration(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    return path


def finn_onnx(path, streamline: bool, integer_input: bool = False):
    """A Brevitas MLP through FINN's own QONNX-to-FINN conversion (MultiThreshold activations,
    integer weights as annotated constants, Add/Mul dequantization) and, with `streamline`, FINN's
    streamlining (thresholds absorb scales and batch norm). integer_input: the input quantizer
    removed and the graph input annotated INT4, as FINN graphs that take integers are."""
    import brevitas.nn as qnn
    from brevitas.export import export_qonnx
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
    from finn.transformation.streamline import Streamline
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.util.cleanup import cleanup_model

    torch.manual_seed(3)
    net = torch.nn.Sequential(qnn.QuantIdentity(bit_width=4, return_quant_tensor=True),
                              qnn.QuantLinear(10, 12, weight_bit_width=4, bias=False), torch.nn.BatchNorm1d(12),
                              qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
                              qnn.QuantLinear(12, 5, weight_bit_width=4, bias=False))
    with torch.no_grad():
        net.train()
        net(torch.randn(256, 10) * 2)
    net.eval()
    export_qonnx(net, torch.randn(1, 10), export_path=str(path))
    model = cleanup_model(ModelWrapper(str(path))).transform(ConvertQONNXtoFINN())
    if streamline:
        model = model.transform(Streamline()).transform(InferDataTypes())
    if integer_input:
        first = model.graph.node[0]
        assert first.op_type == "MultiThreshold"
        model.graph.node.remove(first)
        for node in model.graph.node:
            node.input[:] = [model.graph.input[0].name if t == first.output[0] else t for t in node.input]
        model.set_tensor_datatype(model.graph.input[0].name, DataType["INT4"])
    model.save(str(path))
    return path


def test_qcdq_and_finn_onnx_formats_read_exactly(tmp_path):
    for make in (lambda p: brevitas_qcdq(p), onnxruntime_qdq, lambda p: finn_onnx(p, streamline=False),
                 lambda p: finn_onnx(p, streamline=True), lambda p: finn_onnx(p, True, integer_input=True)):
        path = make(tmp_path / "m.onnx")
        front = prepare(path, probe=N)
        assert front.check["quantizer_mismatches"] == 0 and front.check["output_mismatching_samples"] == 0
    # the weights' bit width is the Clip's range (4 bits), not the int8 storage
    assert [l.weight_bits for l in prepare(brevitas_qcdq(tmp_path / "q.onnx"), probe=0).im.layers] == [4, 4]
    im = prepare(finn_onnx(tmp_path / "i.onnx", True, integer_input=True), probe=0).im
    assert (im.input.bits, im.input.signed) == (4, True) and "INT4" in im.software.description["input_type_assumed"]


def test_annotated_weights_must_hold_their_type(tmp_path):
    """FINN-ONNX weights annotated INT4 that hold other values are refused, naming the node."""
    from qonnx.core.modelwrapper import ModelWrapper

    model = ModelWrapper(str(finn_onnx(tmp_path / "m.onnx", streamline=True)))
    matmul = next(n for n in model.graph.node if n.op_type == "MatMul")
    w = model.get_initializer(matmul.input[1]).copy()
    w.flat[0] = 9.0  # outside INT4
    model.set_initializer(matmul.input[1], w)
    model.save(str(tmp_path / "bad.onnx"))
    with pytest.raises(DataFormatError, match=rf"{matmul.name}.*annotated INT4"):
        prepare(tmp_path / "bad.onnx", probe=0)


# formats combined, each model through both backends and their simulators
COMBINED = {
    "qkeras-style": lambda p: onnx.save(build_case(MlpCase(
        n_in=10, input_bits=6, layers=[LayerCase(12, 4, 4, sparsity=0.3), LayerCase(5, 4, 4)], matmul=True,
        quantized_bias=True, input_relu=True, quant_domain="", computed_bit_widths=True, seed=5)), str(p)),
    "finn-style": lambda p: onnx.save(build_case(MlpCase(
        n_in=10, input_bits=4, layers=[LayerCase(12, 4, 4, per_channel=True), LayerCase(5, 3, 2)],
        multithreshold=True, quant_domain="qonnx", pot_scales=False, quantized_bias=True, seed=6)), str(p)),
    "brevitas-binary": lambda p: onnx.save(build_case(MlpCase(
        n_in=8, input_bits=1, layers=[LayerCase(12, 1, 1), LayerCase(5, 1, 1)], one_bit_as_quant=True,
        quant_domain="onnx.brevitas", seed=7)), str(p)),
    "brevitas-qcdq": brevitas_qcdq,
    "finn-onnx-streamlined": lambda p: finn_onnx(p, streamline=True),
}


def assert_exact(report):
    exactness.assert_exact(report, N, float32_graph_agrees=False)  # onnxruntime's float32 run is reported


# the FINN formats and the benchmark's own model family through FINN too (each costs a FINN build)
ON_FINN = ("qkeras-style", "finn-style", "finn-onnx-streamlined")


@pytest.mark.parametrize("name", list(COMBINED))
def test_format_is_exact_on_every_backend(name, tmp_path):
    path = tmp_path / "model.onnx"
    COMBINED[name](path)
    compile_hls4ml(path, tmp_path / "hls")
    x = probe_inputs(load_int_model(tmp_path / "hls"), N, seed=5)
    np.save(tmp_path / "x.npy", x)
    assert_exact(run_csim(tmp_path / "hls", inputs_file=tmp_path / "x.npy", n=N))
    compile_rtl(path, tmp_path / "rtl")
    assert_exact(run_verilator(tmp_path / "rtl", inputs_file=tmp_path / "x.npy", n=N))
    firmware = np.load(tmp_path / "hls" / "outputs_int.npy")
    assert np.array_equal(np.load(tmp_path / "rtl" / "outputs_int.npy"), firmware)
    if name in ON_FINN:
        compile_finn(path, tmp_path / "finn", FinnOptions(target_fps=50_000_000))
        report = run_finn_csim(tmp_path / "finn", inputs_file=tmp_path / "x.npy", n=N, python_samples=200)
        assert_exact(report)
        assert np.array_equal(np.load(tmp_path / "finn" / "outputs_int.npy"), firmware)


def test_finns_own_refusal_is_one_clear_error(tmp_path):
    """FINN's conversion asserts on bipolar activations with a scale other than 1; the FINN backend
    says so in one QapflowError naming the file and FINN's step, not a traceback."""
    path = tmp_path / "model.onnx"
    COMBINED["brevitas-binary"](path)
    with pytest.raises(QapflowError, match=r"model.onnx: FINN's step_qonnx_to_finn cannot build this model"):
        compile_finn(path, tmp_path / "finn", FinnOptions(target_fps=50_000_000))
