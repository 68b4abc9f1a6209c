"""Convolutional and branching integer graphs traced into da4ml logic (backends/rtl/graph_trace.py):
da4ml's own evaluation of the traced logic, and Verilator's simulation of the Verilog da4ml writes
from it, give the IntGraph's integers exactly on 1,000 probe inputs that saturate the input
quantizer. A changed weight is seen; an input too large to unroll is refused by name."""

import os

import numpy as np
import onnx
import pytest

from qapflow.backends.rtl.graph_trace import MAX_ELEMENTS, comb_logic
from qapflow.common.errors import QapflowError
from qapflow.export.ingest import ingest
from qapflow.intmodel.graph_probe import graph_probe_inputs
from qapflow.intmodel.read_graph import read_graph
from qapflow.testing.graph_cases import ConvCase, build_conv_case, random_conv_case
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
    with pytest.raises(QapflowError, match=r"at most 4096.*hls4ml or FINN backend"):
        comb_logic(ig)


SIMULATED = {
    "bipolar-conv-gap": HELPER_CASES["bipolar-input"],
    "pot-residual-1d": ConvCase(dims=1, channels=2, size=8, pot=True, blocks=[("residual", dict(k=3)),
                                                                              ("maxpool", dict(k=2))]),
}


@pytest.mark.parametrize("name", list(SIMULATED))
def test_verilator_runs_the_verilog_exactly(name, tmp_path, monkeypatch):
    from da4ml.codegen import RTLModel

    from qapflow.sim.verilator import verilator_env

    for key, value in verilator_env().items():
        if os.environ.get(key) != value:
            monkeypatch.setenv(key, value)
    ig, q, want = _graph(SIMULATED[name], tmp_path)
    rtl = RTLModel(comb_logic(ig), "net", tmp_path / "rtl", flavor="verilog", latency_cutoff=5.0)
    rtl.compile(openmp=False, nproc=1)
    assert np.array_equal(rtl.predict(q.astype(np.float64)), want)
