"""The FINN backend: small pruned 6-bit models (power-of-two and float scales with batch norm)
through `qapflow compile --backend finn` and `qapflow csim`, exact in FINN's python mode and in
Verilator's simulation of FINN's RTL on 2,000 inputs that saturate every quantizer and land on
rounding ties; cycles measured. Damaged weight and threshold files, and a damaged hardware
graph, make the checks fail."""

import json
import shutil

import numpy as np
import onnx
import pytest

from qapflow.backends.finn.hdl import fix_add_multi, fix_fifo
from qapflow.backends.finn.runtime import rtllib_dir
from qapflow.cli import main
from qapflow.common.errors import QapflowError
from qapflow.compare.backends import backend_row
from qapflow.intmodel.probe import probe_inputs
from qapflow.sim.finn_sim import run_finn_csim
from qapflow.sim.report import load_int_model
from qapflow.testing.mlp_cases import LayerCase, MlpCase, build_case

N = 2000


def pruned_case(pot: bool) -> MlpCase:
    layers = [LayerCase(24, 6, 6, sparsity=0.8, batch_norm=not pot, per_channel=not pot),
              LayerCase(16, 6, 6, sparsity=0.8), LayerCase(5, 6, 6, sparsity=0.5)]
    return MlpCase(n_in=16, input_bits=8, layers=layers, pot_scales=pot, seed=11)


KINDS = ["fixed_point", "float_scale"]


@pytest.fixture(scope="module")
def finn_projects(tmp_path_factory) -> dict:
    """Both kinds compiled once for the module: kind -> (project, probe inputs)."""
    projects = {}
    for kind in KINDS:
        tmp = tmp_path_factory.mktemp(f"finn_{kind}")
        model = tmp / "model.onnx"
        onnx.save(build_case(pruned_case(kind == "fixed_point")), model)
        prj = tmp / "prj"
        assert main(["compile", str(model), "--backend", "finn", "--out", str(prj), "--target-fps", "50000000",
                     "--part", "xc7z020clg400-1"]) in (0, None)
        inputs = tmp / "probe.npy"
        np.save(inputs, probe_inputs(load_int_model(prj), N))
        projects[kind] = (prj, inputs)
    return projects


@pytest.fixture(params=KINDS)
def finn_project(request, finn_projects):
    return (request.param, *finn_projects[request.param])


def csim(prj, inputs, python_samples=N) -> dict:
    return run_finn_csim(prj, inputs_file=inputs, n=N, python_samples=python_samples)


def test_exact_in_python_mode_and_rtl(finn_project):
    kind, prj, inputs = finn_project
    assert main(["csim", str(prj), "--inputs", str(inputs), "--n", str(N)]) == 0
    report = json.loads((prj / "csim_report.json").read_text())
    assert report["samples"] == N and report["passed"]
    assert report["mismatches_vs_int_model"] == 0
    assert report["finn_python_mode"] == {**report["finn_python_mode"], "samples": N, "mismatches_vs_int_model": 0}
    assert report["qonnx"]["firmware_outputs_equal_graph_outputs"] == N
    # throughput measured in the RTL simulation, no faster than FINN's own bottleneck estimate
    estimate = json.loads((prj / "finn" / "report" / "estimate_layer_cycles.json").read_text())
    assert report["cycles_per_inference_measured"] >= max(estimate.values())
    assert report["first_output_latency_cycles"] > 0
    summary = json.loads((prj / "qapflow_project.json").read_text())
    compared = summary["finn_parameters_vs_int_model"]
    assert all(layer["weights_differing"] == 0 for layer in compared)
    if kind == "fixed_point":  # FINN rounds ties half up, QONNX's ROUND half to even
        assert sum(layer.get("thresholds_differing", 0) for layer in compared) > 0
        # with FINN's own thresholds, inputs on rounding ties come out differently
        assert report["finn_own_parameters"]["samples_differing_from_int_model"] > 0
    assert {layer["op_type"] for layer in summary["rtl"]["layers"]} >= {"MVAU_rtl", "Thresholding_rtl"}


def _damage(path, line: int = 0):
    lines = path.read_text().splitlines()
    lines[line] = "".join("f" if c != "f" else "0" for c in lines[line])
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("pattern", ["*_memblock.dat", "Thresholding_rtl_0_threshs_0_0.dat"])
def test_damaged_memory_file_fails_the_rtl_check(finn_project, tmp_path, pattern):
    _, prj, inputs = finn_project
    copy = tmp_path / "prj"
    shutil.copytree(prj, copy)
    target = sorted((copy / "rtl").glob(pattern))[0]
    _damage(target)
    report = csim(copy, inputs, python_samples=0)
    assert report["binary_reused"]  # the same RTL: the cached simulator reads the damaged file
    assert report["mismatches_vs_int_model"] > 0 and not report["passed"]


def test_missing_memory_file_is_named(finn_project, tmp_path):
    _, prj, inputs = finn_project
    copy = tmp_path / "prj"
    shutil.copytree(prj, copy)
    (copy / "rtl" / "Thresholding_rtl_0_threshs_0_0.dat").unlink()
    with pytest.raises(QapflowError, match="Thresholding_rtl_0_threshs_0_0.dat"):
        csim(copy, inputs, python_samples=0)


def test_damaged_hardware_graph_fails_python_mode(finn_project, tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper

    _, prj, inputs = finn_project
    copy = tmp_path / "prj"
    shutil.copytree(prj, copy)
    path = copy / "finn" / "intermediate_models" / "hardware.onnx"
    model = ModelWrapper(str(path))
    mvau = next(n for n in model.graph.node if n.op_type.startswith("MVAU"))
    w = model.get_initializer(mvau.input[1]).copy()
    w[0, :] += 1
    model.set_initializer(mvau.input[1], w)
    model.save(str(path))
    report = csim(copy, inputs, python_samples=200)
    assert report["finn_python_mode"]["mismatches_vs_int_model"] > 0 and not report["passed"]


def test_folding_file_and_vendor_config(finn_projects, tmp_path, capsys):
    prj, inputs = finn_projects["float_scale"]
    assert main(["csim", str(prj), "--inputs", str(inputs), "--n", str(N), "--python-samples", "0"]) == 0
    folding = json.loads((prj / "finn" / "report" / "auto_folding_config.json").read_text())
    mvau = next(k for k in folding if k.startswith("MVAU"))
    folding[mvau]["PE"], folding[mvau]["SIMD"] = 1, 1
    path = tmp_path / "folding.json"
    path.write_text(json.dumps(folding))
    out = tmp_path / "prj"
    assert main(["compile", str(prj / "source.qonnx.onnx"), "--backend", "finn", "--out", str(out),
                 "--folding", str(path), "--part", "xc7z020clg400-1"]) in (0, None)
    applied = json.loads((out / "finn" / "report" / "applied_folding_config.json").read_text())
    assert (applied[mvau]["PE"], applied[mvau]["SIMD"]) == (1, 1)
    report = csim(out, inputs, python_samples=0)
    folded = json.loads((prj / "csim_report.json").read_text())
    assert report["passed"] and report["cycles_per_inference_measured"] > folded["cycles_per_inference_measured"]
    # the vendor steps: FINN reads the project's build configuration; without Vivado they say so
    assert main(["synth", str(out), "--tool", "vivado"]) in (0, None)
    assert "Vivado not found" in capsys.readouterr().out
    (out / "finn" / "build_config.json").write_text('{"steps": 3}')
    assert main(["synth", str(out), "--tool", "vivado"]) == 2
    assert "build_config.json" in capsys.readouterr().err


def test_resources_name_their_source(finn_projects):
    prj, _ = finn_projects["fixed_point"]
    assert main(["synth", str(prj), "--tool", "yosys"]) in (0, None)
    res = json.loads((prj / "resources.json").read_text())
    assert "MVU is counted in DSPs only" in res["finn_estimates"]["source"]
    layers = [l["name"] for l in json.loads((prj / "qapflow_project.json").read_text())["rtl"]["layers"]]
    # every layer is either counted by Yosys or named with the reason it was not
    assert sorted(list(res["yosys"]["layers"]) + list(res["layers_not_synthesized"])) == sorted(layers)
    assert any(name.startswith("MVAU") for name in res["yosys"]["layers"]) and res["LUT"] > 0
    assert res["complete"] == (not res["layers_not_synthesized"])
    row = backend_row("finn", prj)
    assert row["LUT"] == res["LUT"] and row["finn_estimate_DSP"] == res["finn_estimates"]["DSP"]


def test_verilator_fixes_keep_the_logic():
    text = (rtllib_dir() / "mvu" / "add_multi.sv").read_text()
    fixed = fix_add_multi(text)
    assert fixed.index("function leaf_load_t init_leaf_loads") < fixed.index("genTree")
    assert sorted(fixed.split()) == sorted(text.split())  # the same tokens, moved
    with pytest.raises(QapflowError, match="add_multi.sv"):
        fix_add_multi("module add_multi; endmodule")
    fifo = (rtllib_dir() / "fifo" / "hdl" / "fifo.sv").read_text()
    assert "typedef struct packed {" in fix_fifo(fifo)
    with pytest.raises(QapflowError, match="fifo.sv"):
        fix_fifo("module fifo; endmodule")


def test_dead_neurons_are_folded_before_finn(tmp_path):
    # 97% of the second layer's weights pruned: most first-layer neurons feed nothing
    case = MlpCase(n_in=8, input_bits=6, pot_scales=True, seed=4, layers=[
        LayerCase(24, 6, 6), LayerCase(8, 6, 6, sparsity=0.97), LayerCase(3, 6, 6)])
    model = tmp_path / "model.onnx"
    onnx.save(build_case(case), model)
    prj = tmp_path / "prj"
    assert main(["compile", str(model), "--backend", "finn", "--out", str(prj)]) in (0, None)
    summary = json.loads((prj / "qapflow_project.json").read_text())
    folded = summary["dead_neurons_folded"]
    assert folded > 0 and summary["layer_widths"][0] == [24 - folded, 8]
    inputs = tmp_path / "probe.npy"
    np.save(inputs, probe_inputs(load_int_model(prj), 500))
    report = run_finn_csim(prj, inputs_file=inputs, n=500, python_samples=100)
    assert report["passed"] and report["qonnx"]["firmware_outputs_equal_graph_outputs"] == 500


def test_accumulators_narrower_than_a_product_are_widened_for_finns_rtl_mvu():
    from qonnx.core.datatype import DataType

    from qapflow.backends.finn.transforms.int_model_parameters import accumulator_type, int_type

    # a sparse layer: 6-bit weights on 6-bit unsigned activations reach only [-300, 400]
    reachable = int_type(-300, 400)
    assert reachable.bitwidth() < 6 + 6  # what mvu.sv would stop on (ACCU_WIDTH < 12)
    assert accumulator_type(reachable, DataType["INT6"], DataType["UINT6"]) == DataType["INT12"]
    assert accumulator_type(reachable, DataType["INT6"], DataType["INT6"]) == DataType["INT11"]  # signed: - 1
    wide = int_type(-5000, 5000)
    assert accumulator_type(wide, DataType["INT6"], DataType["UINT6"]) == wide
    assert accumulator_type(int_type(0, 300), DataType["INT6"], DataType["UINT6"]) == DataType["UINT12"]
