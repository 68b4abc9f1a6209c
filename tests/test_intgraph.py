"""The integer graph (IntGraph): convolutional and branching networks, exact against qonnx.

Networks are built here with Brevitas (default float-scale quantizers, and power-of-two ones)
and with the onnx helper API (testing.graph_cases). Each is ingested, read into an IntGraph,
evaluated on 1,000 probe inputs (saturating values, rounding ties) and compared with qonnx's
node-by-node execution of the original graph (linear ops summed exactly): zero mismatches at
every quantizer and equal output floats. Negative tests: a corrupted weight or threshold is
caught, unsupported ops and grids are named. Today's dense chain is one case of the graph.
"""

import numpy as np
import onnx
import pytest
import torch
from onnx import helper

from qapflow.export.ingest import ingest
from qapflow.intmodel.build import build_int_model
from qapflow.intmodel.chain import UnsupportedGraph, read_chain
from qapflow.intmodel.graph import IntGraph
from qapflow.intmodel.graph_probe import graph_probe_inputs
from qapflow.intmodel.graph_reference import compare_graph
from qapflow.intmodel.model import NotBitExact
from qapflow.intmodel.probe import probe_inputs
from qapflow.intmodel.read_graph import read_graph
from qapflow.testing.graph_cases import ConvCase, build_conv_case, random_conv_case
from qapflow.testing.mlp_cases import build_case, random_case

N = 1000


class BrevitasCnn(torch.nn.Module):
    """Conv2d + BN + QuantReLU, MaxPool, a residual block with a shared QuantIdentity before the
    add, AdaptiveAvgPool2d(1) (ReduceMean), a dense head: Brevitas' float-scale defaults."""

    def __init__(self):
        import brevitas.nn as qnn
        super().__init__()
        q = dict(return_quant_tensor=True)
        self.qin = qnn.QuantIdentity(bit_width=4, **q)
        self.c1 = qnn.QuantConv2d(2, 4, 3, padding=1, weight_bit_width=4, bias=True)
        self.bn = torch.nn.BatchNorm2d(4)
        self.r1 = qnn.QuantReLU(bit_width=4, **q)
        self.pool = torch.nn.MaxPool2d(2)
        self.c2 = qnn.QuantConv2d(4, 4, 3, padding=1, weight_bit_width=4, bias=False)
        self.r2 = qnn.QuantReLU(bit_width=4, **q)
        self.shared = qnn.QuantIdentity(bit_width=4, **q)
        self.gap = torch.nn.AdaptiveAvgPool2d(1)
        self.r3 = qnn.QuantIdentity(bit_width=6, **q)
        self.fc = qnn.QuantLinear(4, 3, bias=True, weight_bit_width=4)

    def forward(self, x):
        x = self.pool(self.r1(self.bn(self.c1(self.qin(x)))))
        y = self.shared(x)
        x = self.shared(self.r2(self.c2(y))) + y
        return self.fc(torch.flatten(self.r3(self.gap(x)), 1))


class BrevitasPot1d(torch.nn.Module):
    """Power-of-two quantizers: QuantConv1d (stride 2, padding), AvgPool1d, two branches joined
    by torch.cat on a shared grid, a dense head."""

    def __init__(self):
        import brevitas.nn as qnn
        from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint
        super().__init__()
        w = dict(weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=6, bias=False)
        a = dict(act_quant=Int8ActPerTensorFixedPoint, bit_width=6, return_quant_tensor=True)
        self.qin = qnn.QuantIdentity(**a)
        self.c1 = qnn.QuantConv1d(3, 4, 3, stride=2, padding=1, **w)
        self.r1 = qnn.QuantReLU(bit_width=6, return_quant_tensor=True)
        self.avg = torch.nn.AvgPool1d(2)
        self.q_avg = qnn.QuantIdentity(**a)
        self.b1 = qnn.QuantConv1d(4, 2, 1, **w)
        self.b2 = qnn.QuantConv1d(4, 2, 3, padding=1, **w)
        self.shared = qnn.QuantIdentity(**a)
        self.fc = qnn.QuantLinear(4 * 4, 3, bias=False, weight_quant=Int8WeightPerTensorFixedPoint)

    def forward(self, x):
        x = self.q_avg(self.avg(self.r1(self.c1(self.qin(x)))))
        x = torch.cat([self.shared(self.b1(x)), self.shared(self.b2(x))], dim=1)
        return self.fc(torch.flatten(x, 1))


def export_brevitas(make, shape, path, seed=0):
    from brevitas.export import export_qonnx
    torch.manual_seed(seed)
    net = make()
    with torch.no_grad():
        net.train()
        net(torch.randn(64, *shape) * 2)  # calibrates the activation scales
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(-1.5, 1.5)
    net.eval()
    export_qonnx(net, torch.randn(1, *shape), export_path=str(path))
    return path


HELPER_CASES = {
    "conv1d-stride-pad-dilation": ConvCase(dims=1, channels=3, size=16, blocks=[
        ("conv", dict(out=4, k=3, stride=2, pad=1, dilation=2, bn=True)), ("maxpool", dict(k=2))]),
    "conv2d-groups-depthwise": ConvCase(dims=2, channels=4, size=7, blocks=[
        ("conv", dict(out=4, k=3, pad=1, groups=2)), ("conv", dict(out=8, k=3, pad=1, groups=4, bn=True))]),
    "zero-point-padding": ConvCase(dims=2, channels=2, size=6, zero_point=2, blocks=[
        ("conv", dict(out=3, k=3, pad=1)), ("avgpool", dict(k=2))]),
    "bipolar-input": ConvCase(dims=1, channels=2, size=12, bipolar_input=True, blocks=[
        ("conv", dict(out=3, k=3, pad=1, bits=2)), ("gap", {})]),
    "channels-last": ConvCase(dims=2, channels=3, size=6, channels_last=True, blocks=[
        ("conv", dict(out=4, k=3)), ("reducemean", {})]),
    "pot-residual-shift": ConvCase(dims=2, channels=2, size=6, pot=True, blocks=[
        ("conv", dict(out=3, k=3, pad=1)), ("residual", dict(k=3)), ("maxpool", dict(k=2, stride=1))]),
    "float-residual-concat": ConvCase(dims=1, channels=2, size=10, softmax=True, blocks=[
        ("residual", dict(k=3, bn=True)), ("concat", dict(out=2)), ("avgpool", dict(k=2, stride=1))]),
    "concat-different-grids": ConvCase(dims=2, channels=2, size=5, blocks=[
        ("concat", dict(out=2, scale_b=1.5, bits_b=3)), ("conv", dict(out=3, k=2))]),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("intgraph")
    out = {"brevitas-cnn": export_brevitas(BrevitasCnn, (2, 8, 8), root / "brevitas_cnn.onnx"),
           "brevitas-pot-1d": export_brevitas(BrevitasPot1d, (3, 16), root / "brevitas_pot.onnx")}
    for name, case in HELPER_CASES.items():
        out[name] = root / f"{name}.onnx"
        onnx.save(build_conv_case(case), str(out[name]))
    return out


def check_exact(path, seed=0, n=N):
    model = ingest(path)
    ig = read_graph(model)
    x = graph_probe_inputs(ig, n, seed)
    report, ours, theirs = compare_graph(ig, model, x)
    assert report["samples"] == n and report["quantizers_compared"] >= 2
    assert report["quantizer_mismatches"] == 0, report["tensors"]
    assert report["output_mismatching_samples"] == 0
    assert np.array_equal(ours, theirs)
    # every quantizer is driven to at least one of its ends by the probe inputs
    assert all(v["at_lo"] or v["at_hi"] for v in report["saturation"].values()), report["saturation"]
    return ig, model, x, report


@pytest.mark.parametrize("name", ["brevitas-cnn", "brevitas-pot-1d", *HELPER_CASES])
def test_network_is_exact_against_qonnx(files, name):
    ig, _, x, report = check_exact(files[name])
    kinds = {op.kind for op in ig.ops}
    assert {"conv", "sumpool", "add", "concat", "maxpool"} & kinds
    # the IntGraph's integers stay inside its bounds (the bounds are sound)
    values, bounds = ig.evaluate(ig.input_integers(x)), ig.bounds()
    for tensor, v in values.items():
        lo, hi = bounds[tensor]
        per_channel = np.moveaxis(v, 1, 0).reshape(v.shape[1], -1) if v.ndim > 1 else v[None]
        assert (per_channel.min(axis=1) >= np.array(lo, np.float64)).all(), tensor
        assert (per_channel.max(axis=1) <= np.array(hi, np.float64)).all(), tensor


def test_brevitas_float_scales_take_thresholds_and_the_residual_add(files):
    ig = read_graph(ingest(files["brevitas-cnn"]))
    kinds = [op.kind for op in ig.ops]
    assert kinds.count("conv") == 2 and "add" in kinds and "sumpool" in kinds and "maxpool" in kinds
    assert "thresholds" in kinds and "shift" not in kinds
    add = next(op for op in ig.ops if op.kind == "add")
    assert add.coeff_a >= 1 and add.coeff_b >= 1


def test_power_of_two_scales_take_shift_and_clip(files):
    ig = read_graph(ingest(files["brevitas-pot-1d"]))
    kinds = [op.kind for op in ig.ops]
    assert "shift" in kinds and "concat" in kinds and "sumpool" in kinds
    add_case = read_graph(ingest(files["pot-residual-shift"]))
    add = next(op for op in add_case.ops if op.kind == "add")  # power-of-two grids: shifts
    assert all(c & (c - 1) == 0 for c in (add.coeff_a, add.coeff_b))


@pytest.mark.parametrize("seed", range(8))
def test_random_conv_cases_are_exact(tmp_path, seed):
    path = tmp_path / "case.onnx"
    onnx.save(build_conv_case(random_conv_case(seed)), str(path))
    check_exact(path, seed)


@pytest.mark.parametrize("seed", range(20))
def test_dense_chain_gives_the_int_models_integers(tmp_path, seed):
    path = tmp_path / "mlp.onnx"
    onnx.save(build_case(random_case(seed)), str(path))
    model = ingest(path)
    im, ig = build_int_model(model), read_graph(model)
    x = probe_inputs(im, N, seed)
    q_im, q_ig = im.input_integers(x)[0], ig.input_integers(x)
    assert np.array_equal(q_im, q_ig.reshape(N, -1))
    layers, values = im.forward_layers(q_im), ig.evaluate(q_ig)
    quantized = [s.quant.output[0] for s in read_chain(model).stages if s.quant is not None]
    for i, name in enumerate(quantized):
        assert np.array_equal(layers[i], values[name].reshape(N, -1)), name
    assert np.array_equal(im.outputs(layers[-1]).reshape(N, -1), ig.outputs(values[ig.output]).reshape(N, -1))
    forms = [op.kind for op in ig.ops if op.kind in ("shift", "thresholds")]
    assert forms == [{"shift_clip": "shift"}[l.activation] if l.activation == "shift_clip" else "thresholds"
                     for l in im.layers if l.activation != "none"]


def test_save_and_load_keep_every_integer(files, tmp_path):
    model = ingest(files["brevitas-cnn"])
    ig = read_graph(model)
    ig.save(tmp_path / "int_graph.json")
    again = IntGraph.load(tmp_path / "int_graph.json")
    x = graph_probe_inputs(ig, 200, 1)
    a, b = ig.evaluate(ig.input_integers(x)), again.evaluate(again.input_integers(x))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert np.array_equal(ig.predict(x), again.predict(x))
    assert {k: [list(v) for v in b] for k, b in ig.bounds().items()} == {
        k: [list(v) for v in b] for k, b in again.bounds().items()}


def _mismatches(ig, model, x):
    report, _, _ = compare_graph(ig, model, x)
    return report["quantizer_mismatches"] + report["output_mismatching_samples"]


def test_a_corrupted_weight_is_caught(files):
    model = ingest(files["conv2d-groups-depthwise"])
    ig = read_graph(model)
    x = graph_probe_inputs(ig, 300, 2)
    assert _mismatches(ig, model, x) == 0
    conv = next(op for op in ig.ops if op.kind == "conv")
    conv.weight[0, 0, 1, 1] += 1
    assert _mismatches(ig, model, x) > 0


def test_a_corrupted_threshold_is_caught(files):
    model = ingest(files["brevitas-cnn"])
    ig = read_graph(model)
    x = graph_probe_inputs(ig, 300, 3)
    op = next(op for op in ig.ops if op.kind == "thresholds" and op.thresholds.count.max() > 0)
    j = int(np.argmax(op.thresholds.count))
    op.thresholds.values[j, 0] += 3  # channel j switches to its first level later
    assert _mismatches(ig, model, x) > 0


def test_a_wrong_padding_is_caught(files):
    model = ingest(files["zero-point-padding"])
    ig = read_graph(model)
    x = graph_probe_inputs(ig, 300, 4)
    conv = next(op for op in ig.ops if op.kind == "conv")
    conv.units.offset = 0  # padding with code 0 instead of the real zero
    assert _mismatches(ig, model, x) > 0


def _with_node(path, tmp_path, make):
    """The graph with one node inserted after the input quantizer's consumer."""
    model = onnx.load(str(path))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    old = conv.output[0]
    conv.output[0] = old + "_pre"
    extra, inits = make(old + "_pre", old)
    model.graph.node.insert(list(model.graph.node).index(conv) + 1, extra)
    model.graph.initializer.extend(inits)
    out = tmp_path / "bad.onnx"
    onnx.save(model, str(out))
    return out


def test_unsupported_resize_is_named(files, tmp_path):
    def make(inp, out):  # a Resize by 1 (shapes unchanged): still not an integer op
        scales = onnx.numpy_helper.from_array(np.array([1, 1, 1, 1], np.float32), "scales")
        return helper.make_node("Resize", [inp, "", "scales"], [out], name="Resize_up"), [scales]
    path = _with_node(files["conv2d-groups-depthwise"], tmp_path, make)
    with pytest.raises(UnsupportedGraph, match=r"unsupported node Resize_up \(Resize\); qapflow supports Gemm"):
        read_graph(ingest(path))


def test_unsupported_lstm_is_named(tmp_path):
    hidden = 2
    nodes = [helper.make_node("Quant", ["x", "s", "z", "b"], ["xq"], name="Quant_in",
                              domain="qonnx.custom_op.general", signed=1, narrow=0, rounding_mode="ROUND"),
             helper.make_node("LSTM", ["xq", "W", "R"], ["y"], name="LSTM_1", hidden_size=hidden)]
    inits = [onnx.numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in
             {"s": 0.25, "z": 0.0, "b": 4.0, "W": np.ones((1, 4 * hidden, 3)) * 0.1,
              "R": np.ones((1, 4 * hidden, hidden)) * 0.1}.items()]
    graph = helper.make_graph(nodes, "lstm", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [5, 1, 3])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], initializer=inits)
    path = tmp_path / "lstm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                      helper.make_opsetid("qonnx.custom_op.general", 1)]), str(path))
    with pytest.raises(UnsupportedGraph, match=r"unsupported node LSTM_1 \(LSTM\); qapflow supports"):
        read_graph(ingest(path))


def test_a_concat_of_different_grids_is_aligned_on_one_unit(tmp_path):
    """Two branches at scales s and 1.5 s (float scales), then a Flatten and a dense layer: the
    Concat multiplies each branch onto their common unit, and the whole graph is exact; the
    same graph with one coefficient off by one is caught by the comparison with qonnx."""
    case = ConvCase(dims=1, channels=2, size=8, blocks=[("concat", dict(out=2, scale_b=1.5))])
    path = tmp_path / "concat.onnx"
    onnx.save(build_conv_case(case), str(path))
    ig, model, x, _ = check_exact(path)
    concat = next(op for op in ig.ops if op.kind == "concat")
    (ca, cb) = (set(c) for c in concat.coeffs)
    assert len(ca) == len(cb) == 1 and abs(cb.pop() / ca.pop() - 1.5) < 1e-6  # 1.5 s, rounded to float32
    concat.coeffs[1] = [c + 1 for c in concat.coeffs[1]]
    report, _, _ = compare_graph(ig, model, x)
    assert report["output_mismatching_samples"] > 0


def test_an_offset_off_the_integer_grid_is_refused_before_a_conv(files):
    # ingest already refuses fractional Quant zero points; a MultiThreshold's out_bias can still
    # put a tensor's real zero between two integers: the conv's units check names node and offset
    from qapflow.intmodel.graph import Tensor
    from qapflow.intmodel.read_ops import units_of
    model = ingest(files["zero-point-padding"])
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    t = read_graph(model).tensors[conv.input[0]]
    assert units_of(t, conv).offset == -2  # the zero point 2: u = q - 2
    t.grid.offset = -1.5
    with pytest.raises(NotBitExact, match=r"node Conv_\d+ \(Conv\).*zero point / offset \[?-1.5.*not a whole number"):
        units_of(Tensor(t.name, t.shape, t.grid), conv)


def test_a_layer_without_output_positions_is_named(tmp_path):
    """A kernel larger than its padded input leaves no output: one error naming the node, not a
    division by an empty window later."""
    case = ConvCase(dims=1, channels=1, size=4, blocks=[("conv", dict(out=2, k=5)), ("gap", {})])
    path = tmp_path / "m.onnx"
    onnx.save(build_conv_case(case), str(path))
    with pytest.raises(UnsupportedGraph, match=r"node Conv_\d+ \(Conv\).*has no values"):
        read_graph(ingest(path))
