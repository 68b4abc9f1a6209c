"""One trial, run in a worker process (pool or Ray): its folder is its cache.

A trial is finished when its result.json exists (written last, atomically). A killed trial
resumes inside its run (run_qap's own resume). The worker works in the study's folder, so
every path in a trial's files is relative to it and a moved study stays valid.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path

RESULT = "result.json"
ERROR = "error.json"


def finished_result(trial_dir: Path) -> dict | None:
    path = Path(trial_dir) / RESULT
    return json.loads(path.read_text()) if path.exists() else None


def execute_trial(payload: dict) -> dict:
    """Run the trial described by `payload` (plain data: it crosses process boundaries).

    payload: workdir (absolute), folder (relative), data (relative to workdir), kind, config,
    extra, group, label. Returns the result written to result.json.
    """
    import torch

    from qapflow.common.atomic import write_json

    torch.set_num_threads(1)  # one core a trial: the executors run one trial per core
    os.chdir(payload["workdir"])
    folder = Path(payload["folder"])
    done = finished_result(folder)
    if done is not None:
        return done
    start = time.time()
    try:
        if payload["kind"] == "qap":
            outcome = _run_qap_trial(payload, folder)
        elif payload["kind"] == "verify":
            from qapflow.study.hardware import run_verify_trial

            outcome = run_verify_trial(payload, folder)
        elif payload["kind"] == "ptq":
            from qapflow.study.ptq import run_ptq_trial

            outcome = run_ptq_trial(payload, folder)
        else:
            raise ValueError(f"unknown trial kind {payload['kind']!r}")
    except Exception as exc:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / ERROR, {"error": f"{type(exc).__name__}: {exc}",
                                    "traceback": traceback.format_exc()})
        raise
    result = {"group": payload["group"], "label": payload["label"], "kind": payload["kind"],
              "folder": str(folder), "config": payload["config"], "extra": payload.get("extra", {}),
              "seconds": time.time() - start, "pid": os.getpid(), **outcome}
    write_json(folder / RESULT, result)
    (folder / ERROR).unlink(missing_ok=True)
    return result


def _run_qap_trial(payload: dict, folder: Path) -> dict:
    from qapflow.train.config import RunConfig
    from qapflow.train.run import run_qap

    cfg = RunConfig.from_dict({**payload["config"], "data": payload["data"]}, payload["label"])
    summary = run_qap(cfg, folder, resume=True, progress=False)
    outcome = {"summary": summary, "val_loss": best_val_loss(folder)}
    if payload.get("extra", {}).get("cost_model"):
        from qapflow.study.hardware import estimate_iterations

        outcome["hardware"] = estimate_iterations(folder)
    return outcome


def best_val_loss(folder: Path) -> float | None:
    """The first iteration's best validation loss (the BO objective of the paper); None with folds."""
    history = folder / "iter_000" / "history.json"
    if not history.exists():
        return None
    h = json.loads(history.read_text())
    return float(h["val_loss"][h["best_epoch"]])
