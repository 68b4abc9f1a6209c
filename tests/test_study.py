"""Studies: a grid, PTQ and BO trials through the process pool and through a local Ray head."""

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from qapflow.common.errors import QapflowError
from qapflow.study.runner import run_study

TINY = {"max_jets": 1500, "train": {"max_epochs": 2, "patience": 2, "batch_size": 256},
        "model": {"widths": [8, 8, 8], "scheme": "fixed-point"}, "prune": "ft", "iterations": 1,
        "fold_epochs": 1}


def write_study(folder: Path, data: Path, **extra) -> Path:
    study = {"study": "tiny", "workdir": str(folder / "work"), "workers": 2, "data": {"file": str(data)},
             "base": TINY, **extra}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def results_by_label(record: dict) -> dict:
    return {(r["group"], r["label"]): r["summary"] for r in record["trials"]}


def test_a_grid_runs_every_trial_reports_a_failure_and_resumes(generated_jets_file, tmp_path):
    grid = {"model.bits": [32, 6], "randomize_labels": [0.0, 2.0]}  # 2.0 is not a fraction: fails
    path = write_study(tmp_path, generated_jets_file, sweeps={"grid": {"grid": grid}})
    record = run_study(path, progress=False)
    assert len(record["trials"]) == 2 and len(record["failures"]) == 2
    assert all("label randomisation fraction" in e for e in record["failures"].values())
    for folder in record["failures"]:  # each failure is on disk, in the trial's folder
        assert "Traceback" in json.loads((tmp_path / "work" / folder / "error.json").read_text())["traceback"]
    rows = (tmp_path / "work" / "summary.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("group,label")
    # a second run redoes nothing: each finished trial's result.json is untouched
    stamps = {f: os.stat(tmp_path / "work" / r["folder"] / "result.json").st_mtime_ns
              for f, r in zip(range(2), record["trials"])}
    again = run_study(path, progress=False)
    assert results_by_label(again) == results_by_label(record)
    assert {f: os.stat(tmp_path / "work" / r["folder"] / "result.json").st_mtime_ns
            for f, r in zip(range(2), record["trials"])} == stamps


def test_a_bad_grid_key_is_named_before_anything_runs(generated_jets_file, tmp_path):
    path = write_study(tmp_path, generated_jets_file, sweeps={"s": {"grid": {"model.bitz": [6]}}})
    with pytest.raises(QapflowError, match=r"sweeps\.s \[bitz=6\].*bitz"):
        run_study(path, progress=False)
    path = write_study(tmp_path, generated_jets_file, sweeps={"s": {"gird": {}}})
    with pytest.raises(QapflowError, match=r"sweeps\.s\.gird: unknown key"):
        run_study(path, progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head():
    pytest.importorskip("ray")
    ray = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    # a short temp folder: Ray's sockets live there and a Unix socket path has at most 107 bytes
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    subprocess.run([ray, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                    "--node-ip-address=127.0.0.1", f"--temp-dir={temp}", "--disable-usage-stats"],
                   check=True, env=env, capture_output=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True)
        shutil.rmtree(temp, ignore_errors=True)


def test_ray_tasks_give_the_same_trials_as_the_pool(generated_jets_file, tmp_path, ray_head):
    sweeps = {"grid": {"grid": {"model.bits": [32, 6], "prune": ["ft", "lt"]}}}
    pool_dir, ray_dir = tmp_path / "pool", tmp_path / "ray_run"
    pool_dir.mkdir(), ray_dir.mkdir()
    pool = run_study(write_study(pool_dir, generated_jets_file, sweeps=sweeps), progress=False)
    on_ray = run_study(write_study(ray_dir, generated_jets_file, sweeps=sweeps), ray_address=ray_head,
                       progress=False)
    assert on_ray["executor"] == "ray" and len(on_ray["trials"]) == 4 and not on_ray["failures"]
    # trained in other processes on another executor: the same numbers, exactly
    assert results_by_label(on_ray) == results_by_label(pool)
    assert {r["pid"] for r in on_ray["trials"]}.isdisjoint({r["pid"] for r in pool["trials"]})


def test_ptq_quantizes_the_float_run_after_training(generated_jets_file, tmp_path):
    from qapflow.study.ptq import quantize_after_training
    from qapflow.train.checkpoint import load_checkpoint

    path = write_study(tmp_path, generated_jets_file, ptq={"bits": [8, 4]})
    record = run_study(path, progress=False)
    ptq = {r["label"]: r for r in record["trials"] if r["group"] == "ptq"}
    assert set(ptq) == {"bits=8", "bits=4"}
    (float_run,) = [r for r in record["trials"] if r["group"] == "ptq_float"]
    assert len(ptq["bits=4"]["summary"]["iterations"]) == len(float_run["summary"]["iterations"]) == 2
    # the quantized weights are on a 4-bit power-of-two grid, pruned zeros kept
    model, masks, scaler, _ = load_checkpoint(tmp_path / "work" / float_run["folder"] / "iter_001" / "checkpoint.pt")
    x = torch.randn(256, 16)
    q = quantize_after_training(model, 4, x)
    masks.apply(q)
    for lin, m in zip(q.linears, masks.masks):
        qw = lin.quant_weight()
        scale = float(qw.scale)
        assert scale == 2.0 ** round(np.log2(scale))  # a power of two
        ints = qw.value.detach().numpy() / scale
        assert np.array_equal(ints, np.round(ints)) and np.abs(ints).max() <= 8 and float(qw.bit_width) == 4
        assert np.all(ints[m.numpy() == 0] == 0)
    bops = {b: ptq[f"bits={b}"]["summary"]["iterations"][-1]["bops"] for b in (8, 4)}
    assert bops[4] < bops[8] < float_run["summary"]["iterations"][-1]["bops"]


def test_bo_gives_a_trial_table_and_pareto_front_and_resumes(generated_jets_file, tmp_path):
    pytest.importorskip("ax")
    bo = {"front": {"objective": "accuracy_bops", "trials": 4, "initial_trials": 2, "width_max": 12,
                    "base": {"prune": "none"}}}
    path = write_study(tmp_path, generated_jets_file, bo=bo)
    run_study(path, progress=False)
    work = tmp_path / "work" / "bo" / "front"
    rows = (work / "trials.csv").read_text().splitlines()
    assert rows[0].startswith("index,w1,w2,w3,status,accuracy,bops") and len(rows) == 5
    assert all(",done," in r for r in rows[1:])
    front = json.loads((work / "result.json").read_text())["pareto"]
    assert front and all({"accuracy", "bops"} <= set(p["outcome"]) for p in front)
    # kill during the last trial: it is pending again and its result is gone
    records = json.loads((work / "trials.json").read_text())
    records[-1]["status"] = "pending"
    (work / "trials.json").write_text(json.dumps(records))
    (tmp_path / "work" / records[-1]["folder"] / "result.json").unlink()
    stamps = {r["folder"]: os.stat(tmp_path / "work" / r["folder"] / "result.json").st_mtime_ns
              for r in records[:-1]}
    run_study(path, progress=False)
    after = json.loads((work / "trials.json").read_text())
    assert len(after) == 4 and all(r["status"] == "done" for r in after)
    assert {f: os.stat(tmp_path / "work" / f / "result.json").st_mtime_ns for f in stamps} == stamps
    assert (tmp_path / "work" / records[-1]["folder"] / "result.json").exists()


def run_smoke(tmp_path, flow_name: str) -> Path:
    """`qapflow run flows/FLOW.yaml --smoke` in tmp_path; its workdir."""
    flow = Path(__file__).resolve().parents[1] / "flows" / f"{flow_name}.yaml"
    done = subprocess.run([sys.executable, "-m", "qapflow.cli", "run", str(flow), "--smoke", "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path / "runs" / f"{flow_name}_smoke"


def test_the_papers_study_runs_in_smoke_size_and_writes_every_figure_and_table1(tmp_path):
    pytest.importorskip("pythia8mc")
    pytest.importorskip("ax")
    work = run_smoke(tmp_path, "paper")
    record = json.loads((work / "study.json").read_text())
    assert not record["failures"] and len(record["trials"]) == 22
    report = work / "report"
    for n in range(2, 8):
        for ext in ("png", "pdf"):
            assert (report / f"fig{n}.{ext}").stat().st_size > 1000
    ordering = (report / "ordering.md").read_text()
    assert (report / "ordering.png").exists() and "6-bit, weights only" in ordering and "is best at" in ordering
    rows = list(csv.DictReader((report / "table1.csv").open()))
    assert [r["approach"] for r in rows] == ["nominal", "pruning + PTQ", "QAT", "QAP"]
    assert float(rows[0]["bops_float_input"]) == pytest.approx(4.65e6, rel=0.01)  # the paper's nominal
    qap = rows[-1]
    assert float(qap["x_nominal"]) > 1 and qap["paper_x_nominal"] == "25.0"
    # `qapflow report WORKDIR` redraws them from the results alone
    again = subprocess.run([sys.executable, "-m", "qapflow.cli", "report", str(work)], capture_output=True, text=True)
    assert again.returncode == 0 and "table1.md" in again.stdout


def test_a_study_killed_mid_sweep_resumes_without_redoing_finished_trials(generated_jets_file, tmp_path):
    import signal
    import time

    sweeps = {"grid": {"grid": {"model.bits": [32, 6], "train.seed": [0, 1]}}}
    path = write_study(tmp_path, generated_jets_file, sweeps=sweeps)
    study = yaml.safe_load(path.read_text())
    study["workers"] = 1  # one trial at a time: the kill lands between finished and unfinished ones
    path.write_text(yaml.safe_dump(study))
    proc = subprocess.Popen([sys.executable, "-m", "qapflow.cli", "run", str(path), "--quiet"],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = tmp_path / "work"
    deadline = time.time() + 600
    while not list(work.glob("trials/*/*/result.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its pool worker, mid-sweep
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in work.glob("trials/*/*/result.json")}
    assert 1 <= len(finished) < 4 and not (work / "study.json").exists()
    record = run_study(path, progress=False)
    assert len(record["trials"]) == 4 and not record["failures"]
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # none redone


def test_the_ordering_study_on_the_jet_image_cnn_runs_in_smoke_size(generated_jets_file, tmp_path):
    """flows/ordering_cnn.yaml (Zhang et al.'s three schedules, with and without activation
    pruning, at 6 and 4 bits, on the CNN) on the session's jets and their images: every trial
    trains a pruned CNN of its schedule, and the report concludes per precision and pruning."""
    spec = yaml.safe_load((Path(__file__).resolve().parents[1] / "flows" / "ordering_cnn.yaml").read_text())
    spec.update(workdir=str(tmp_path / "work"), data={"file": str(generated_jets_file)})
    path = tmp_path / "ordering_cnn.yaml"
    path.write_text(yaml.safe_dump(spec))
    record = run_study(path, smoke=True, progress=False)
    assert not record["failures"] and len(record["trials"]) == 16
    schedules = {r["label"].split("schedule=")[1].split(",")[0] for r in record["trials"] if "schedule=" in r["label"]}
    assert schedules == {"quantize-then-prune", "prune-then-quantize"}
    report = tmp_path / "work_smoke" / "report"  # --smoke runs in WORKDIR_smoke
    ordering = (report / "ordering.md").read_text()
    for what in ("6-bit, weights only", "4-bit, weights and 50% of activations"):
        assert what in ordering
    assert ordering.count("is best at") == 4 and (report / "ordering.png").stat().st_size > 1000
    config = json.loads(next((tmp_path / "work_smoke").glob("trials/*/*/config.json")).read_text())
    assert config["model"]["arch"] == "cnn2d" and config["model"].get("pool", "max") == "max"
